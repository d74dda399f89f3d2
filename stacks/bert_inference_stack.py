"""The one stack: BERT on an ECS cluster of Inferentia instances, behind one load balancer."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Fn, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from components.capacity.asg_capacity import InferentiaCapacity
from components.capacity.managed_capacity import ManagedInferentiaCapacity
from components.endpoint.load_balancer import InferenceLoadBalancer
from components.endpoint.relay import EndpointRelay
from components.network import ServingNetwork
from components.neuron_recovery import NeuronRecovery
from components.notifications import NotificationsTopic
from components.observability import EndpointAlarms
from components.served_model import ServedModel, ServingPlatform
from components.service.fleet_scaling import FleetScaling
from config.endpoint import EndpointSettings
from config.settings import DeploymentSettings
from contracts import outputs


class BertInferenceStack(Stack):
    """Composes network, cluster, capacity, endpoint and notifications, then one :class:`ServedModel` per
    model, their shared scaling, and the outputs the client reads."""

    @property
    def availability_zones(self) -> list[str]:
        """The named zones, or the region's first ones: an environment-agnostic stack would otherwise get two."""
        zones = self._zones
        return list(zones.names) or [Fn.select(index, Fn.get_azs()) for index in range(zones.count)]

    def _api_key(self, endpoint: EndpointSettings) -> secretsmanager.ISecret | None:
        """The text API's key: a secret named by its full ARN, or by its name (ARN suffix unknown)."""
        if endpoint.api_key_secret is None:
            return None
        if endpoint.secret_is_arn:
            return secretsmanager.Secret.from_secret_complete_arn(self, "TextApiKey", endpoint.api_key_secret)
        return secretsmanager.Secret.from_secret_name_v2(self, "TextApiKey", endpoint.api_key_secret)

    def __init__(self, scope: Construct, construct_id: str, *, settings: DeploymentSettings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._zones = settings.zones
        profile = settings.profile

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
        self.cluster = cluster
        notifications = NotificationsTopic(self, "Notifications").topic

        capacity: InferentiaCapacity | ManagedInferentiaCapacity
        if profile.own_instances:
            capacity = InferentiaCapacity(
                self,
                "Capacity",
                cluster=cluster,
                vpc=network.vpc,
                security_group=network.security_group,
                notifications=notifications,
                instance_sizes=settings.instance_sizes,
                host_driver=settings.releases.host_driver,
                ami_id=settings.ami_id,
                ami_release=settings.ami_release,
                spot=settings.spot,
                on_demand_base=settings.on_demand_base,
                min_instances=settings.min_instances,
                max_instances=settings.max_instances,
                key_name=settings.key_name,
                root_volume_gib=settings.root_volume_gib,
                log_retention_days=settings.log_retention_days,
            )
        else:
            capacity = ManagedInferentiaCapacity(
                self,
                "Capacity",
                cluster=cluster,
                vpc=network.vpc,
                security_group=network.security_group,
                instance_size=settings.instance_size,
                spot=settings.spot,
                root_volume_gib=settings.root_volume_gib,
            )

        endpoint = InferenceLoadBalancer(
            self,
            "Endpoint",
            vpc=network.vpc,
            public=settings.public_endpoint,
            allowed_cidr=settings.allowed_cidr,
            certificate_arn=settings.endpoint.certificate_arn,
            tls_tensor_ports=settings.endpoint.tls_tensor_ports,
        )
        endpoint.admit_to(network.security_group, profile, settings.models)
        EndpointAlarms(self, "EndpointAlarms", load_balancer=endpoint.load_balancer, notifications=notifications)
        relay = EndpointRelay(
            self,
            "Relay",
            vpc=network.vpc,
            endpoint_security_group=endpoint.security_group,
            load_balancer_ports=[
                port
                for model in settings.models
                for port in (model.grpc_port, model.rest_port, *((model.text_port,) if profile.text_front else ()))
            ],
            log_retention_days=settings.log_retention_days,
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
                notifications=notifications,
            )

        platform = ServingPlatform(
            cluster=cluster,
            capacity_provider_name=capacity.capacity_provider_name,
            endpoint=endpoint,
            notifications=notifications,
            task_security_group=network.security_group,
            neuron_health=recovery.errors_detected if recovery else None,
            api_key=self._api_key(settings.endpoint),
            max_client_batch_size=settings.endpoint.max_client_batch_size,
        )
        served = [
            ServedModel(
                self,
                f"Model{index + 1}",
                model=model,
                profile=profile,
                instance_sizes=settings.instance_sizes,
                batching=settings.batching,
                rollout=settings.rollout,
                min_tasks=settings.min_tasks,
                log_retention_days=settings.log_retention_days,
                platform=platform,
            )
            for index, model in enumerate(settings.models)
        ]
        self.served = served
        """Each model's service, task and listeners (what tests/integ asserts on)."""
        # Parked (desiredCount 0): the range [0, 0] stops every task at once and keeps them stopped.
        FleetScaling(
            self,
            "Scaling",
            cluster_name=cluster.cluster_name,
            services=[model.inference.service for model in served],
            neuron_metrics=profile.neuron_metrics,
            min_tasks=0 if settings.parked else settings.min_tasks,
            max_tasks=0 if settings.parked else settings.max_tasks,
        )

        CfnOutput(self, outputs.CLUSTER_NAME, value=cluster.cluster_name)
        CfnOutput(self, outputs.SECURITY_GROUP_ID, value=network.security_group.security_group_id)
        CfnOutput(self, outputs.INSTANCE_TYPE, value=settings.instance_size.name)
        CfnOutput(self, outputs.SERVER_API, value=profile.engine.api)
        CfnOutput(
            self,
            outputs.LOAD_BALANCER_DNS_NAME,
            description="The model endpoint: each model's gRPC and REST ports, from allowedCidr",
            value=endpoint.load_balancer.load_balancer_dns_name,
        )
        CfnOutput(self, outputs.NOTIFICATIONS_TOPIC_ARN, value=notifications.topic_arn)
        CfnOutput(
            self,
            outputs.TENSOR_TLS,
            description="Whether the gRPC and REST ports terminate TLS (certificateArn, tlsTensorPorts)",
            value="true" if endpoint.tls(tensor=True) else "false",
        )
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
            if model.text_front is not None:
                scheme = "https" if endpoint.tls(tensor=False) else "http"
                values[outputs.TEXT_URL] = Fn.join(
                    "", [f"{scheme}://", endpoint.load_balancer.load_balancer_dns_name, f":{model.model.text_port}"]
                )
            for key, value in values.items():
                description = (
                    "CloudWatch dashboard of the model's service; alarms notify NotificationsTopicArn"
                    if key == outputs.DASHBOARD_NAME
                    else None
                )
                CfnOutput(self, outputs.model_output(key, index), value=value, description=description)
