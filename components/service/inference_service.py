"""Service: keeps the model-server tasks running on the Inferentia capacity provider."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnResource
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from constructs import Construct

from components.model_server.task import HEALTH_CHECK_START_PERIOD
from components.service.managed_instances_service import ManagedInstancesService
from config.rollout import Rollout


def placement_constraints(rollout: Rollout) -> list[ecs.PlacementConstraint]:
    """Tasks go only to the group's sizes, and never more of one service per instance than it has core slots.

    Several tasks per instance are capped by their CPU shares (components/model_server/task.py); one
    task per instance by a distinct-instance constraint, exact on every size the group launches.
    """
    names = rollout.instance_types
    expression = (
        f"attribute:ecs.instance-type == {names[0]}"
        if len(names) == 1
        else f"attribute:ecs.instance-type in [{', '.join(names)}]"
    )
    return [
        *([ecs.PlacementConstraint.distinct_instances()] if rollout.one_per_instance else []),
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
        capacity_provider_name: str,
        rollout: Rollout,
        own_instances: bool,
        security_group: ec2.ISecurityGroup,
    ) -> None:
        """``own_instances``: an EC2 service on this stack's group (else ECS Managed Instances, each task on
        its own interface in ``security_group``); ``rollout``: its placement and deployment."""
        super().__init__(scope, construct_id)
        strategy = [ecs.CapacityProviderStrategy(capacity_provider=capacity_provider_name, weight=1)]
        # No DesiredCount in the template: CloudFormation would send it on every update that touches the
        # service and reset the count autoscaling chose (aws-cdk#13130, containers-roadmap#493). A new
        # service starts at 1 and Application Auto Scaling moves it into [min, max] when the scalable
        # target registers (RegisterScalableTarget API reference).
        common: dict[str, Any] = {
            "cluster": cluster,
            "task_definition": task_definition,
            "capacity_provider_strategies": strategy,
            "circuit_breaker": ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            "min_healthy_percent": rollout.min_healthy_percent,
            "max_healthy_percent": rollout.max_percent,
            "health_check_grace_period": HEALTH_CHECK_START_PERIOD,
        }
        self.service: ecs.BaseService
        if own_instances:
            self.service = ecs.Ec2Service(
                self,
                "Service",
                placement_constraints=placement_constraints(rollout),
                # Several models: a scale-in stops the task on the instance left with the most free
                # resources, i.e. the one whose other model's task already went ("binpack", ECS
                # developer guide, "Use strategies to define Amazon ECS task placement"), so whole
                # instances empty and managed scaling removes them.
                placement_strategies=[ecs.PlacementStrategy.packed_by_cpu()] if rollout.binpack else None,
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
