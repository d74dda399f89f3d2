"""One served model: its images, task definition, service, listeners and dashboard."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from components.capacity import ServingCapacity
from components.inference_service import InferenceService
from components.inference_task import InferenceTaskDefinition
from components.load_balancer import InferenceLoadBalancer
from components.logical_ids import IdTransparentScope
from components.model_image import ModelServerImages
from components.observability import ServiceObservability
from config.placement import ModelSettings
from config.settings import DeploymentSettings


@dataclass(frozen=True, kw_only=True)
class ServingPlatform:
    """What every served model shares: the cluster, its Inferentia capacity and the one endpoint."""

    cluster: ecs.Cluster
    capacity: ServingCapacity
    endpoint: InferenceLoadBalancer
    task_security_group: ec2.ISecurityGroup
    """Where tasks with their own network interface (Managed Instances) are admitted from the endpoint."""
    neuron_health: cloudwatch.IMetric | None = None
    """Neuron errors found on the instances by the problem detector, when it runs."""


class ServedModel(IdTransparentScope):
    """Everything one model of the fleet needs, on the shared platform.

    Its resources keep the logical IDs they had before this construct grouped them (``Task``,
    ``TaskModel2``, ...; see :mod:`components.logical_ids`), so a deployed stack updates in place.
    Listeners live on the shared load balancer, each on this model's own ports.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model: ModelSettings,
        id_suffix: str,
        settings: DeploymentSettings,
        platform: ServingPlatform,
    ) -> None:
        super().__init__(scope, construct_id, id_suffix=id_suffix)
        self.model = model
        images = ModelServerImages(self, "Images", profile=settings.profile, model=model)
        self.task = InferenceTaskDefinition(
            self,
            "Task",
            profile=settings.profile,
            model=model,
            instance_sizes=settings.instance_sizes,
            server_image=images.server_image,
            sidecar_image=images.sidecar_image,
            log_retention_days=settings.log_retention_days,
            cluster_name=platform.cluster.cluster_name,
            batching=settings.batching,
        )
        self.inference = InferenceService(
            self,
            "Inference",
            cluster=platform.cluster,
            task_definition=self.task.task_definition,
            capacity=platform.capacity,
            settings=settings,
            security_group=platform.task_security_group,
        )
        target_groups = platform.endpoint.serve(
            self.inference.service, model=model, engine=settings.profile.engine, id_suffix=id_suffix
        )
        self.observability = ServiceObservability(
            self,
            "Observability",
            service=self.inference.service,
            cluster_name=platform.cluster.cluster_name,
            load_balancer=platform.endpoint.load_balancer,
            target_groups=target_groups,
            min_tasks=settings.min_tasks,
            neuron_metrics=settings.profile.neuron_metrics,
            server_metrics=settings.profile.server_metrics,
            neuron_health=platform.neuron_health,
            notifications=platform.capacity.scaling_events,
        )
