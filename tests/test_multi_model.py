"""Several models side by side: each instance holds one task of every model, each on its own cores."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config.settings import SettingsError, load_settings
from tests.conftest import CDK_JSON_CONTEXT, VARIANTS, Synthesized
from tests.placement_sim import Fleet, ServiceSpec

SynthFn = Callable[[str], Synthesized]


def model(name: str, cores: int, grpc: int, **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "cores": cores,
        "grpcPort": grpc,
        "restPort": grpc + 1,
        "modelS3Uri": f"s3://models-1/{name}",
    } | extra


def layout(size: str, *models: dict[str, object]) -> dict[str, list[list[int]]]:
    settings = load_settings(
        {**CDK_JSON_CONTEXT, "instanceType": size, "models": list(models), "minTasks": 2, "desiredCount": 2}.get
    )
    return {m.name: [list(m.cores(slot)) for slot in range(m.tasks_per_instance)] for m in settings.models}


def test_one_task_per_model_tiles_the_instance() -> None:
    assert layout("inf1.6xlarge", model("bert", 8, 8500), model("distil", 8, 8502)) == {
        "bert": [list(range(0, 8))],
        "distil": [list(range(8, 16))],
    }
    assert layout("inf2.48xlarge", model("a", 12, 8500), model("b", 6, 8502), model("c", 6, 8504)) == {
        "a": [list(range(0, 12))],
        "b": [list(range(12, 18))],
        "c": [list(range(18, 24))],
    }


def test_models_that_would_need_several_tasks_each_per_instance_are_refused() -> None:
    # ECS can keep a service to one task per instance (distinctInstance), not to four: bert could take
    # distilbert's slots, find no free core slot, exit and churn.
    with pytest.raises(SettingsError, match=r"must add up to all 16 NeuronCores of inf1\.6xlarge"):
        layout("inf1.6xlarge", model("bert", 2, 8500), model("distil", 2, 8502))


@pytest.mark.parametrize(
    ("models", "key", "allowed"),
    [
        ([model("a", 2, 8500), model("a", 2, 8502)], "models", "every model name once"),
        ([model("a", 2, 8500), model("b", 2, 8501)], "models", "every gRPC, REST and text port once"),
        ([model("a", 2, 8500), model("b", 1, 8502)], "models", "add up to 3, which must divide 16"),
        # b's 4 cores would start at core 2: half on chip 0, half on chip 1
        (
            [model("a", 2, 8500), model("b", 4, 8502), model("c", 2, 8504), model("d", 8, 8506)],
            "models",
            "b's cores [2, 3, 4, 5] straddle",
        ),
        ([model("a", 3, 8500)], "models[0].cores", "one of 1, 2, 4, 8, 16"),
        ([model("a", 2, 8500, modelS3Uri="")], "models[0].modelS3Uri", "each of several models loads from S3"),
        ([{"name": "a", "cores": 2}], "models[0]", "exactly name, cores, grpcPort, restPort, modelS3Uri"),
        ([model("neuron-monitor", 2, 8500)], "models[0].name", "not model-sync or neuron-monitor"),
        ("not json", "models", "a list of {name, cores"),
    ],
)
def test_bad_model_lists_name_the_entry_and_field(models: object, key: str, allowed: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({**CDK_JSON_CONTEXT, "instanceType": "inf1.6xlarge", "models": models}.get)

    assert str(raised.value).startswith(f"Invalid setting '{key}' = ")
    assert allowed in str(raised.value)


@pytest.mark.parametrize(
    ("overrides", "allowed"),
    [
        (
            {"neuronRuntime": "rtd", "instanceType": "inf1.xlarge", "amiId": "ami-04450f16e0cd20356"},
            "rtd layout serves one model",
        ),
        ({"coresPerTask": 2}, "replaces coresPerTask and modelS3Uri"),
        ({"modelS3Uri": "s3://models-1/x"}, "replaces coresPerTask and modelS3Uri"),
    ],
)
def test_models_do_not_mix_with_the_one_model_settings(overrides: dict[str, object], allowed: str) -> None:
    context = {**CDK_JSON_CONTEXT, "instanceType": "inf1.6xlarge", "models": [model("a", 16, 8500)], **overrides}
    with pytest.raises(SettingsError, match=allowed):
        load_settings(context.get)


def containers_of(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        container["Name"]: container
        for task in synthesized.serving("AWS::ECS::TaskDefinition").values()
        for container in task["Properties"]["ContainerDefinitions"]
    }


def environment(container: dict[str, Any]) -> dict[str, str]:
    return {variable["Name"]: variable["Value"] for variable in container.get("Environment", [])}


def test_each_model_gets_its_own_task_with_its_core_offset(synth: SynthFn) -> None:
    # GIVEN bert and distilbert, 8 cores each, on inf1.6xlarge (the "multi" variant)
    found = containers_of(synth("multi"))
    bert, distil = environment(found["bert"]), environment(found["distilbert"])

    for env, offset in ((bert, "0"), (distil, "8")):
        assert env["NEURON_CORES_PER_TASK"] == "8"
        assert env["NEURON_CORE_SLOTS"] == "1"
        assert env["NEURON_CORE_OFFSET"] == offset
        assert env["NEURON_CORE_STRIDE"] == "16"
    # a task's CPU share follows its cores: 8 of 16 cores of 24 vCPUs
    assert found["bert"]["Cpu"] == found["distilbert"]["Cpu"] == 24 * 1024 * 8 // 16


@pytest.mark.parametrize("variant", ["multi", "default", "large", "split"])
def test_no_model_gets_more_tasks_on_an_instance_than_it_has_core_slots(synth: SynthFn, variant: str) -> None:
    """Whatever ECS places: a distinct-instance constraint allows one; CPU shares allow what the CPU holds."""
    synthesized = synth(variant)
    settings = synthesized.settings
    services = synthesized.serving("AWS::ECS::Service").values()
    cpu_by_model = {
        name: container["Cpu"] for name, container in containers_of(synthesized).items() if "Cpu" in container
    }
    for service, model in zip(services, settings.models, strict=True):
        constraints = service["Properties"]["PlacementConstraints"]
        for size in settings.instance_sizes:
            most = size.vcpus * 1024 // cpu_by_model[model.name]
            if {"Type": "distinctInstance"} in constraints:
                most = min(most, 1)
            assert most <= model.tasks_per_instance, (variant, model.name, size.name)


def test_each_model_has_its_own_service_listeners_and_dashboard(synth: SynthFn) -> None:
    synthesized = synth("multi")

    assert len(synthesized.serving("AWS::ECS::Service")) == 2
    synthesized.template.resource_count_is("AWS::ElasticLoadBalancingV2::LoadBalancer", 1)
    synthesized.template.resource_count_is("AWS::CloudWatch::Dashboard", 2)
    listeners = synthesized.resources("AWS::ElasticLoadBalancingV2::Listener").values()
    # text ports: textPort (8080) plus each model's index
    assert sorted(listener["Properties"]["Port"] for listener in listeners) == [8080, 8081, 8500, 8501, 8502, 8503]
    registrations = sorted(
        (lb["ContainerName"], lb["ContainerPort"])
        for service in synthesized.serving("AWS::ECS::Service").values()
        for lb in service["Properties"]["LoadBalancers"]
    )
    assert registrations == [
        ("bert", 8500),
        ("bert", 8501),
        ("distilbert", 8502),
        ("distilbert", 8503),
        ("text-front", 8080),
        ("text-front", 8080),
    ]
    outputs = synthesized.json["Outputs"]
    assert (outputs["ModelName"]["Value"], outputs["Model2ModelName"]["Value"]) == ("bert", "distilbert")
    assert outputs["Model2GrpcPort"]["Value"] == "8502"


def test_one_model_keeps_its_slots_at_the_task_size_without_offsets(synth: SynthFn) -> None:
    env = environment(containers_of(synth("large"))["bert-large"])

    assert "NEURON_CORE_OFFSET" not in env
    assert "NEURON_CORE_STRIDE" not in env


# --- the layout through deploys, scaling and spot interruptions (tests/placement_sim.py) -----------


def service_specs(synthesized: Synthesized) -> dict[str, ServiceSpec]:
    """Each model service's CPU reservation, deployment configuration, constraints and strategy."""
    task_definitions = synthesized.resources("AWS::ECS::TaskDefinition")
    specs = {}
    for logical_id, service in synthesized.serving("AWS::ECS::Service").items():
        properties = service["Properties"]
        definition = task_definitions[properties["TaskDefinition"]["Ref"]]["Properties"]
        deployment = properties["DeploymentConfiguration"]
        constraints = [constraint["Type"] for constraint in properties.get("PlacementConstraints", [])]
        strategies = properties.get("PlacementStrategies", [])
        specs[logical_id] = ServiceSpec(
            name=logical_id,
            cpu=sum(container.get("Cpu", 0) for container in definition["ContainerDefinitions"]),
            min_percent=deployment["MinimumHealthyPercent"],
            max_percent=deployment["MaximumPercent"],
            distinct_instance="distinctInstance" in constraints,
            binpack=strategies == [{"Type": "binpack", "Field": "CPU"}],
        )
    return specs


events = st.lists(
    st.one_of(
        st.tuples(st.just("deploy"), st.integers(0, 4)),
        st.tuples(st.just("out"), st.just(0)),
        st.tuples(st.just("in"), st.just(0)),
        st.tuples(st.just("interrupt"), st.integers(0, 10)),
    ),
    min_size=1,
    max_size=8,
)


def run_events(fleet: Fleet, settings: Any, sequence: list[tuple[str, int]]) -> None:
    services = sorted(fleet.specs)
    for kind, value in sequence:
        count = fleet.desired[services[0]]
        if kind == "deploy":
            fleet.deploy(services[value % len(services)])
        elif kind == "out":
            fleet.scale_to(min(settings.max_tasks, count + 1))
        elif kind == "in":
            fleet.scale_to(max(settings.min_tasks, count - 1))
        else:
            fleet.interrupt(value)
        assert fleet.rows_intact(), (kind, [instance.tasks for instance in fleet.instances])
        assert len(fleet.instances) == fleet.desired[services[0]]


@pytest.mark.parametrize("variant", ["multi", "triton-multi"])
@settings(max_examples=60, deadline=None)
@given(sequence=events, seed=st.integers(0, 2**32 - 1), data=st.data())
def test_every_instance_keeps_one_task_of_each_model_and_no_model_stops_serving(
    synth: SynthFn, variant: str, sequence: list[tuple[str, int]], seed: int, data: st.DataObject
) -> None:
    synthesized = synth(variant)
    settings_ = synthesized.settings
    size = settings_.instance_size
    fleet = Fleet(
        specs=service_specs(synthesized),
        instance_cpu=size.vcpus * 1024,
        max_instances=settings_.max_instances,
        zones=settings_.zones.count,
        rng=random.Random(seed),
    )
    fleet.start(data.draw(st.integers(settings_.min_tasks, settings_.max_tasks)))

    run_events(fleet, settings_, sequence)

    assert settings_.min_tasks >= 2
    assert min(fleet.fewest_running.values()) >= 1  # no serving gap, at any moment of any event


def test_the_simulation_sees_the_old_deployment_break_the_layout(synth: SynthFn) -> None:
    # Maximum 200 % and the default spread: the new task needs an instance of its own, the old one stops.
    synthesized = synth("multi")
    specs = {
        name: dataclasses.replace(spec, min_percent=100, max_percent=200, binpack=False)
        for name, spec in service_specs(synthesized).items()
    }
    fleet = Fleet(specs=specs, instance_cpu=24 * 1024, max_instances=3, zones=3, rng=random.Random(0))
    fleet.start(2)

    fleet.deploy(sorted(specs)[0])

    assert not fleet.rows_intact()


def test_several_models_deploy_in_place_and_pack(synth: SynthFn) -> None:
    for spec in service_specs(synth("multi")).values():
        assert (spec.min_percent, spec.max_percent) == (50, 100)
        assert spec.distinct_instance
        assert spec.binpack


def test_several_models_need_two_tasks_each(synth: SynthFn) -> None:
    context = {**CDK_JSON_CONTEXT, **VARIANTS["multi"], "minTasks": "1", "desiredCount": "1"}
    with pytest.raises(SettingsError, match=r"'minTasks' = 1: must be at least 2 with several models"):
        load_settings(context.get)


def test_the_simulation_sees_a_spread_scale_in_leave_half_empty_instances(synth: SynthFn) -> None:
    # In-place deploys but ECS's default spread: each service stops a task on an instance of its own choosing.
    specs = {name: dataclasses.replace(spec, binpack=False) for name, spec in service_specs(synth("multi")).items()}
    broken = 0
    for seed in range(20):
        fleet = Fleet(specs=specs, instance_cpu=24 * 1024, max_instances=3, zones=3, rng=random.Random(seed))
        fleet.start(3)
        fleet.scale_to(2)
        broken += not fleet.rows_intact()

    assert broken > 0


def test_models_that_are_not_json_say_where() -> None:
    written = '[{"name": "bert", "cores": 8,}]'  # a trailing comma, as -c models=... might carry

    with pytest.raises(SettingsError) as refused:
        load_settings({**CDK_JSON_CONTEXT, "instanceType": "inf1.6xlarge", "models": written}.get)

    (line,) = str(refused.value).splitlines()
    assert line.startswith("Invalid setting 'models' = ")
    assert "not valid JSON: Expecting property name enclosed in double quotes at column 30" in line


def test_a_model_row_names_its_missing_and_unknown_keys() -> None:
    rows = [{"name": "bert", "cores": 16, "grpcPort": 8500, "restPort": 8501, "modelS3": "s3://b/m"}]

    with pytest.raises(SettingsError) as refused:
        load_settings({**CDK_JSON_CONTEXT, "instanceType": "inf1.6xlarge", "models": rows}.get)

    (line,) = str(refused.value).splitlines()
    assert line.startswith("Invalid setting 'models[0]' = ")
    assert line.endswith(
        "missing modelS3Uri; unknown modelS3: each model takes exactly name, cores, grpcPort, restPort, modelS3Uri, "
        "and may take textPort"
    )
