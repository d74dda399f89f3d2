"""Service: keeps the model-server tasks running on the Inferentia capacity provider."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnResource
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from components.capacity import ServingCapacity
from components.inference_task import HEALTH_CHECK_START_PERIOD
from components.managed_instances_service import ManagedInstancesService
from config.settings import DeploymentSettings


def one_at_a_time_min_healthy_percent(tasks: int) -> int:
    """The largest minimum-healthy percentage that still lets ECS stop one of ``tasks`` to start its successor.

    ECS rounds the minimum up, so it must allow exactly ``tasks - 1`` healthy tasks: 50 % for two,
    66 % for three, ... (0 for one task: the one task would stop first.)
    """
    if tasks <= 1:
        return 0
    return (tasks - 1) * 100 // tasks


def deployment_percents(
    *, max_tasks: int, task_slots: int | None, min_tasks: int = 1, in_place: bool = False
) -> tuple[int, int]:
    """(minimum healthy, maximum) percent of a rolling deployment that never leaves the service without a task.

    ``in_place`` (several models, one task of each per instance): maximum 100 %, so a replacement can
    only take the slot its predecessor freed and every instance keeps one task of each model; a
    replacement started beside the old task would need an instance of its own, and the fleet would
    end with instances holding one model each. The minimum lets one task of ``min_tasks`` stop first
    (settings require at least two, so the model keeps serving).

    Maximum 200 %: ECS starts replacements beside the old tasks wherever a core slot is free, and
    managed scaling adds instances for them up to ``maxInstances``. Minimum 100 % when the fleet
    has a spare slot even at ``maxTasks`` (``task_slots`` > ``max_tasks``): every replacement
    starts before its predecessor stops. Otherwise, at ``maxTasks`` one task must stop first, so
    the minimum keeps ``max_tasks - 1`` (never 0: settings refuse a fleet of one slot).
    """
    if in_place:
        return one_at_a_time_min_healthy_percent(min_tasks), 100
    if task_slots is None or task_slots > max_tasks:  # None: AWS sizes the fleet (Managed Instances)
        return 100, 200
    return one_at_a_time_min_healthy_percent(max_tasks), 200


def placement_constraints(settings: DeploymentSettings) -> list[ecs.PlacementConstraint]:
    """Tasks go only to the group's sizes, and never more of one service per instance than it has core slots.

    Several tasks per instance are capped by their CPU shares (components/inference_task.py); one
    task per instance by a distinct-instance constraint, exact on every size the group launches.
    """
    names = [size.name for size in settings.instance_sizes]
    expression = (
        f"attribute:ecs.instance-type == {names[0]}"
        if len(names) == 1
        else f"attribute:ecs.instance-type in [{', '.join(names)}]"
    )
    one_per_instance = settings.profile.one_task_per_instance or settings.tasks_per_instance == 1
    return [
        *([ecs.PlacementConstraint.distinct_instances()] if one_per_instance else []),
        ecs.PlacementConstraint.member_of(expression),
    ]


class InferenceService(Construct):
    """An EC2 service on the capacity provider, autoscaled, deployed without ever dropping to no task.

    Tasks land only on instances of the configured type (and, where the profile gives a task the
    whole instance, one per instance). Failed tasks are relaunched by the scheduler; a deployment
    that never turns healthy is stopped and rolled back by the circuit breaker.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: ecs.Cluster,
        task_definition: ecs.TaskDefinition,
        capacity: ServingCapacity,
        settings: DeploymentSettings,
        security_group: ec2.ISecurityGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        profile = settings.profile
        several_models = len(settings.models) > 1
        min_healthy, max_healthy = deployment_percents(
            max_tasks=settings.max_tasks,
            task_slots=settings.task_slots,
            min_tasks=settings.min_tasks,
            in_place=several_models,
        )

        strategy = [ecs.CapacityProviderStrategy(capacity_provider=capacity.capacity_provider_name, weight=1)]
        # No DesiredCount in the template: CloudFormation would send it on every update that touches the
        # service and reset the count autoscaling chose (aws-cdk#13130, containers-roadmap#493). A new
        # service starts at 1 and Application Auto Scaling moves it into [min, max] when the scalable
        # target registers (RegisterScalableTarget API reference).
        common: dict[str, Any] = {
            "cluster": cluster,
            "task_definition": task_definition,
            "capacity_provider_strategies": strategy,
            "circuit_breaker": ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            "min_healthy_percent": min_healthy,
            "max_healthy_percent": max_healthy,
            "health_check_grace_period": HEALTH_CHECK_START_PERIOD,
        }
        self.service: ecs.BaseService
        if profile.own_instances:
            self.service = ecs.Ec2Service(
                self,
                "Service",
                placement_constraints=placement_constraints(settings),
                # Several models: a scale-in stops the task on the instance left with the most free
                # resources, i.e. the one whose other model's task already went ("binpack", ECS
                # developer guide, "Use strategies to define Amazon ECS task placement"), so whole
                # instances empty and managed scaling removes them.
                placement_strategies=[ecs.PlacementStrategy.packed_by_cpu()] if several_models else None,
                **common,
            )
        else:
            # Managed Instances: each task on its own interface in the private subnets
            self.service = ManagedInstancesService(
                self,
                "Service",
                security_groups=[security_group],
                vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
                **common,
            )
        # The strategy names the provider by a string, which gives CloudFormation no order against the
        # cluster's capacity-provider association (added by an aspect under the cluster at synth). Without
        # one, a delete removes the association while the service still uses the provider, and ECS
        # refuses: "The specified capacity provider is in use" (DELETE_FAILED). Depending on the whole
        # cluster construct covers the association wherever CDK puts it below the cluster.
        service_resource = self.service.node.default_child
        assert isinstance(service_resource, CfnResource)
        service_resource.node.add_dependency(cluster)
