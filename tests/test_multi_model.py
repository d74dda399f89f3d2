"""Several models side by side: each instance holds one task of every model, each on its own cores."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from config.settings import SettingsError, load_settings
from tests.conftest import CDK_JSON_CONTEXT, Synthesized

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
    settings = load_settings({**CDK_JSON_CONTEXT, "instanceType": size, "models": list(models)}.get)
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
        ([model("a", 2, 8500), model("b", 2, 8501)], "models", "every gRPC and REST port once"),
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
    assert sorted(listener["Properties"]["Port"] for listener in listeners) == [8500, 8501, 8502, 8503]
    registrations = sorted(
        (lb["ContainerName"], lb["ContainerPort"])
        for service in synthesized.serving("AWS::ECS::Service").values()
        for lb in service["Properties"]["LoadBalancers"]
    )
    assert registrations == [("bert", 8500), ("bert", 8501), ("distilbert", 8502), ("distilbert", 8503)]
    outputs = synthesized.json["Outputs"]
    assert (outputs["ModelName"]["Value"], outputs["Model2ModelName"]["Value"]) == ("bert", "distilbert")
    assert outputs["Model2GrpcPort"]["Value"] == "8502"


def test_one_model_keeps_its_slots_at_the_task_size_without_offsets(synth: SynthFn) -> None:
    env = environment(containers_of(synth("large"))["bert-large"])

    assert "NEURON_CORE_OFFSET" not in env
    assert "NEURON_CORE_STRIDE" not in env
