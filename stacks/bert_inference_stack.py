"""The one stack: BERT behind TensorFlow Serving on an ECS cluster of Inferentia instances."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from components.capacity import InferentiaCapacity
from components.inference_service import InferenceService
from components.inference_task import HEALTH_CHECK_START_PERIOD, InferenceTaskDefinition
from components.load_balancer import InferenceLoadBalancer
from components.model_image import ModelServerImages
from components.network import ServingNetwork
from components.observability import ServiceObservability
from config.settings import DeploymentSettings, NeuronRuntime

# Docker's ephemeral range on the ECS-optimized AMIs, where dynamic host ports come from.
DYNAMIC_HOST_PORTS = (32768, 65535)


class BertInferenceStack(Stack):
    """Composes network, capacity and endpoint, then images, task, service and dashboard per model."""

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
            ami_id=settings.ami_id,
            spot=settings.spot,
            min_instances=settings.min_instances,
            max_instances=settings.max_instances,
            root_volume_gib=settings.root_volume_gib,
            key_name=settings.key_name,
        )
        endpoint = InferenceLoadBalancer(
            self,
            "Endpoint",
            vpc=network.vpc,
            public=settings.public_endpoint,
            allowed_cidr=settings.allowed_cidr,
        )
        # The walk-through's layout keeps its static ports; libnrt tasks share instances on dynamic ones.
        static_ports = settings.neuron_runtime is NeuronRuntime.RTD
        endpoint.admit_to(
            network.security_group,
            [ec2.Port.tcp(settings.grpc_port), ec2.Port.tcp(settings.rest_port)]
            if static_ports
            else [ec2.Port.tcp_range(*DYNAMIC_HOST_PORTS)],
        )

        CfnOutput(self, "ClusterName", value=cluster.cluster_name)
        CfnOutput(self, "SecurityGroupId", value=network.security_group.security_group_id)
        CfnOutput(self, "InstanceType", value=settings.instance_size.name)
        CfnOutput(
            self,
            "LoadBalancerDnsName",
            description="The model endpoint: each model's gRPC and REST ports, from allowedCidr",
            value=endpoint.load_balancer.load_balancer_dns_name,
        )
        CfnOutput(self, "NotificationsTopicArn", value=capacity.scaling_events.topic_arn)

        # One image, task definition, service, pair of listeners and dashboard per model. The first
        # model's construct IDs and outputs carry no suffix, so a one-model stack reads as before.
        for index, model in enumerate(settings.models):
            suffix = "" if index == 0 else f"Model{index + 1}"
            images = ModelServerImages(
                self,
                f"Images{suffix}",
                runtime=settings.neuron_runtime,
                releases=settings.releases,
                model_name=model.name,
                grpc_port=model.grpc_port,
                rest_port=model.rest_port,
                model_in_image=model.s3 is None,
            )
            task = InferenceTaskDefinition(
                self,
                f"Task{suffix}",
                runtime=settings.neuron_runtime,
                instance_size=settings.instance_size,
                model_name=model.name,
                grpc_port=model.grpc_port,
                rest_port=model.rest_port,
                server_image=images.server_image,
                sidecar_image=images.sidecar_image,
                log_retention_days=settings.log_retention_days,
                cluster_name=cluster.cluster_name,
                cores=model,
                batching_parameters=settings.batching.parameters_file() if settings.batching else None,
                model_s3=model.s3,
            )
            service = InferenceService(
                self,
                f"Inference{suffix}",
                cluster=cluster,
                task_definition=task.task_definition,
                capacity_provider_name=capacity.capacity_provider.capacity_provider_name,
                instance_type=settings.instance_size.name,
                desired_count=settings.desired_count,
                one_task_per_instance=static_ports,
                health_check_grace_period=HEALTH_CHECK_START_PERIOD,
                min_tasks=settings.min_tasks,
                max_tasks=settings.max_tasks,
                parked=settings.parked,
                scale_on_neuron_cores=not static_ports,
            )
            target_groups = endpoint.serve(
                service.service,
                container_name=model.name,
                grpc_port=model.grpc_port,
                rest_port=model.rest_port,
                id_suffix=suffix,
            )
            observability = ServiceObservability(
                self,
                f"Observability{suffix}",
                service=service.service,
                cluster_name=cluster.cluster_name,
                load_balancer=endpoint.load_balancer,
                target_groups=target_groups,
                min_tasks=settings.min_tasks,
                neuron_metrics=not static_ports,
                notifications=capacity.scaling_events,
            )
            CfnOutput(self, f"{suffix}ModelName", value=model.name)
            CfnOutput(self, f"{suffix}ServiceName", value=service.service.service_name)
            CfnOutput(self, f"{suffix}GrpcPort", value=str(model.grpc_port))
            CfnOutput(self, f"{suffix}RestPort", value=str(model.rest_port))
            CfnOutput(
                self,
                f"{suffix}DashboardName",
                description="CloudWatch dashboard of the model's service; alarms notify NotificationsTopicArn",
                value=observability.dashboard.dashboard_name,
            )
