"""Observability: a dashboard for the service and alarms that reach the notifications topic."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from tests.conftest import Synthesized

SynthFn = Callable[[str], Synthesized]


def alarms(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        re.sub(r"^(?:Model\d+Observability|EndpointAlarms)", "", key): alarm["Properties"]
        for key, alarm in synthesized.serving("AWS::CloudWatch::Alarm").items()
    }


def dashboard_body(synthesized: Synthesized) -> str:
    """The dashboard JSON with CloudFormation references flattened to their logical IDs."""
    body = synthesized.only("AWS::CloudWatch::Dashboard")["DashboardBody"]["Fn::Join"][1]
    return "".join(part if isinstance(part, str) else json.dumps(part) for part in body)


@pytest.mark.parametrize(("variant", "neuron"), [("default", True), ("rtd", False)])
def test_alarms_cover_targets_tasks_resets_and_neuron_errors(synth: SynthFn, variant: str, neuron: bool) -> None:
    found = alarms(synth(variant))
    names = sorted(key.rstrip("0123456789ABCDEF") for key in found)

    expected = ["TargetResets", "TooFewTasks", "UnhealthyGrpcTargets", "UnhealthyRestTargets"]
    # the rtd layout has neither Neuron's metrics nor a text front
    with_neuron = ["NeuronExecutionErrors", "UnhealthyTextTargets"] if neuron else []
    assert names == sorted(expected + with_neuron)


def test_load_balancer_wide_alarms_exist_once_per_stack_and_per_model_ones_once_per_model(synth: SynthFn) -> None:
    names = sorted(key.rstrip("0123456789ABCDEF") for key in synth("multi").serving("AWS::CloudWatch::Alarm"))

    assert names.count("EndpointAlarmsTargetResets") == 1
    assert [name for name in names if "TargetResets" in name] == ["EndpointAlarmsTargetResets"]
    assert len([name for name in names if "TooFewTasks" in name]) == 2  # one per model's service


def test_a_parked_service_raises_no_too_few_tasks_alarm(synth: SynthFn) -> None:
    names = alarms(synth("parked"))

    assert not [name for name in names if "TooFewTasks" in name]
    assert [name for name in names if "Unhealthy" in name]


def test_every_alarm_notifies_the_topic_on_alarm_and_on_recovery(synth: SynthFn) -> None:
    synthesized = synth("default")
    topic = next(iter(synthesized.resources("AWS::SNS::Topic")))

    for alarm in alarms(synthesized).values():
        assert alarm["AlarmActions"] == [{"Ref": topic}]
        assert alarm["OKActions"] == [{"Ref": topic}]
        assert alarm["AlarmDescription"]


def test_too_few_tasks_alarms_below_min_tasks(synth: SynthFn) -> None:
    (too_few,) = [alarm for key, alarm in alarms(synth("split")).items() if "TooFewTasks" in key]

    assert too_few["MetricName"] == "RunningTaskCount"
    assert too_few["Namespace"] == "ECS/ContainerInsights"
    assert too_few["ComparisonOperator"] == "LessThanThreshold"
    assert too_few["Threshold"] == 2  # the split variant's minTasks


def alarm_states(alarm: dict[str, Any], datapoints: Sequence[float | None]) -> list[str]:
    """CloudWatch's evaluation, minute by minute: ALARM when every datapoint of the last EvaluationPeriods
    breaches, OK when none does; a missing datapoint counts as TreatMissingData says (CloudWatch user guide,
    "Configuring how CloudWatch alarms treat missing data": breaching, notBreaching; ignore keeps the
    current state; missing goes to INSUFFICIENT_DATA when all are missing)."""
    window, treat = alarm["EvaluationPeriods"], alarm.get("TreatMissingData", "missing")

    def breaches(value: float) -> bool:
        threshold = float(alarm["Threshold"])
        return value < threshold if alarm["ComparisonOperator"] == "LessThanThreshold" else value > threshold

    state, states = "INSUFFICIENT_DATA", []
    for minute in range(len(datapoints)):
        recent = datapoints[max(0, minute - window + 1) : minute + 1]
        if treat in ("breaching", "notBreaching"):
            verdicts = [treat == "breaching" if value is None else breaches(value) for value in recent]
        else:
            verdicts = [breaches(value) for value in recent if value is not None]
        if not verdicts:
            state = state if treat == "ignore" else "INSUFFICIENT_DATA"
        elif len(verdicts) == window and all(verdicts):
            state = "ALARM"
        elif not any(verdicts):
            state = "OK"
        states.append(state)
    return states


def test_a_first_deploy_raises_no_too_few_tasks_alarm_and_a_lost_service_does(synth: SynthFn) -> None:
    (too_few,) = [alarm for key, alarm in alarms(synth("split")).items() if "TooFewTasks" in key]
    first_deploy = [None] * 12 + [2.0] * 10  # Container Insights reports only once tasks run
    lost = [2.0] * 10 + [0.0] * 10

    assert "ALARM" not in alarm_states(too_few, first_deploy)
    assert alarm_states(too_few, lost)[-1] == "ALARM"
    assert alarm_states(too_few, [*lost, *[None] * 10])[-1] == "ALARM"  # and silence keeps it firing


def test_the_evaluation_sees_that_breaching_fired_on_every_first_deploy(synth: SynthFn) -> None:
    (too_few,) = [alarm for key, alarm in alarms(synth("split")).items() if "TooFewTasks" in key]

    assert "ALARM" in alarm_states({**too_few, "TreatMissingData": "breaching"}, [None] * 12 + [2.0] * 10)


def test_unhealthy_targets_alarm_after_three_minutes(synth: SynthFn) -> None:
    for key, alarm in alarms(synth("default")).items():
        if "Unhealthy" in key:
            assert (alarm["MetricName"], alarm["Namespace"]) == ("UnHealthyHostCount", "AWS/NetworkELB")
            assert (alarm["Threshold"], alarm["EvaluationPeriods"]) == (0, 3)


@pytest.mark.parametrize(("variant", "neuron"), [("default", True), ("rtd", False)])
def test_dashboard_shows_tasks_resources_load_balancer_and_neuroncores(
    synth: SynthFn, variant: str, neuron: bool
) -> None:
    body = dashboard_body(synth(variant))

    for metric in ("RunningTaskCount", "DesiredTaskCount", "CPUUtilization", "MemoryUtilization"):
        assert f'"{metric}"' in body
    for metric in ("ActiveFlowCount", "NewFlowCount", "TCP_Target_Reset_Count", "HealthyHostCount"):
        assert f'"{metric}"' in body
    assert ('"NeuronCoreUtilizationAverage"' in body) is neuron
    assert ('"ExecutionLatencyP99"' in body) is neuron


def test_outputs_name_the_dashboard_and_topic(synth: SynthFn) -> None:
    outputs = synth("default").json["Outputs"]

    assert "DashboardName" in outputs
    assert "NotificationsTopicArn" in outputs
