"""The one stack: BERT behind TensorFlow Serving on an ECS cluster of Inferentia instances."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from components.capacity import InferentiaCapacity
from components.inference_service import InferenceService
from components.inference_task import InferenceTaskDefinition
from components.model_image import ModelServerImages
from components.network import ServingNetwork
from config.settings import DeploymentSettings


class BertInferenceStack(Stack):
    """Composes network, capacity, images, task and service from one settings object."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: DeploymentSettings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)

        network = ServingNetwork(
            self,
            "Network",
            vpc_cidr=settings.vpc_cidr,
            nat_gateways=settings.nat_gateways,
            allowed_cidr=settings.allowed_cidr,
            service_ports={"TF Serving gRPC": settings.grpc_port, "TF Serving REST": settings.rest_port},
            allow_ssh=settings.key_name is not None,
            flow_log_retention_days=settings.log_retention_days,
        )
        cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=network.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        capacity = InferentiaCapacity(
            self,
            "Capacity",
            cluster=cluster,
            vpc=network.vpc,
            security_group=network.security_group,
            instance_size=settings.instance_size,
            runtime=settings.neuron_runtime,
            spot=settings.spot,
            min_instances=settings.min_instances,
            max_instances=settings.max_instances,
            root_volume_gib=settings.root_volume_gib,
            key_name=settings.key_name,
        )
        images = ModelServerImages(
            self,
            "Images",
            runtime=settings.neuron_runtime,
            model_name=settings.model_name,
            grpc_port=settings.grpc_port,
            rest_port=settings.rest_port,
        )
        task = InferenceTaskDefinition(
            self,
            "Task",
            runtime=settings.neuron_runtime,
            instance_size=settings.instance_size,
            model_name=settings.model_name,
            grpc_port=settings.grpc_port,
            rest_port=settings.rest_port,
            server_image=images.server_image,
            sidecar_image=images.sidecar_image,
            log_retention_days=settings.log_retention_days,
            cluster_name=cluster.cluster_name,
        )
        service = InferenceService(
            self,
            "Inference",
            cluster=cluster,
            task_definition=task.task_definition,
            capacity_provider_name=capacity.capacity_provider.capacity_provider_name,
            instance_type=settings.instance_size.name,
            desired_count=settings.desired_count,
        )

        CfnOutput(self, "ClusterName", value=cluster.cluster_name)
        CfnOutput(self, "ServiceName", value=service.service.service_name)
        CfnOutput(self, "SecurityGroupId", value=network.security_group.security_group_id)
        CfnOutput(self, "ModelName", value=settings.model_name)
        CfnOutput(self, "InstanceType", value=settings.instance_size.name)
        CfnOutput(self, "GrpcPort", value=str(settings.grpc_port))
        CfnOutput(self, "RestPort", value=str(settings.rest_port))
        CfnOutput(
            self,
            "FindServerAddressCommand",
            description="Prints the private IP of the instance running the model server (reachable from allowedCidr)",
            value=(
                f"aws ec2 describe-instances --instance-ids $(aws ecs describe-container-instances"
                f" --cluster {cluster.cluster_name} --container-instances $(aws ecs describe-tasks"
                f" --cluster {cluster.cluster_name} --tasks $(aws ecs list-tasks --cluster {cluster.cluster_name}"
                f" --service-name {service.service.service_name} --query 'taskArns[0]' --output text)"
                " --query 'tasks[0].containerInstanceArn' --output text)"
                " --query 'containerInstances[0].ec2InstanceId' --output text)"
                " --query 'Reservations[0].Instances[0].PrivateIpAddress' --output text"
            ),
        )
