"""The one stack: BERT behind TensorFlow Serving on an ECS cluster of Inferentia instances."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from components.capacity import InferentiaCapacity
from components.inference_service import InferenceService
from components.inference_task import HEALTH_CHECK_START_PERIOD, InferenceTaskDefinition, neuron_core_utilization
from components.load_balancer import InferenceLoadBalancer
from components.model_image import ModelServerImages
from components.network import ServingNetwork
from components.observability import ServiceObservability
from config.settings import DeploymentSettings, NeuronRuntime

# Docker's ephemeral range on the ECS-optimized AMIs, where dynamic host ports come from.
DYNAMIC_HOST_PORTS = (32768, 65535)


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
            model_in_image=settings.model_s3 is None,
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
            cores_per_task=settings.cores_per_task,
            batching_parameters=settings.batching.parameters_file() if settings.batching else None,
            model_s3=settings.model_s3,
        )
        # The walk-through's layout keeps its static ports; libnrt tasks share instances on dynamic ones.
        static_ports = settings.neuron_runtime is NeuronRuntime.RTD
        service = InferenceService(
            self,
            "Inference",
            cluster=cluster,
            task_definition=task.task_definition,
            capacity_provider_name=capacity.capacity_provider.capacity_provider_name,
            instance_type=settings.instance_size.name,
            desired_count=settings.desired_count,
            one_task_per_instance=static_ports,
            health_check_grace_period=HEALTH_CHECK_START_PERIOD,
            min_tasks=settings.min_tasks,
            max_tasks=settings.max_tasks,
            neuron_utilization=None if static_ports else neuron_core_utilization(cluster.cluster_name),
        )
        endpoint = InferenceLoadBalancer(
            self,
            "Endpoint",
            vpc=network.vpc,
            public=settings.public_endpoint,
            allowed_cidr=settings.allowed_cidr,
            grpc_port=settings.grpc_port,
            rest_port=settings.rest_port,
        )
        endpoint.register(
            service.service,
            container_name=settings.model_name,
            grpc_port=settings.grpc_port,
            rest_port=settings.rest_port,
        )
        endpoint.admit_to(
            network.security_group,
            [ec2.Port.tcp(settings.grpc_port), ec2.Port.tcp(settings.rest_port)]
            if static_ports
            else [ec2.Port.tcp_range(*DYNAMIC_HOST_PORTS)],
        )

        observability = ServiceObservability(
            self,
            "Observability",
            service=service.service,
            cluster_name=cluster.cluster_name,
            load_balancer=endpoint.load_balancer,
            target_groups=endpoint.target_groups,
            min_tasks=settings.min_tasks,
            neuron_metrics=not static_ports,
            notifications=capacity.scaling_events,
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
            "LoadBalancerDnsName",
            description="The model endpoint: gRPC and REST on GrpcPort and RestPort, from allowedCidr",
            value=endpoint.load_balancer.load_balancer_dns_name,
        )
        CfnOutput(
            self,
            "DashboardName",
            description="CloudWatch dashboard of the service; alarms notify the scaling-events topic",
            value=observability.dashboard.dashboard_name,
        )
        CfnOutput(self, "NotificationsTopicArn", value=capacity.scaling_events.topic_arn)
