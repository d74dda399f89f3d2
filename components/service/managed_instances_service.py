"""An ECS service that runs on an ECS Managed Instances capacity provider (awsvpc)."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from constructs import Construct


class ManagedInstancesService(ecs.BaseService):
    """A REPLICA service on a Managed Instances capacity provider, each task on its own interface.

    CDK's ``Ec2Service`` refuses a cluster without EC2 capacity of its own (an Auto Scaling group),
    which a Managed Instances cluster has not; this builds the same ``AWS::ECS::Service`` from CDK's
    ``BaseService``, as ``Ec2Service`` does, so load balancing and autoscaling work unchanged.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cluster: ecs.ICluster,
        task_definition: ecs.TaskDefinition,
        capacity_provider_strategies: Sequence[ecs.CapacityProviderStrategy],
        circuit_breaker: ecs.DeploymentCircuitBreaker,
        min_healthy_percent: int,
        max_healthy_percent: int,
        health_check_grace_period: Duration,
        security_groups: Sequence[ec2.ISecurityGroup],
        vpc_subnets: ec2.SubnetSelection,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            ecs.BaseServiceProps(
                cluster=cluster,
                # omitted from the template: a capacity provider strategy replaces the launch type
                launch_type=ecs.LaunchType.EC2,
                capacity_provider_strategies=list(capacity_provider_strategies),
                circuit_breaker=circuit_breaker,
                min_healthy_percent=min_healthy_percent,
                max_healthy_percent=max_healthy_percent,
                health_check_grace_period=health_check_grace_period,
            ),
            {
                "cluster": cluster.cluster_name,
                "taskDefinition": task_definition.task_definition_arn,
                "schedulingStrategy": "REPLICA",
            },
            task_definition,
        )
        self._configure_aws_vpc_networking_with_security_groups(cluster.vpc, False, vpc_subnets, list(security_groups))
