"""Lifting the instances' scale-in protection when the stack is deleted, so ``cdk destroy`` finishes."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import CfnResource, CustomResource, Duration, RemovalPolicy
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from components.findings import acknowledge, acknowledge_group_arn
from components.log_retention import retention

HANDLER = Path(__file__).resolve().parent / "functions" / "lift_scale_in_protection.py"


class LiftScaleInProtectionOnDelete(Construct):
    """A custom resource that, deleted just before its Auto Scaling group, unprotects the group's instances.

    ECS managed termination protection keeps instances that run tasks from being scaled in; nothing
    clears the flags when the capacity provider goes, so CloudFormation's delete of the group would
    wait on them (aws-cdk#14732). Order on delete: services, the provider's association, the
    provider (``must_outlive`` it), this resource (its handler runs), then the group.
    The function may describe groups (which IAM cannot scope) and change only this group.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        auto_scaling_group: autoscaling.AutoScalingGroup,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        log_group = logs.LogGroup(
            self, "Logs", retention=retention(log_retention_days), removal_policy=RemovalPolicy.DESTROY
        )
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="Lifts scale-in protection from one Auto Scaling group's instances when the stack is deleted",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ChangeThisGroupOnly",
                actions=["autoscaling:SetInstanceProtection", "autoscaling:UpdateAutoScalingGroup"],
                resources=[auto_scaling_group.auto_scaling_group_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="FindTheInstances", actions=["autoscaling:DescribeAutoScalingGroups"], resources=["*"]
            )
        )
        # A function with its own log group writes only if its role may (CDK grants the default group only).
        log_group.grant_write(role)
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=lambda_.Runtime.PYTHON_3_14,
            handler="index.handler",
            code=lambda_.Code.from_inline(HANDLER.read_text()),
            # the Auto Scaling calls, then up to four tries at the answer (15 s each, 2 + 4 + 8 s apart)
            timeout=Duration.minutes(2),
            role=role,
            log_group=log_group,
            description="Lifts scale-in protection from the inference group's instances on stack delete",
        )
        # CDK orders the function after its role, which the role's GetAtt already does (cfn-lint W3005).
        function_resource = self.function.node.default_child
        assert isinstance(function_resource, CfnResource)
        function_resource.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=self.function.function_arn,
            resource_type="Custom::LiftScaleInProtection",
            properties={"AutoScalingGroupName": auto_scaling_group.auto_scaling_group_name},
        )
        policy = role.node.find_child("DefaultPolicy")
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "autoscaling:DescribeAutoScalingGroups supports no resource-level permission; the calls that "
            "change anything are limited to this stack's group",
        )
        acknowledge_group_arn(policy, auto_scaling_group)

    def must_outlive(self, construct: Construct) -> None:
        """``construct`` is deleted before this resource (so protection is lifted only once it is gone)."""
        construct.node.add_dependency(self.resource)
