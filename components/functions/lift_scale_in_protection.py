"""Custom resource handler: on stack delete, lift scale-in protection from the group's instances.

With ECS managed termination protection the group protects new instances from scale-in, and ECS
never clears those flags when its capacity provider is deleted (aws/containers-roadmap#2862), so
CloudFormation's delete of the group (min/max/desired to 0) waits on protected instances until it
times out (aws/aws-cdk#14732, #18179). This runs after the capacity provider is gone and before
the group is deleted: it stops protecting new instances and unprotects every instance left.
Create and Update do nothing. Standard library and boto3 only (the Lambda runtime's own).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

# SetInstanceProtection takes at most 50 instance IDs (EC2 Auto Scaling API reference).
BATCH = 50


def _batches(items: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def lift(group_name: str, autoscaling: Any) -> list[str]:
    """Unprotects every protected instance of ``group_name``; returns their IDs. A missing group is not an error."""
    groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])["AutoScalingGroups"]
    if not groups:
        return []
    autoscaling.update_auto_scaling_group(AutoScalingGroupName=group_name, NewInstancesProtectedFromScaleIn=False)
    protected = [instance["InstanceId"] for instance in groups[0]["Instances"] if instance.get("ProtectedFromScaleIn")]
    for batch in _batches(protected):
        autoscaling.set_instance_protection(
            AutoScalingGroupName=group_name, InstanceIds=batch, ProtectedFromScaleIn=False
        )
    return protected


def respond(event: Mapping[str, Any], status: str, reason: str, physical_id: str) -> None:
    """Answers CloudFormation at the pre-signed ResponseURL (the custom resource response protocol)."""
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:1000],
            "PhysicalResourceId": physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
        }
    ).encode()
    request = urllib.request.Request(
        event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def handler(event: Mapping[str, Any], context: Any, autoscaling: Any = None) -> None:
    group_name = event["ResourceProperties"]["AutoScalingGroupName"]
    physical_id = f"lift-scale-in-protection-{group_name}"
    try:
        if event["RequestType"] == "Delete":
            if autoscaling is None:
                import boto3  # noqa: PLC0415  (the Lambda runtime's; tests pass a stand-in)

                autoscaling = boto3.client("autoscaling")
            lifted = lift(group_name, autoscaling)
            print(json.dumps({"group": group_name, "unprotected": lifted}))
        respond(event, "SUCCESS", "", physical_id)
    except Exception as error:  # CloudFormation waits an hour for an answer that never comes otherwise
        respond(event, "FAILED", f"{type(error).__name__}: {error}", physical_id)
