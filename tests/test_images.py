"""Images: which Dockerfile and build arguments each layout and family gets, and the model check."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Annotations, Match

from components.model_server.images import ModelServerImages, has_saved_model
from config.settings import load_settings
from tests.conftest import CDK_JSON_CONTEXT, ROOT, Synthesized
from tests.paths import COMPONENTS, MONITOR_RUNTIME, SERVER_RUNTIME
from tests.scripts import copied_into

SynthFn = Callable[[str], Synthesized]
DEFAULTS = load_settings(CDK_JSON_CONTEXT.get)
PROFILE, MODEL = DEFAULTS.profile, DEFAULTS.models[0]


def docker_images(synthesized: Synthesized) -> list[dict[str, Any]]:
    """The image assets of the stack, from its asset manifest."""
    directory = synthesized.directory
    manifest = json.loads((directory / f"{synthesized.artifact_id}.assets.json").read_text())
    images = []
    for image in manifest.get("dockerImages", {}).values():
        source = dict(image["source"])
        context = directory / source["directory"]
        source["files"] = sorted(str(path.relative_to(context)) for path in context.rglob("*") if path.is_file())
        source["context"] = str(context)
        images.append(source)
    return sorted(images, key=lambda source: source["files"])


def server_images(synthesized: Synthesized) -> list[dict[str, Any]]:
    return [image for image in docker_images(synthesized) if image["dockerFile"].startswith("model_server/")]


@pytest.mark.parametrize(
    ("variant", "base", "package", "runtime_lib"),
    [
        ("default", "amazonlinux:2023", ("tensorflow-model-server-neuronx", "2.10.1.2.12.2.0"), None),
        ("inf2", "amazonlinux:2023", ("tensorflow-model-server-neuronx", "2.10.1.2.12.2.0"), "2.33.10.0"),
        ("rtd", "amazonlinux:2", ("tensorflow-model-server-neuron", "1.15.0.1.0.1572.0"), None),
    ],
)
def test_server_image_is_built_for_the_layout_with_pinned_packages(
    synth: SynthFn, variant: str, base: str, package: tuple[str, str], runtime_lib: str | None
) -> None:
    (server,) = server_images(synth(variant))

    args = server["dockerBuildArgs"]
    assert args["BASE_IMAGE"] == f"public.ecr.aws/amazonlinux/{base}"
    pins = dict(word.split("=", 1) for word in args["NEURON_OS_PACKAGES"].split())
    assert pins[package[0]] == package[1]
    # Inf2's server loads the runtime library of a release the AMI's driver accepts; Inf1's is inside it
    assert pins.get("aws-neuronx-runtime-lib") == runtime_lib
    assert server["platform"] == "linux/amd64"


def test_model_name_and_ports_are_baked_into_the_server_image(synth: SynthFn) -> None:
    (server,) = server_images(synth("large"))

    assert {key: server["dockerBuildArgs"][key] for key in ("MODEL_NAME", "GRPC_PORT", "REST_PORT")} == {
        "MODEL_NAME": "bert-large",
        "GRPC_PORT": "9000",
        "REST_PORT": "9001",
    }


@pytest.mark.parametrize(("variant", "in_image"), [("default", "true"), ("split", "false")])
def test_model_goes_into_the_image_unless_it_comes_from_s3(synth: SynthFn, variant: str, in_image: str) -> None:
    (server,) = server_images(synth(variant))

    assert server["dockerBuildArgs"]["MODEL_IN_IMAGE"] == in_image


@pytest.mark.parametrize(("variant", "sidecar"), [("default", "neuron_monitor"), ("rtd", "neuron_rtd")])
def test_each_layout_builds_its_own_sidecar(synth: SynthFn, variant: str, sidecar: str) -> None:
    images = docker_images(synth(variant))
    (image,) = [image for image in images if image["dockerFile"].split("/")[0] in ("neuron_monitor", "neuron_rtd")]

    assert len(images) == (3 if variant == "default" else 2)  # the default task has the text front too
    assert image["dockerFile"] == f"{sidecar}/runtime/Dockerfile"
    expected = {
        "neuron_monitor": [
            "neuron_monitor/runtime/Dockerfile",
            "neuron_monitor/runtime/metric_names.py",
            "neuron_monitor/runtime/monitor.json",
            "neuron_monitor/runtime/monitor_environment.py",
            "neuron_monitor/runtime/neuron_emf.py",
            "neuron_monitor/runtime/requirements.txt",
            "neuron_monitor/runtime/triton_emf.py",
        ],
        "neuron_rtd": ["neuron_rtd/runtime/Dockerfile"],
    }[sidecar]
    assert image["files"] == sorted([*expected, "neuron_packages/neuron-install.sh"])


def test_the_sidecars_parser_is_the_version_the_tests_run() -> None:
    def pins(path: Path) -> set[str]:
        return {line.strip() for line in path.read_text().splitlines() if line.strip().startswith("prometheus-client")}

    sidecar = pins(MONITOR_RUNTIME / "requirements.txt")
    assert len(sidecar) == 1
    assert sidecar == pins(ROOT / "requirements-dev.txt")


@pytest.mark.parametrize(
    ("variant", "dockerfile"),
    [("default", "model_server/runtime/Dockerfile"), ("managed", "model_server/runtime/Dockerfile.triton")],
)
def test_build_context_holds_exactly_what_the_dockerfile_copies(synth: SynthFn, variant: str, dockerfile: str) -> None:
    (server,) = server_images(synth(variant))

    assert server["dockerFile"] == dockerfile
    model_files = [name for name in server["files"] if name.startswith("model_server/model/")]
    assert "model_server/model/README.md" in model_files  # whatever model a developer built, too
    copied = {
        source
        for destination in ("/usr/local/bin/", "/tmp/neuron-install.sh")
        for source in copied_into(COMPONENTS / dockerfile, destination)
    }
    assert "neuron_packages/neuron-install.sh" in copied
    assert set(server["files"]) - set(model_files) == {dockerfile, *copied}


def test_saved_model_is_found_only_in_a_version_folder(tmp_path: Path) -> None:
    assert not has_saved_model(tmp_path)
    (tmp_path / "saved_model.pb").write_bytes(b"")
    assert not has_saved_model(tmp_path)  # TF Serving needs <version>/saved_model.pb
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "saved_model.pb").write_bytes(b"")
    assert has_saved_model(tmp_path)


def test_missing_model_fails_the_image_build_before_the_package_install() -> None:
    dockerfile = (SERVER_RUNTIME / "Dockerfile").read_text()

    model_stage, install_stage = dockerfile.split("FROM ${BASE_IMAGE}\n", 1)
    assert "saved_model.pb" in model_stage
    assert "exit 1" in model_stage
    assert "see docs/model.md" in model_stage
    assert "neuron-install.sh yum" in install_stage
    assert "COPY --from=model" in install_stage


def test_synth_warns_only_when_no_model_is_supplied(tmp_path: Path) -> None:
    # GIVEN one image set without a model and one with a model (a small app: no full stack needed)
    with_model = tmp_path / "with-model"
    (with_model / "1").mkdir(parents=True)
    (with_model / "1" / "saved_model.pb").write_bytes(b"")
    app = cdk.App(builtin_cloud_formation_validation=False)
    stacks = {}
    for name, model_dir in (("NoModel", tmp_path / "empty"), ("WithModel", with_model)):
        stacks[name] = cdk.Stack(app, name)
        ModelServerImages(stacks[name], "Images", profile=PROFILE, model=MODEL, model_dir=model_dir)

    # THEN only the one without a model warns, and both still synthesize
    no_model = Annotations.from_stack(stacks["NoModel"])
    no_model.has_warning("/NoModel/Images", Match.string_like_regexp("No SavedModel in .*empty"))
    Annotations.from_stack(stacks["WithModel"]).has_no_warning("*", Match.any_value())
