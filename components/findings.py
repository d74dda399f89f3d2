"""Accepting a cdk-nag finding: one construct, one rule, and the reason a reviewer will read."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_autoscaling as autoscaling
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Accepts ``rule`` (e.g. ``AwsSolutions-IAM5[Resource::*]``) on ``construct`` and its children only."""
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


def acknowledge_group_arn(policy: IConstruct, group: autoscaling.IAutoScalingGroup) -> None:
    """Accepts the wildcard cdk-nag sees in a grant on this stack's one Auto Scaling group: the group's ARN
    holds its ID, which CloudFormation does not return, so the grant names the group and leaves the ID."""
    group_id = Stack.of(policy).resolve(group.auto_scaling_group_name)["Ref"]
    acknowledge(
        policy,
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>:"
        f"autoScalingGroup:*:autoScalingGroupName/<{group_id}>]",
        "The wildcard is the group's ID, which CloudFormation does not return; the group name pins "
        "the ARN to this stack's one group",
    )
