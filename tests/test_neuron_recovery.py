"""Neuron faults recovered: the problem detector and recovery daemon, its rights, and the alarm on its findings."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from components.neuron_recovery import (
    DETECTED_METRIC,
    ERROR_REASON_PREFIX,
    HEALTH_NAMESPACE,
    KERNEL_MONITOR,
    NEURON_ERRORS,
    NPD_IMAGE,
    RECOVERY_IMAGE,
)
from config.settings import load_settings
from tests.conftest import CDK_JSON_CONTEXT, NEURON_RECOVERY_PREFIX, VARIANTS, Synthesized

SynthFn = Callable[[str], Synthesized]
WITH_RECOVERY = sorted(set(VARIANTS) - {"rtd", "managed"})


def recovery_resources(synthesized: Synthesized, resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource["Properties"]
        for logical_id, resource in synthesized.resources(resource_type).items()
        if logical_id.startswith(NEURON_RECOVERY_PREFIX)
    }


def containers(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    (task,) = recovery_resources(synthesized, "AWS::ECS::TaskDefinition").values()
    return {container["Name"]: container for container in task["ContainerDefinitions"]}


@pytest.mark.parametrize("variant", WITH_RECOVERY)
def test_a_daemon_runs_neurons_detector_and_recovery_on_every_instance(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)
    (service,) = recovery_resources(synthesized, "AWS::ECS::Service").values()
    (task,) = recovery_resources(synthesized, "AWS::ECS::TaskDefinition").values()
    npd, recovery = containers(synthesized)["npd"], containers(synthesized)["recovery"]

    assert service["SchedulingStrategy"] == "DAEMON"
    assert service["LaunchType"] == "EC2"  # a daemon takes no capacity provider strategy
    assert task["NetworkMode"] == "awsvpc"  # the two containers share one network namespace, as Neuron's task does
    assert npd["Image"] == NPD_IMAGE
    assert npd["Privileged"] is True
    assert npd["LinuxParameters"]["Devices"] == [
        {"HostPath": "/dev/kmsg", "ContainerPath": "/dev/kmsg", "Permissions": ["read", "write"]}
    ]
    assert recovery["Image"] == RECOVERY_IMAGE
    assert recovery["Command"] == ["python scripts/check-health.py"]
    assert recovery["ReadonlyRootFilesystem"] is True
    assert {v["Name"]: v["Value"] for v in recovery["Environment"]}["ENABLE_RECOVERY"] == "true"
    # nothing reserves CPU beside the model tasks' exact shares (tests/test_task.py)
    assert all("Cpu" not in container for container in (npd, recovery))


@pytest.mark.parametrize("variant", ["rtd", "managed"])
def test_the_daemon_is_left_out_where_it_cannot_run_or_is_not_ours_to_run(synth: SynthFn, variant: str) -> None:
    # rtd: its requirements (driver 2.15+, runtime from Neuron 2.18) cannot hold with runtime 1.x.
    # Managed Instances: AWS runs, patches and replaces the instances.
    synthesized = synth(variant)

    assert synthesized.settings.neuron_recovery is None
    assert not [key for key in synthesized.json["Resources"] if key.startswith(NEURON_RECOVERY_PREFIX)]


def test_neuron_recovery_false_only_detects_and_reports() -> None:
    settings = load_settings({**CDK_JSON_CONTEXT, "neuronRecovery": "false"}.get)
    rtd = load_settings({**CDK_JSON_CONTEXT, "neuronRuntime": "rtd", "amiId": "ami-0123abcd"}.get)

    assert settings.neuron_recovery is False
    assert rtd.neuron_recovery is None


def test_the_detector_runs_neurons_kernel_monitor_rules(synth: SynthFn) -> None:
    (command,) = containers(synth("default"))["npd"]["Command"]
    written = json.loads(re.search(r"echo '(.*)' > /config/kernel-monitor.json", command)[1])  # type: ignore[index]

    assert written == KERNEL_MONITOR
    assert {rule["reason"] for rule in written["rules"]} == {f"{ERROR_REASON_PREFIX}{e}" for e in NEURON_ERRORS}
    assert "--config.system-log-monitor=/config/kernel-monitor.json" in command
    assert "--enable-k8s-exporter=false" in command


@pytest.mark.parametrize("variant", WITH_RECOVERY)
def test_its_role_may_publish_its_metrics_and_set_health_in_this_group_only(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)
    (task,) = recovery_resources(synthesized, "AWS::ECS::TaskDefinition").values()
    role = task["TaskRoleArn"]["Fn::GetAtt"][0]
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synthesized.resources("AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": role}]
    ]
    by_action = {statement["Action"]: statement for statement in policy}

    set_health = by_action["autoscaling:SetInstanceHealth"]
    assert "autoScalingGroupName/" in json.dumps(set_health["Resource"])
    assert "CapacityAutoScalingGroup" in json.dumps(set_health["Resource"])
    assert by_action["cloudwatch:PutMetricData"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": HEALTH_NAMESPACE}
    }
    assert set(by_action) == {
        "autoscaling:SetInstanceHealth",
        "autoscaling:DescribeAutoScalingInstances",
        "ec2:DescribeInstances",
        "cloudwatch:PutMetricData",
    }


def matches(pattern: str, event: str) -> bool:
    """CloudWatch Logs' term matching: an event matches when it holds every term (quoted terms as phrases)."""
    terms = re.findall(r'"([^"]*)"|(\S+)', pattern)
    return all((quoted or bare) in event for quoted, bare in terms)


# node-problem-detector's log line for a status its rules produced (log_monitor.go), and the one it
# writes at start for the default condition.
FOUND = (
    "I1125 16:14:43.767687       1 log_monitor.go:159] New status generated: &{Source:kernel-monitor "
    "Events:[{Severity:warn Timestamp:2026-11-25 16:14:42 +0000 UTC Reason:{reason} Message:neuron: "
    "NEURON_HW_ERR={error} device 0}] Conditions:[{Type:NeuronHealth Status:True Reason:{reason}}]}"
)
QUIET = (
    "I1125 16:00:01.000001       1 log_monitor.go:230] Initialize condition generated: "
    "[{Type:NeuronHealth Status:False Reason:NeuronHasNoError Message:Neuron has no error}]"
)


def test_every_neuron_error_the_detector_finds_is_counted_and_alarmed(synth: SynthFn) -> None:
    synthesized = synth("default")
    (metric_filter,) = recovery_resources(synthesized, "AWS::Logs::MetricFilter").values()
    (alarm,) = recovery_resources(synthesized, "AWS::CloudWatch::Alarm").values()
    (transformation,) = metric_filter["MetricTransformations"]

    for error in NEURON_ERRORS:
        line = FOUND.replace("{reason}", f"{ERROR_REASON_PREFIX}{error}").replace("{error}", error)
        assert matches(metric_filter["FilterPattern"], line), error
    assert not matches(metric_filter["FilterPattern"], QUIET)
    assert (transformation["MetricNamespace"], transformation["MetricName"]) == (HEALTH_NAMESPACE, DETECTED_METRIC)
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Threshold"]) == (HEALTH_NAMESPACE, DETECTED_METRIC, 0)
    topic = next(iter(synthesized.resources("AWS::SNS::Topic")))
    assert alarm["AlarmActions"] == [{"Ref": topic}]


def test_the_dashboard_shows_the_detectors_findings(synth: SynthFn) -> None:
    body = synth("default").only("AWS::CloudWatch::Dashboard")["DashboardBody"]["Fn::Join"][1]

    assert any(f'"{DETECTED_METRIC}"' in part for part in body if isinstance(part, str))
