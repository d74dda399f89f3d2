"""Service: the tasks run on the capacity provider, roll one at a time, and roll back on failure."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.inference_service import deployment_percents, one_at_a_time_min_healthy_percent
from config.hardware import INSTANCE_SIZES
from tests.conftest import VARIANTS, Synthesized

SynthFn = Callable[[str], Synthesized]


@pytest.mark.parametrize(("desired", "minimum"), [(0, 0), (1, 0), (2, 50), (3, 66), (4, 75), (100, 99)])
def test_minimum_healthy_percent_lets_exactly_one_task_be_replaced(desired: int, minimum: int) -> None:
    assert one_at_a_time_min_healthy_percent(desired) == minimum


@pytest.mark.parametrize("desired", range(1, 101))
def test_rounded_up_minimum_always_frees_exactly_one_instance(desired: int) -> None:
    # ECS keeps ceil(desired * min% / 100) tasks running during a deployment
    minimum = one_at_a_time_min_healthy_percent(desired)
    kept = -(-desired * minimum // 100)
    assert kept == desired - 1


@pytest.mark.parametrize(("variant", "minimum"), [("default", 50), ("large", 100)])
def test_service_runs_on_the_capacity_provider_and_starts_replacements_first(
    synth: SynthFn, variant: str, minimum: int
) -> None:
    synthesized = synth(variant)
    service = synthesized.only_serving("AWS::ECS::Service")

    (strategy,) = service["CapacityProviderStrategy"]
    assert strategy["CapacityProvider"]["Ref"] in synthesized.resources("AWS::ECS::CapacityProvider")
    assert "LaunchType" not in service
    assert service["DeploymentConfiguration"] == {
        "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
        "MaximumPercent": 200,
        "MinimumHealthyPercent": minimum,
    }
    assert service["SchedulingStrategy"] == "REPLICA"


def test_libnrt_tasks_share_instances_of_the_configured_size(synth: SynthFn) -> None:
    # CPU reservations, not a placement constraint, cap the tasks per instance (test_task.py)
    service = synth("large").only_serving("AWS::ECS::Service")

    assert service["PlacementConstraints"] == [
        {"Type": "memberOf", "Expression": "attribute:ecs.instance-type == inf1.24xlarge"},
    ]


def test_rtd_tasks_land_one_per_instance(synth: SynthFn) -> None:
    service = synth("rtd").only_serving("AWS::ECS::Service")

    assert service["PlacementConstraints"] == [
        {"Type": "distinctInstance"},
        {"Type": "memberOf", "Expression": "attribute:ecs.instance-type == inf1.xlarge"},
    ]


def test_cluster_has_container_insights(synth: SynthFn) -> None:
    cluster = synth("default").only("AWS::ECS::Cluster")

    assert cluster["ClusterSettings"] == [{"Name": "containerInsights", "Value": "enabled"}]


def test_outputs_tell_a_client_where_the_server_is(synth: SynthFn) -> None:
    outputs = synth("large").json["Outputs"]

    assert set(outputs) == {
        "ClusterName",
        "ServiceName",
        "SecurityGroupId",
        "ModelName",
        "InstanceType",
        "GrpcPort",
        "RestPort",
        "LoadBalancerDnsName",
        "DashboardName",
        "NotificationsTopicArn",
        "ServerApi",
    }
    assert outputs["ModelName"]["Value"] == "bert-large"
    assert outputs["ServerApi"]["Value"] == "tfserving"
    assert outputs["InstanceType"]["Value"] == "inf1.24xlarge"
    assert (outputs["GrpcPort"]["Value"], outputs["RestPort"]["Value"]) == ("9000", "9001")


def scaling_policies(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        policy["Properties"]["PolicyName"]: policy["Properties"]["TargetTrackingScalingPolicyConfiguration"]
        for policy in synthesized.resources("AWS::ApplicationAutoScaling::ScalingPolicy").values()
    }


@pytest.mark.parametrize(("variant", "bounds"), [("default", (1, 2)), ("split", (2, 6)), ("parked", (0, 0))])
def test_service_scales_between_min_and_max_tasks(synth: SynthFn, variant: str, bounds: tuple[int, int]) -> None:
    target = synth(variant).only("AWS::ApplicationAutoScaling::ScalableTarget")

    assert (target["MinCapacity"], target["MaxCapacity"]) == bounds
    assert target["ScalableDimension"] == "ecs:service:DesiredCount"


def test_libnrt_scales_on_neuroncore_utilisation_and_cpu(synth: SynthFn) -> None:
    policies = scaling_policies(synth("default"))
    neuron = next(config for name, config in policies.items() if "NeuronCoreUtilization" in name)
    cpu = next(config for name, config in policies.items() if "CpuUtilization" in name)

    assert neuron["TargetValue"] == 70
    metric = neuron["CustomizedMetricSpecification"]
    assert (metric["Namespace"], metric["MetricName"], metric["Statistic"]) == (
        "NeuronMonitor",
        "NeuronCoreUtilizationAverage",
        "Average",
    )
    assert metric["Dimensions"] == [
        {"Name": "ClusterName", "Value": {"Ref": "ClusterEB0386A7"}},
        {"Name": "ServiceName", "Value": {"Fn::GetAtt": ["InferenceServiceE8D5C064", "Name"]}},
    ]
    assert cpu["TargetValue"] == 60
    assert cpu["PredefinedMetricSpecification"] == {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}
    # scale out within a minute, in only after five: reloading a model onto NeuronCores is slow
    assert (neuron["ScaleOutCooldown"], neuron["ScaleInCooldown"]) == (60, 300)


def test_rtd_has_no_neuron_monitor_so_scales_on_cpu_alone(synth: SynthFn) -> None:
    assert [name for name in scaling_policies(synth("rtd")) if "Neuron" in name] == []
    assert len(scaling_policies(synth("rtd"))) == 1


def test_no_autoscaled_service_sets_a_desired_count(synth: SynthFn) -> None:
    # CloudFormation would send DesiredCount on every update that touches the service, resetting the
    # count autoscaling chose. Every service here is autoscaled, in every variant.
    for variant in VARIANTS:
        synthesized = synth(variant)
        targets = synthesized.resources("AWS::ApplicationAutoScaling::ScalableTarget").values()
        scaled = {json.dumps(target["Properties"]["ResourceId"]) for target in targets}
        for logical_id, service in synthesized.serving("AWS::ECS::Service").items():
            assert logical_id in "".join(scaled), (variant, logical_id)
            assert "DesiredCount" not in service["Properties"], (variant, logical_id)


@dataclass(frozen=True)
class Policy:
    """A target-tracking policy as Application Auto Scaling evaluates it."""

    name: str
    target: float
    scale_in: bool


def decide(policies: list[Policy], metrics: dict[str, float | None]) -> str:
    """What Application Auto Scaling does: out if any policy asks; in only if every policy with
    scale-in enabled asks; a policy whose metric has insufficient data asks for nothing."""
    readings = [(policy, metrics[policy.name]) for policy in policies]
    if any(value is not None and value > policy.target for policy, value in readings):
        return "out"
    voters = [(policy, value) for policy, value in readings if policy.scale_in]
    # target tracking scales in once the metric sits clearly below the target
    if voters and all(value is not None and value < 0.9 * policy.target for policy, value in voters):
        return "in"
    return "hold"


def policies_of(synthesized: Synthesized) -> list[Policy]:
    return [
        Policy(
            name="neuron" if "CustomizedMetricSpecification" in config else "cpu",
            target=float(config["TargetValue"]),
            scale_in=not config.get("DisableScaleIn", False),
        )
        for config in scaling_policies(synthesized).values()
    ]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_an_idle_service_scales_in_even_when_the_neuron_metric_is_missing(synth: SynthFn, variant: str) -> None:
    policies = policies_of(synth(variant))

    assert decide(policies, {"cpu": 5.0, "neuron": None}) == "in"
    assert decide(policies, {"cpu": 5.0, "neuron": 3.0}) == "in"
    assert decide(policies, {"cpu": 95.0, "neuron": None}) == "out"
    if any(policy.name == "neuron" for policy in policies):
        assert decide(policies, {"cpu": 5.0, "neuron": 95.0}) == "out"


def test_the_simulation_blocks_scale_in_when_a_silent_policy_may_vote() -> None:
    # What the template had before: both policies with scale-in enabled.
    policies = [Policy("cpu", 60, scale_in=True), Policy("neuron", 70, scale_in=True)]

    assert decide(policies, {"cpu": 5.0, "neuron": None}) == "hold"


def simulate_deployment(count: int, min_percent: int, max_percent: int, slots: int) -> tuple[int, int]:
    """An ECS rolling deployment of ``count`` tasks with ``slots`` places for tasks (managed scaling fills them).

    ECS keeps at least ceil(count x min/100) healthy tasks and runs at most floor(count x max/100)
    (ECS developer guide, "Deployment configuration"). Each round it starts what it may, then stops
    old tasks: those the healthy new ones replace, or, when nothing can start, down to the minimum.
    Returns (fewest healthy tasks at any moment, most tasks at once); raises if it can never finish.
    """
    floor_healthy = math.ceil(count * min_percent / 100)
    ceiling = count * max_percent // 100
    old, new, fewest, most = count, 0, count, count
    for _ in range(4 * count + 4):
        if new == count and old == 0:
            return fewest, most
        start = max(0, min(count - new, ceiling - (old + new), slots - (old + new)))
        new += start
        most = max(most, old + new)
        surplus = old + new - count
        stop = min(old, surplus) if surplus > 0 else 0
        if start == 0 and stop == 0:
            stop = min(old, max(0, old + new - floor_healthy))
        if start == 0 and stop == 0:
            raise AssertionError(f"deployment stuck at {old} old and {new} new tasks")
        old -= stop
        fewest = min(fewest, old + new)
    raise AssertionError("deployment did not finish")


def test_the_deployment_simulation_sees_the_gap_of_the_old_configuration() -> None:
    # One task, maximum 100 %, minimum 0 %: ECS stops it before its successor can start.
    assert simulate_deployment(1, 0, 100, slots=2)[0] == 0


@pytest.mark.parametrize("variant", sorted(set(VARIANTS) - {"parked"}))
def test_deployments_keep_a_healthy_task_at_one_two_and_many_tasks(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)
    settings = synthesized.settings
    config = next(iter(synthesized.serving("AWS::ECS::Service").values()))["Properties"]["DeploymentConfiguration"]
    slots = settings.task_slots or 2 * settings.max_tasks  # Managed Instances: AWS adds instances as needed

    for count in sorted({1, 2, settings.max_tasks} & set(range(max(1, settings.min_tasks), settings.max_tasks + 1))):
        fewest, most = simulate_deployment(count, config["MinimumHealthyPercent"], config["MaximumPercent"], slots)
        assert fewest >= 1, (variant, count)
        assert most <= slots
        if count == 1:
            assert most == 2  # the replacement ran beside the old task: managed scaling brings its instance


@settings(max_examples=300, deadline=None)
@given(size=st.sampled_from(sorted(INSTANCE_SIZES)), max_instances=st.integers(1, 6), data=st.data())
def test_any_accepted_fleet_deploys_without_a_gap(size: str, max_instances: int, data: st.DataObject) -> None:
    tasks_per_instance = INSTANCE_SIZES[size].chips
    slots = max_instances * tasks_per_instance
    if slots < 2:  # refused by the settings (tests/test_settings.py)
        return
    max_tasks = data.draw(st.integers(1, min(slots, 100)))
    count = data.draw(st.integers(1, max_tasks))
    low, high = deployment_percents(max_tasks=max_tasks, task_slots=slots)

    fewest, _ = simulate_deployment(count, low, high, slots)

    assert fewest >= 1
