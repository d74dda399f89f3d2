"""Security: cdk-nag clean on every variant, IAM least privilege, build contexts that admit only named files.

cfn-lint, checkov, hadolint, shellcheck and actionlint run in `make lint` (tools/scan.py), which CI
runs beside `make test`. Accepted findings are few, each scoped to one construct or resource and
carrying its reason; this file and security/checkov-baseline.json list them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2

from app import build_app
from components.network import ServingNetwork
from config.settings import DeploymentSettings
from tests.conftest import ROOT, VARIANTS, Synthesized, context_for
from tests.paths import COMPONENTS

SynthFn = Callable[[str], Synthesized]
BIN = Path(sys.executable).parent
CHECKOV_BASELINE = ROOT / "security" / "checkov-baseline.json"

# Every cdk-nag acknowledgment in the app: (construct path below the stack, rule). README lists them.
ACKNOWLEDGED = {("Notifications/Topic", "AwsSolutions-SNS2")}
# NLBs log TLS listeners only: without a certificate there is nothing to log; with one, the log bucket's own
# accesses are not logged in turn.
PLAIN_ENDPOINT_ACKNOWLEDGED = {("Endpoint/LoadBalancer", "AwsSolutions-ELB2")}
TLS_ENDPOINT_ACKNOWLEDGED = {("Endpoint/AccessLogs", "AwsSolutions-S1")}
ASG_ACKNOWLEDGED = {
    (
        "Capacity/InstanceRole",
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]",
    ),
    ("Capacity/InstanceRole/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),
    ("Capacity/AutoScalingGroup", "AwsSolutions-EC26"),
    ("Capacity/LiftScaleInProtection/Role/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),
    (
        "Capacity/LiftScaleInProtection/Role/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>:"
        "autoScalingGroup:*:autoScalingGroupName/<CapacityAutoScalingGroupASG0AD8679D>]",
    ),
}


MANAGED_INSTANCES_ACKNOWLEDGED = {
    ("Capacity/CapacityProvider/InstanceRole", "AwsSolutions-IAM5[Resource::*]"),
    (
        "Capacity/CapacityProvider/InstanceRole",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:<AWS::AccountId>:container-instance/*]",
    ),
    (
        "Capacity/CapacityProvider/CapacityProviderRole",
        "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonECSInfrastructureRolePolicyForManagedInstances]",
    ),
}
RELAY_ACKNOWLEDGED = {("Relay/TaskDefinition/TaskRole/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]")}
RECOVERY_ACKNOWLEDGED = {
    ("NeuronRecovery/TaskDefinition", "AwsSolutions-ECS2"),
    ("NeuronRecovery/TaskDefinition/ExecutionRole/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),
    ("NeuronRecovery/TaskDefinition/TaskRole/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),
    (
        "NeuronRecovery/TaskDefinition/TaskRole/DefaultPolicy",
        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>:"
        "autoScalingGroup:*:autoScalingGroupName/<CapacityAutoScalingGroupASG0AD8679D>]",
    ),
}


def expected_acknowledgments(settings: DeploymentSettings) -> set[tuple[str, str]]:
    """ACKNOWLEDGED, each model's task findings, the S3 read of S3-loaded models, and the recovery daemon's."""
    expected = set(ACKNOWLEDGED) | (
        ASG_ACKNOWLEDGED if settings.profile.own_instances else MANAGED_INSTANCES_ACKNOWLEDGED
    )
    expected |= RECOVERY_ACKNOWLEDGED if settings.neuron_recovery is not None else set()
    expected |= RELAY_ACKNOWLEDGED
    expected |= TLS_ENDPOINT_ACKNOWLEDGED if settings.endpoint.certificate_arn else PLAIN_ENDPOINT_ACKNOWLEDGED
    for index, model in enumerate(settings.models):
        task = f"Model{index + 1}/Task"
        expected.add((f"{task}/TaskDefinition", "AwsSolutions-ECS2"))
        expected.add((f"{task}/TaskDefinition/ExecutionRole/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"))
        if model.s3:
            resource = f"arn:<AWS::Partition>:s3:::{model.s3.bucket}/{model.s3.prefix}/*"
            expected.add((f"{task}/TaskDefinition/TaskRole/DefaultPolicy", f"AwsSolutions-IAM5[Resource::{resource}]"))
    return expected


# Actions IAM cannot scope to a resource (or, for the agent's Poll family, scopes by condition).
# Each maps to the condition key it must then carry, or None where no condition narrows it.
STAR_RESOURCE_ACTIONS: dict[str, str | None] = {
    "ecs:DiscoverPollEndpoint": None,  # no resource-level permissions
    "ecr:GetAuthorizationToken": None,
    "autoscaling:DescribeAutoScalingGroups": None,
    "autoscaling:DescribeAutoScalingInstances": None,
    "ecs:Poll": "ecs:cluster",
    "ecs:StartTelemetrySession": "ecs:cluster",
    "ecs:UpdateContainerInstancesState": "ecs:cluster",
    "cloudwatch:PutMetricData": "cloudwatch:namespace",
    "ec2:DescribeInstances": "ec2:ResourceTag/aws:autoscaling:groupName",
    # ECS Exec's channels, for make tunnel's relay task (Service Authorization Reference: no resource types)
    "ssmmessages:CreateControlChannel": None,
    "ssmmessages:CreateDataChannel": None,
    "ssmmessages:OpenControlChannel": None,
    "ssmmessages:OpenDataChannel": None,
}
MANAGED_POLICIES = {"AmazonSSMManagedInstanceCore", "service-role/AWSLambdaBasicExecutionRole"}
MANAGED_INSTANCES_POLICIES = {
    "service-role/AWSLambdaBasicExecutionRole",
    "AmazonECSInfrastructureRolePolicyForManagedInstances",
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def iam_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every identity-policy statement in the template, with the logical ID that holds it."""
    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Policy":
            documents = [properties["PolicyDocument"]]
        elif resource["Type"] == "AWS::IAM::Role":
            documents = [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
        else:
            continue
        for document in documents:
            for statement in document["Statement"]:
                yield logical_id, statement


def policy_actions(synthesized: Synthesized, role_fragment: str) -> set[str]:
    actions: set[str] = set()
    for policy in synthesized.resources("AWS::IAM::Policy").values():
        if any(role_fragment in role["Ref"] for role in policy["Properties"]["Roles"]):
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                actions.update(_as_list(statement["Action"]))
    return actions


# --- cdk-nag ---------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_cdk_nag_passes_with_no_unacknowledged_finding(synth: SynthFn, variant: str) -> None:
    # Synthesis itself fails on a finding; the report shows which plugins ran and concluded.
    report_file = synth(variant).directory / "validation-report.json"
    reports = json.loads(report_file.read_text())["pluginReports"] if report_file.exists() else []

    assert [report["pluginName"] for report in reports if report["conclusion"] != "success"] == []


def test_cdk_nag_is_wired_into_the_app_and_stops_synthesis() -> None:
    # GIVEN the real app with one world-open ingress rule added behind the settings' back
    app = cdk.App(context=context_for("default"), builtin_cloud_formation_validation=False)
    stack = build_app(app)
    network = stack.node.find_child("Network")
    assert isinstance(network, ServingNetwork)
    network.security_group.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(8500), "open to the world")

    # THEN cdk-nag fails synthesis, naming the rule
    with pytest.raises(RuntimeError, match=r"(?s)ValidationFailed: ERROR .*AwsSolutions-EC23"):
        app.synth()


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_acknowledgment_is_one_listed_rule_with_a_reason(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)
    # The acknowledgments as the cloud assembly records them, by construct path (reading them from the
    # construct tree instead costs a jsii call per construct).
    metadata = json.loads((synthesized.directory / f"{synthesized.artifact_id}.metadata.json").read_text())
    found = set()
    acknowledged = cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY  # one jsii call, not one per entry
    for path, entries in metadata.items():
        for entry in entries:
            if entry["type"] != acknowledged:
                continue
            for rule, reason in entry["data"].items():
                if rule.startswith("Annotation::AwsSolutions-"):
                    found.add((path.removeprefix(f"/{synthesized.artifact_id}/"), rule.split("::", 1)[1]))
                    assert len(reason) >= 60, f"{rule} needs a reason a reviewer would accept"

    assert found == expected_acknowledgments(synth(variant).settings)


def test_the_security_page_lists_every_acknowledgment_and_accepted_finding() -> None:
    security = (ROOT / "docs" / "security.md").read_text()

    s3_rule = "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::<bucket>/<prefix>/*]"
    per_model = [
        ("Model1/Task/TaskDefinition", "AwsSolutions-ECS2"),
        ("Model1/Task/TaskDefinition/ExecutionRole/DefaultPolicy", "AwsSolutions-IAM5[Resource::*]"),
        ("Model1/Task/TaskDefinition/TaskRole/DefaultPolicy", s3_rule),
    ]
    for path, rule in [
        *ACKNOWLEDGED,
        *ASG_ACKNOWLEDGED,
        *MANAGED_INSTANCES_ACKNOWLEDGED,
        *RECOVERY_ACKNOWLEDGED,
        *RELAY_ACKNOWLEDGED,
        *PLAIN_ENDPOINT_ACKNOWLEDGED,
        *TLS_ENDPOINT_ACKNOWLEDGED,
        *per_model,
    ]:
        assert f"`{rule}`" in security, rule
        assert f"`{path}`" in security, path
    for entry in json.loads(CHECKOV_BASELINE.read_text())["accepted"]:
        assert f"`{entry['check']}`" in security


# --- IAM ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_no_wildcard_action_and_star_resources_only_where_aws_requires(synth: SynthFn, variant: str) -> None:
    for logical_id, statement in iam_statements(synth(variant).json):
        actions = _as_list(statement["Action"])
        assert not [action for action in actions if "*" in action], (logical_id, actions)
        if "*" in _as_list(statement["Resource"]):
            assert set(actions) <= set(STAR_RESOURCE_ACTIONS), (logical_id, actions)
            for action in actions:
                key = STAR_RESOURCE_ACTIONS[action]
                if key is not None:
                    assert key in json.dumps(statement.get("Condition", {})), (logical_id, action)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_only_the_expected_managed_policies_are_attached(synth: SynthFn, variant: str) -> None:
    attached = set()
    for role in synth(variant).resources("AWS::IAM::Role").values():
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            attached.add(json.dumps(arn).split(":policy/")[1].split('"')[0])

    expected = MANAGED_POLICIES if synth(variant).settings.profile.own_instances else MANAGED_INSTANCES_POLICIES
    assert attached == expected


def test_instance_role_holds_only_the_ecs_agent_calls(synth: SynthFn) -> None:
    assert policy_actions(synth("default"), "InstanceRole") == {
        "ecs:RegisterContainerInstance",
        "ecs:DeregisterContainerInstance",
        "ecs:SubmitContainerStateChange",
        "ecs:SubmitTaskStateChange",
        "ecs:SubmitAttachmentStateChanges",
        "ecs:Poll",
        "ecs:StartTelemetrySession",
        "ecs:UpdateContainerInstancesState",
        "ecs:DiscoverPollEndpoint",
    }


@pytest.mark.parametrize("variant", ["default", "rtd"])
def test_execution_role_only_pulls_images_and_writes_logs(synth: SynthFn, variant: str) -> None:
    assert policy_actions(synth(variant), "ExecutionRole") == {
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:GetAuthorizationToken",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }


# --- Dockerfiles ------------------------------------------------------------------------------------

IMAGE_DOCKERFILES = sorted(path for path in COMPONENTS.glob("*/runtime/Dockerfile*") if path.suffix != ".dockerignore")


def dockerfile_id(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


@pytest.mark.parametrize("dockerfile", IMAGE_DOCKERFILES, ids=dockerfile_id)
def test_build_context_admits_only_named_files(dockerfile: Path) -> None:
    # Deny-all first, so nothing (credentials, a stray model copy) reaches an image by accident
    rules = [
        line.strip()
        for line in dockerfile.with_name(f"{dockerfile.name}.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    assert rules[0] == "*"
    assert all(rule.startswith("!") or rule.startswith("model_server/model/") for rule in rules[1:])
