"""Custom resource: on stack delete, lift scale-in protection from the group's instances.

ECS never clears managed termination protection when its capacity provider goes
(aws/containers-roadmap#2862), so deleting the group waits on protected instances until it times
out (aws/aws-cdk#14732). This runs after the provider is gone, before the group: it stops
protecting new instances and unprotects the rest. Create and Update do nothing. Standard library
and boto3 only (the Lambda runtime's own).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

# SetInstanceProtection takes at most 50 instance IDs (EC2 Auto Scaling API reference).
BATCH = 50
# An answer that does not arrive leaves CloudFormation waiting an hour: try again, within the timeout.
ANSWER_ATTEMPTS = 4
ANSWER_BACKOFF_SECONDS = 2.0


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


def respond(event: Mapping[str, Any], status: str, reason: str, physical_id: str, pause: Any = time.sleep) -> None:
    """Answers CloudFormation at the pre-signed ResponseURL (the custom resource response protocol),
    trying again with a growing pause when the answer does not get through."""
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
    for attempt in range(1, ANSWER_ATTEMPTS + 1):
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                response.read()
            return
        except Exception as error:
            print(json.dumps({"answer": status, "attempt": attempt, "error": str(error)}))
            if attempt == ANSWER_ATTEMPTS:
                raise
            pause(ANSWER_BACKOFF_SECONDS * 2 ** (attempt - 1))


def handler(event: Mapping[str, Any], context: Any, autoscaling: Any = None, pause: Any = time.sleep) -> None:
    group_name = str(event.get("ResourceProperties", {}).get("AutoScalingGroupName", ""))
    physical_id = f"lift-scale-in-protection-{group_name}"
    status, reason = "SUCCESS", ""
    try:
        if event["RequestType"] == "Delete":
            if autoscaling is None:
                import boto3  # noqa: PLC0415  (the Lambda runtime's; tests pass a stand-in)

                autoscaling = boto3.client("autoscaling")
            lifted = lift(group_name, autoscaling)
            print(json.dumps({"group": group_name, "unprotected": lifted}))
    except Exception as error:  # reported, not raised: CloudFormation would wait an hour for an answer
        status, reason = "FAILED", f"{type(error).__name__}: {error}"
        print(json.dumps({"group": group_name, "error": reason}))
    respond(event, status, reason, physical_id, pause)
