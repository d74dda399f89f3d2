"""server=triton: which server runs where, and what its template holds on every Inf2 size and with several models."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any
from urllib.parse import urlparse

import pytest

from components.neuron_monitor.runtime import metric_names as metrics
from components.text_front.runtime import front_environment as front_env
from config.engines import TF_SERVING, TRITON
from config.hardware import INSTANCE_SIZES, NeuronFamily
from config.settings import SettingsError, defaults, load_settings
from tests.conftest import CDK_JSON_CONTEXT, VALIDATES, VARIANTS, Synthesized, synthesize
from tests.test_images import docker_images

SynthFn = Callable[[str], Synthesized]
INF2_SIZES = sorted(name for name, size in INSTANCE_SIZES.items() if size.family is NeuronFamily.INF2)


def settings_with(**overrides: object) -> Any:
    context = {**defaults(), **overrides}
    return load_settings(context.get)


@pytest.mark.parametrize("size", sorted(INSTANCE_SIZES))
def test_inf2_serves_with_triton_and_inf1_with_tf_serving_by_default(size: str) -> None:
    engine = settings_with(instanceType=size).profile.engine

    assert engine is (TRITON if INSTANCE_SIZES[size].family is NeuronFamily.INF2 else TF_SERVING)


def test_tf_serving_can_still_be_chosen_on_inf2() -> None:
    assert settings_with(instanceType="inf2.xlarge", server="tfserving").profile.engine is TF_SERVING


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"instanceType": "inf1.xlarge", "server": "triton"},
            "Invalid setting 'server' = 'triton': Triton serves a torch-neuronx model, which runs on Inf2, not "
            "inf1.xlarge: leave server empty or set tfserving",
        ),
        (
            {
                "instanceType": "inf1.xlarge",
                "server": "triton",
                "neuronRuntime": "rtd",
                "amiId": "ami-0123456789abcdef0",
            },
            "Invalid setting 'server' = 'triton': Triton serves a torch-neuronx model",
        ),
        ({"server": "torchserve"}, "Invalid setting 'server' = 'torchserve': expected one of , tfserving, triton"),
    ],
)
def test_triton_where_it_cannot_run_is_one_line(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(SettingsError) as refused:
        settings_with(**overrides)

    assert str(refused.value).startswith(message)


@cache
def _synth_size(size: str) -> Synthesized:
    """The default app on an Inf2 size the shared variants do not cover."""
    # With the built-in validation: `make lint` covers the variants only.
    return synthesize(f"size-{size}", {**CDK_JSON_CONTEXT, "instanceType": size}, validate=True)


def for_size(size: str, synth: SynthFn) -> Synthesized:
    # inf2.24xlarge and inf2.48xlarge are the shared variants triton-multi and split.
    return {"inf2.24xlarge": lambda: synth("triton-multi"), "inf2.48xlarge": lambda: synth("split")}.get(
        size, lambda: _synth_size(size)
    )()


def server_containers(synthesized: Synthesized) -> list[dict[str, Any]]:
    names = {model.name for model in synthesized.settings.models}
    return [
        container
        for task in synthesized.serving("AWS::ECS::TaskDefinition").values()
        for container in task["Properties"]["ContainerDefinitions"]
        if container["Name"] in names
    ]


@VALIDATES
@pytest.mark.parametrize("size", INF2_SIZES)
def test_every_inf2_size_runs_triton_on_its_neuron_cores_behind_ready_checks(synth: SynthFn, size: str) -> None:
    synthesized = for_size(size, synth)
    settings = synthesized.settings
    servers = server_containers(synthesized)

    assert synthesized.json["Outputs"]["ServerApi"]["Value"] == "kserve"
    assert len(servers) == len(settings.models)
    for model, server in zip(settings.models, servers, strict=True):
        environment = {item["Name"]: item["Value"] for item in server["Environment"]}
        assert environment["TRITON_INSTANCES"] == str(model.cores_per_task)
        assert server["LinuxParameters"]["Capabilities"] == {"Add": ["IPC_LOCK"]}
        assert len(server["LinuxParameters"]["Devices"]) == settings.instance_size.chips
        assert server["HealthCheck"]["Command"] == TRITON.health_command(model.name, model.rest_port)
    ready_paths = {
        group["Properties"]["HealthCheckPath"]
        for group in synthesized.resources("AWS::ElasticLoadBalancingV2::TargetGroup").values()
        if "HealthCheckPath" in group["Properties"] and group["Properties"]["HealthCheckPath"] != front_env.HEALTH_PATH
    }
    assert ready_paths == {f"/v2/models/{model.name}/ready" for model in settings.models}
    (image,) = {image["dockerFile"] for image in docker_images(synthesized) if "model_server/" in image["dockerFile"]}
    assert image == "model_server/runtime/Dockerfile.triton"


def test_several_models_behind_triton_each_load_from_s3_with_their_own_instances(synth: SynthFn) -> None:
    synthesized = synth("triton-multi")
    tasks = synthesized.serving("AWS::ECS::TaskDefinition").values()

    for task in tasks:
        names = [container["Name"] for container in task["Properties"]["ContainerDefinitions"]]
        assert "model-sync" in names
        assert "neuron-monitor" in names
    assert {container["Name"] for container in server_containers(synthesized)} == {"bert", "minilm"}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_sidecar_scrapes_its_own_tasks_triton_and_the_dashboard_shows_it(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)
    profile = synthesized.settings.profile
    names = {model.name for model in synthesized.settings.models}
    for task in synthesized.serving("AWS::ECS::TaskDefinition").values():
        containers = {container["Name"]: container for container in task["Properties"]["ContainerDefinitions"]}
        monitor = containers.get("neuron-monitor", {})
        url = {item["Name"]: item["Value"] for item in monitor.get("Environment", [])}.get("TRITON_METRICS_URL")
        if not profile.server_metrics:
            assert url is None
            assert "Links" not in monitor
            continue
        (server,) = names & set(containers)
        assert isinstance(url, str)
        scraped = urlparse(url)
        assert (scraped.scheme, scraped.port, scraped.path) == ("http", TRITON.metrics_port, "/metrics")
        if task["Properties"]["NetworkMode"] == "awsvpc":
            # one network namespace per task: the server is on localhost, and links do not exist there
            assert scraped.hostname == "localhost"
            assert "Links" not in monitor
        else:
            # bridge mode: each container has its own address, reached through a link to this task's server
            assert monitor["Links"] == [f"{server}:{scraped.hostname}"]
    dashboards = json.dumps(synthesized.resources("AWS::CloudWatch::Dashboard"))
    for figure in (metrics.QUEUE_TIME, metrics.COMPUTE_TIME, metrics.INFERENCES, metrics.PENDING_REQUESTS):
        assert (f'\\"{figure}\\"' in dashboards) is profile.server_metrics, figure
