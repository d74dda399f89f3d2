"""One served model: its images, task definition, service, listeners and dashboard."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from components.endpoint.load_balancer import InferenceLoadBalancer
from components.model_server.images import ModelServerImages
from components.model_server.task import InferenceTaskDefinition
from components.observability import ServiceObservability
from components.service.inference_service import InferenceService
from components.text_front.container import TextFront
from config.batching import BatchingSettings
from config.hardware import InstanceSize
from config.placement import ModelSettings
from config.profile import RuntimeProfile
from config.rollout import Rollout


@dataclass(frozen=True, kw_only=True)
class ServingPlatform:
    """What every served model shares: the cluster, its Inferentia capacity and the one endpoint."""

    cluster: ecs.Cluster
    capacity_provider_name: str
    endpoint: InferenceLoadBalancer
    notifications: sns.ITopic
    """Where every alarm goes."""
    task_security_group: ec2.ISecurityGroup
    """Where tasks with their own network interface (Managed Instances) are admitted from the endpoint."""
    neuron_health: cloudwatch.IMetric | None = None
    """Neuron errors found on the instances by the problem detector, when it runs."""
    api_key: secretsmanager.ISecret | None = None
    """The secret whose value every model's text API requires as a bearer token."""
    max_client_batch_size: int = 32
    """Inputs one text API request may carry."""


class ServedModel(Construct):
    """Everything one model of the fleet needs, on the shared platform: its images, task definition,
    service, listeners (on the shared load balancer, on this model's own ports) and dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model: ModelSettings,
        profile: RuntimeProfile,
        instance_sizes: Sequence[InstanceSize],
        batching: BatchingSettings | None,
        rollout: Rollout,
        min_tasks: int,
        log_retention_days: int,
        platform: ServingPlatform,
    ) -> None:
        """``profile``: the runtime layout; ``instance_sizes``: the sizes the tasks may land on, the
        preferred one first; ``rollout``: placement and deployment; ``min_tasks``: below it, an alarm."""
        super().__init__(scope, construct_id)
        self.model = model
        images = ModelServerImages(self, "Images", profile=profile, model=model)
        self.task = InferenceTaskDefinition(
            self,
            "Task",
            profile=profile,
            model=model,
            instance_sizes=instance_sizes,
            server_image=images.server_image,
            sidecar_image=images.sidecar_image,
            log_retention_days=log_retention_days,
            cluster_name=platform.cluster.cluster_name,
            batching=batching,
        )
        self.text_front = (
            TextFront(
                self,
                "TextFront",
                task_definition=self.task.task_definition,
                model=model,
                server=self.task.server,
                server_api=profile.engine.api,
                link_alias=self.task.server_link_alias,
                model_volume=self.task.model_volume,
                logging=self.task.logging("text-front"),
                api_key=platform.api_key,
                max_client_batch_size=platform.max_client_batch_size,
            )
            if profile.text_front
            else None
        )
        self.inference = InferenceService(
            self,
            "Inference",
            cluster=platform.cluster,
            task_definition=self.task.task_definition,
            capacity_provider_name=platform.capacity_provider_name,
            rollout=rollout,
            own_instances=profile.own_instances,
            security_group=platform.task_security_group,
        )
        self.target_groups = target_groups = platform.endpoint.serve(
            self,
            self.inference.service,
            model=model,
            engine=profile.engine,
            text_front=self.text_front.container.container_name if self.text_front else None,
        )
        self.observability = ServiceObservability(
            self,
            "Observability",
            service=self.inference.service,
            cluster_name=platform.cluster.cluster_name,
            load_balancer=platform.endpoint.load_balancer,
            target_groups=target_groups,
            min_tasks=min_tasks,
            neuron_metrics=profile.neuron_metrics,
            server_metrics=profile.server_metrics,
            neuron_health=platform.neuron_health,
            notifications=platform.notifications,
        )
