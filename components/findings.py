"""Accepting a cdk-nag finding: one construct, one rule, and the reason a reviewer will read."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Accepts ``rule`` (e.g. ``AwsSolutions-IAM5[Resource::*]``) on ``construct`` and its children only."""
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))
