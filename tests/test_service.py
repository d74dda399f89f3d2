"""Service: the tasks run on the capacity provider, roll one at a time, and roll back on failure."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.hardware import INSTANCE_SIZES
from config.rollout import deployment_percents, one_at_a_time_min_healthy_percent
from tests.conftest import VARIANTS, Synthesized
from tests.scaling_replay import TrackingPolicy, alternates, policy_from_template, replay

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
        "TensorTls",
        "TextUrl",
        "RelayTaskDefinitionArn",
        "RelaySecurityGroupId",
        "RelaySubnetIds",
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


def test_libnrt_scales_on_the_busier_of_neuroncore_utilisation_and_cpu(synth: SynthFn) -> None:
    synthesized = synth("default")
    (config,) = scaling_policies(synthesized).values()
    (cluster,) = synthesized.resources("AWS::ECS::Cluster")
    (service,) = synthesized.serving("AWS::ECS::Service")

    assert config["TargetValue"] == 100
    metrics = config["CustomizedMetricSpecification"]["Metrics"]
    stats = {query["Id"]: query["MetricStat"]["Metric"] for query in metrics if "MetricStat" in query}
    assert {(metric["Namespace"], metric["MetricName"]) for metric in stats.values()} == {
        ("AWS/ECS", "CPUUtilization"),
        ("NeuronMonitor", "NeuronCoreUtilizationAverage"),
    }
    for metric in stats.values():
        assert metric["Dimensions"] == [
            {"Name": "ClusterName", "Value": {"Ref": cluster}},
            {"Name": "ServiceName", "Value": {"Fn::GetAtt": [service, "Name"]}},
        ]
    # scale out within a minute, in only after five: reloading a model onto NeuronCores is slow
    assert (config["ScaleOutCooldown"], config["ScaleInCooldown"]) == (60, 300)
    assert "DisableScaleIn" not in config


def policies_of(synthesized: Synthesized) -> list[TrackingPolicy]:
    """The policies of the fleet's first service (every service has the same: see below)."""
    policies = synthesized.resources("AWS::ApplicationAutoScaling::ScalingPolicy").values()
    first = min(json.dumps(policy["Properties"]["ScalingTargetId"]) for policy in policies)
    return [
        policy_from_template(policy["Properties"]["TargetTrackingScalingPolicyConfiguration"])
        for policy in policies
        if json.dumps(policy["Properties"]["ScalingTargetId"]) == first
    ]


def steady(**readings: float | None) -> Callable[[int, int], dict[str, float | None]]:
    """The same readings every minute, whatever the capacity (a replayed series)."""
    return lambda minute, capacity: dict(readings)


def has_neuron_signal(synthesized: Synthesized) -> bool:
    return synthesized.settings.profile.neuron_metrics


SCALED_VARIANTS = sorted(set(VARIANTS) - {"parked"})


@pytest.mark.parametrize("variant", SCALED_VARIANTS)
def test_busy_neuroncores_with_idle_cpu_never_scale_in(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)
    if not has_neuron_signal(synthesized):
        pytest.skip("the rtd layout has no NeuronCore metric")
    settings = synthesized.settings

    actions = replay(
        policies_of(synthesized),
        steady(neuron=80.0, cpu=40.0),
        capacity=settings.max_tasks,
        low=settings.min_tasks,
        high=settings.max_tasks,
        minutes=60,
    )

    assert [action for action in actions if action.direction == "in"] == []


@pytest.mark.parametrize("variant", SCALED_VARIANTS)
def test_a_missing_neuron_metric_lets_cpu_decide(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)
    settings = synthesized.settings
    bounds = {"low": settings.min_tasks, "high": settings.max_tasks}
    policies = policies_of(synthesized)

    idle = replay(policies, steady(neuron=None, cpu=10.0), capacity=settings.max_tasks, minutes=60, **bounds)
    busy = replay(policies, steady(neuron=None, cpu=90.0), capacity=settings.min_tasks, minutes=60, **bounds)

    if settings.max_tasks > settings.min_tasks:
        assert idle
        assert idle[0].direction == "in"
        assert busy
        assert busy[0].direction == "out"
    assert all(action.direction == "in" for action in idle)
    assert all(action.direction == "out" for action in busy)


@pytest.mark.parametrize("variant", SCALED_VARIANTS)
def test_both_signals_low_scale_in_and_either_high_scales_out(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)
    settings = synthesized.settings
    if settings.max_tasks == settings.min_tasks:
        pytest.skip("nothing to scale")
    bounds = {"low": settings.min_tasks, "high": settings.max_tasks, "minutes": 60}
    policies = policies_of(synthesized)

    assert replay(policies, steady(neuron=5.0, cpu=5.0), capacity=settings.max_tasks, **bounds)[0].direction == "in"
    assert replay(policies, steady(neuron=5.0, cpu=95.0), capacity=settings.min_tasks, **bounds)[0].direction == "out"
    if has_neuron_signal(synthesized):
        assert (
            replay(policies, steady(neuron=95.0, cpu=5.0), capacity=settings.min_tasks, **bounds)[0].direction == "out"
        )


def closed_loop(neuron_demand: float | None, cpu_demand: float) -> Callable[[int, int], dict[str, float | None]]:
    """Steady offered load: utilisation is the demand (in percent x tasks) spread over the tasks running."""
    return lambda minute, capacity: {
        "neuron": None if neuron_demand is None else min(100.0, neuron_demand / capacity),
        "cpu": min(100.0, cpu_demand / capacity),
    }


def the_old_policy_set() -> list[TrackingPolicy]:
    """What the template had before: CPU two-way, the NeuronCore policy scale-out only."""
    return [
        TrackingPolicy(60, True, 300, 60, lambda readings: readings["cpu"]),
        TrackingPolicy(70, False, 300, 60, lambda readings: readings["neuron"]),
    ]


def test_the_replay_sees_the_old_policy_set_oscillate() -> None:
    # NeuronCore-bound: 2 tasks at 80 %, host CPU at 40 %. Out to 3 for the cores, then in to 2 for the CPU, ...
    actions = replay(the_old_policy_set(), closed_loop(160.0, 80.0), capacity=2, low=1, high=4, minutes=180)

    assert alternates(actions)


@settings(max_examples=150, deadline=None)
@given(
    variant=st.sampled_from(SCALED_VARIANTS),
    neuron_demand=st.one_of(st.none(), st.floats(0, 2000)),
    cpu_demand=st.floats(0, 2000),
    data=st.data(),
)
def test_no_steady_load_makes_the_fleet_alternate_out_and_in(
    synth: SynthFn, variant: str, neuron_demand: float | None, cpu_demand: float, data: st.DataObject
) -> None:
    synthesized = synth(variant)
    settings = synthesized.settings
    start = data.draw(st.integers(settings.min_tasks, settings.max_tasks))

    actions = replay(
        policies_of(synthesized),
        closed_loop(neuron_demand, cpu_demand),
        capacity=start,
        low=settings.min_tasks,
        high=settings.max_tasks,
        minutes=240,
    )

    assert not alternates(actions), actions


def test_several_models_scale_in_step_on_one_figure(synth: SynthFn) -> None:
    synthesized = synth("multi")
    targets = synthesized.resources("AWS::ApplicationAutoScaling::ScalableTarget")
    policies = synthesized.resources("AWS::ApplicationAutoScaling::ScalingPolicy").values()

    assert len(targets) == len(policies) == 2
    assert {(t["Properties"]["MinCapacity"], t["Properties"]["MaxCapacity"]) for t in targets.values()} == {(2, 3)}
    configs = [policy["Properties"]["TargetTrackingScalingPolicyConfiguration"] for policy in policies]
    assert configs[0] == configs[1]  # same metrics, expression, target and cooldowns: the same decisions
    services = {
        json.dumps(dimension["Value"])
        for query in configs[0]["CustomizedMetricSpecification"]["Metrics"]
        if "MetricStat" in query
        for dimension in query["MetricStat"]["Metric"]["Dimensions"]
        if dimension["Name"] == "ServiceName"
    }
    assert len(services) == 2  # each model's signals are in the figure


def test_one_busy_model_scales_the_whole_fleet_out_and_keeps_it(synth: SynthFn) -> None:
    synthesized = synth("multi")
    policies = policies_of(synthesized)
    service_refs = sorted(
        {
            json.dumps(dimension["Value"], sort_keys=True)
            for policy in synthesized.resources("AWS::ApplicationAutoScaling::ScalingPolicy").values()
            for query in policy["Properties"]["TargetTrackingScalingPolicyConfiguration"][
                "CustomizedMetricSpecification"
            ]["Metrics"]
            if "MetricStat" in query
            for dimension in query["MetricStat"]["Metric"]["Dimensions"]
            if dimension["Name"] == "ServiceName"
        }
    )
    busy, idle = service_refs

    def readings(minute: int, capacity: int) -> dict[str, float | None]:
        return {f"neuron@{busy}": 90.0, f"cpu@{busy}": 30.0, f"neuron@{idle}": 5.0, f"cpu@{idle}": 5.0}

    actions = replay(policies, readings, capacity=2, low=2, high=3, minutes=60)

    assert [action.direction for action in actions] == ["out"]


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
