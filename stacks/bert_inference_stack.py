"""The one stack: BERT behind TensorFlow Serving on an ECS cluster of Inferentia instances."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aspects, CfnOutput, Fn, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from components.capacity import InferentiaCapacity
from components.endpoint_relay import EndpointRelay
from components.fleet_scaling import FleetScaling
from components.load_balancer import InferenceLoadBalancer
from components.logical_ids import KeepLogicalIds
from components.managed_capacity import ManagedInferentiaCapacity
from components.network import ServingNetwork
from components.neuron_recovery import NeuronRecovery
from components.observability import EndpointAlarms
from components.served_model import ServedModel, ServingPlatform
from config.profile import CapacityMode
from config.settings import DeploymentSettings
from contracts import outputs


class BertInferenceStack(Stack):
    """Composes network, cluster, capacity and endpoint, then one :class:`ServedModel` per model."""

    @property
    def availability_zones(self) -> list[str]:
        """The named zones, or the region's first ones: an environment-agnostic stack would otherwise get two."""
        zones = self._zones
        return list(zones.names) or [Fn.select(index, Fn.get_azs()) for index in range(zones.count)]

    def __init__(self, scope: Construct, construct_id: str, *, settings: DeploymentSettings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._zones = settings.zones

        network = ServingNetwork(
            self,
            "Network",
            vpc_cidr=settings.vpc_cidr,
            nat_gateways=settings.nat_gateways,
            zones=settings.zones.count,
            named_zones=bool(settings.zones.names),
            allowed_cidr=settings.allowed_cidr,
            allow_ssh=settings.key_name is not None,
            flow_log_retention_days=settings.log_retention_days,
        )
        cluster = ecs.Cluster(self, "Cluster", vpc=network.vpc, container_insights_v2=ecs.ContainerInsights.ENABLED)
        # The one place the capacity mode chooses a construct; both expose a provider and the topic.
        capacity_construct = (
            ManagedInferentiaCapacity
            if settings.profile.capacity is CapacityMode.MANAGED_INSTANCES
            else InferentiaCapacity
        )
        capacity = capacity_construct(
            self,
            "Capacity",
            cluster=cluster,
            vpc=network.vpc,
            security_group=network.security_group,
            settings=settings,
        )
        endpoint = InferenceLoadBalancer(
            self,
            "Endpoint",
            vpc=network.vpc,
            public=settings.public_endpoint,
            allowed_cidr=settings.allowed_cidr,
        )
        endpoint.admit_to(network.security_group, settings.profile, settings.models)
        relay = EndpointRelay(
            self,
            "Relay",
            vpc=network.vpc,
            endpoint_security_group=endpoint.security_group,
            load_balancer_ports=[port for model in settings.models for port in (model.grpc_port, model.rest_port)],
            log_retention_days=settings.log_retention_days,
        )
        EndpointAlarms(
            self, "EndpointAlarms", load_balancer=endpoint.load_balancer, notifications=capacity.scaling_events
        )

        recovery = None
        if settings.neuron_recovery is not None and isinstance(capacity, InferentiaCapacity):
            recovery = NeuronRecovery(
                self,
                "NeuronRecovery",
                cluster=cluster,
                vpc=network.vpc,
                auto_scaling_group=capacity.auto_scaling_group,
                recover=settings.neuron_recovery,
                log_retention_days=settings.log_retention_days,
                notifications=capacity.scaling_events,
            )

        platform = ServingPlatform(
            cluster=cluster,
            capacity=capacity,
            endpoint=endpoint,
            task_security_group=network.security_group,
            neuron_health=recovery.errors_detected if recovery else None,
        )
        served = [
            ServedModel(
                self,
                f"Model{index + 1}",
                model=model,
                id_suffix=outputs.model_prefix(index),
                settings=settings,
                platform=platform,
            )
            for index, model in enumerate(settings.models)
        ]
        Aspects.of(self).add(KeepLogicalIds())
        # Parked (desiredCount 0): the range [0, 0] stops every task at once and keeps them stopped.
        FleetScaling(
            self,
            "Scaling",
            cluster_name=cluster.cluster_name,
            services=[model.inference.service for model in served],
            neuron_metrics=settings.profile.neuron_metrics,
            min_tasks=0 if settings.parked else settings.min_tasks,
            max_tasks=0 if settings.parked else settings.max_tasks,
        )

        CfnOutput(self, outputs.CLUSTER_NAME, value=cluster.cluster_name)
        CfnOutput(self, outputs.SECURITY_GROUP_ID, value=network.security_group.security_group_id)
        CfnOutput(self, outputs.INSTANCE_TYPE, value=settings.instance_size.name)
        CfnOutput(self, outputs.SERVER_API, value=settings.profile.engine.api)
        CfnOutput(
            self,
            outputs.LOAD_BALANCER_DNS_NAME,
            description="The model endpoint: each model's gRPC and REST ports, from allowedCidr",
            value=endpoint.load_balancer.load_balancer_dns_name,
        )
        CfnOutput(self, outputs.NOTIFICATIONS_TOPIC_ARN, value=capacity.scaling_events.topic_arn)
        CfnOutput(self, outputs.RELAY_TASK_DEFINITION, value=relay.task_definition.task_definition_arn)
        CfnOutput(self, outputs.RELAY_SECURITY_GROUP, value=relay.security_group.security_group_id)
        CfnOutput(
            self,
            outputs.RELAY_SUBNETS,
            value=Fn.join(",", network.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS).subnet_ids),
        )
        # The first model's outputs carry no prefix, so a one-model stack reads as the walk-through's.
        for index, model in enumerate(served):
            values = {
                outputs.MODEL_NAME: model.model.name,
                outputs.SERVICE_NAME: model.inference.service.service_name,
                outputs.GRPC_PORT: str(model.model.grpc_port),
                outputs.REST_PORT: str(model.model.rest_port),
                outputs.DASHBOARD_NAME: model.observability.dashboard.dashboard_name,
            }
            for key, value in values.items():
                description = (
                    "CloudWatch dashboard of the model's service; alarms notify NotificationsTopicArn"
                    if key == outputs.DASHBOARD_NAME
                    else None
                )
                CfnOutput(self, outputs.model_output(key, index), value=value, description=description)
