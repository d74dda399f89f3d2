"""`make model` up to the Neuron call: its variables, the compile container it builds and runs, the
toolchain check inside it, and `make model-upload`. No TensorFlow, no Docker engine, no AWS."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from config import settings
from config.engines import ServingEngine
from config.hardware import NeuronFamily
from config.neuron_releases import LIBNRT_RELEASES, TRITON_INF2, NeuronReleaseSet
from config.placement import S3Location
from modelbuild.container import (
    CHECKPOINT_MOUNT,
    COMPILER_CONTEXT,
    OUT_MOUNT,
    SOURCE_MOUNT,
    build_command,
    compile_in_container,
    image_tag,
    run_command,
)
from modelbuild.neuron import (
    DYNAMIC_BATCH_FLAG,
    TRACE_MODULES,
    check_installed,
    neuron_compiler,
    neuron_trace,
    toolchain,
)
from modelbuild.options import (
    DEFAULT_CHECKPOINT,
    DEFAULT_OUT,
    SCRATCH_OUT,
    Family,
    ModelBuildError,
    default_family,
    parse_options,
    stack_target,
)
from modelbuild.upload import upload, upload_command
from tests.conftest import ROOT
from tests.test_neuron_releases import MANIFEST

NEURON_FAMILIES = [Family.INF1, Family.INF2]


def run_make_model(*arguments: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path if path is not None else os.environ["PATH"]}
    return subprocess.run(
        [sys.executable, "-m", "modelbuild", *arguments], capture_output=True, text=True, cwd=ROOT, env=env, check=False
    )


def options(**given: str) -> Any:
    fields = {"family": "", "checkpoint": "", "out": "", "version": "", "batch": "", "sequence_length": "", "tiny": ""}
    return parse_options(**{**fields, **given})


@pytest.fixture(autouse=True)
def fresh_stack_settings() -> Iterator[None]:
    """Each test reads the stack's settings afresh (they are read once per `make model` run)."""
    stack_target.cache_clear()
    settings.defaults.cache_clear()
    yield
    stack_target.cache_clear()
    settings.defaults.cache_clear()


def test_the_defaults_are_the_walk_throughs_model_for_cdk_jsons_family() -> None:
    chosen = options()
    instance_type = json.loads((ROOT / "cdk.json").read_text())["context"]["instanceType"]

    assert chosen.family is default_family()
    assert chosen.family.value == instance_type.split(".")[0]
    assert chosen.checkpoint == DEFAULT_CHECKPOINT
    assert chosen.out == DEFAULT_OUT
    assert (chosen.version, chosen.batch, chosen.sequence_length) == (1, 1, 128)


def test_family_and_server_come_from_the_settings_synth_uses_cdk_args_included(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CDK_ARGS", "-c instanceType=inf2.xlarge")

    chosen = options()

    assert (chosen.family, chosen.server) == (Family.INF2, ServingEngine.TRITON)
    assert chosen.out == DEFAULT_OUT  # a Neuron build goes where the image bakes it in


@pytest.mark.parametrize("given", [{"family": "cpu"}, {"tiny": "1"}, {"family": "cpu", "tiny": "1"}])
def test_the_quick_local_build_goes_to_a_scratch_folder_not_into_the_image(given: dict[str, str]) -> None:
    chosen = options(**given)

    assert chosen.out == SCRATCH_OUT
    assert chosen.out != DEFAULT_OUT


@pytest.mark.parametrize(
    ("cdk_json", "message"),
    [
        ('{"context": {"instanceType": "inf1.xlarge",}', "cdk.json is not valid JSON: Expecting property name"),
        (None, "Invalid setting 'instanceType' = 'inf1.xlrge': expected one of inf1.xlarge"),
    ],
)
def test_a_broken_cdk_json_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cdk_json: str | None, message: str
) -> None:
    broken = tmp_path / "cdk.json"
    if cdk_json is None:  # valid JSON, a misspelt size
        context = json.loads((ROOT / "cdk.json").read_text())
        context["context"]["instanceType"] = "inf1.xlrge"
        cdk_json = json.dumps(context)
    broken.write_text(cdk_json)
    monkeypatch.setattr(settings, "CDK_JSON", broken)

    with pytest.raises(ModelBuildError) as refused:
        options()

    (line,) = str(refused.value).splitlines()
    assert line.startswith("the stack's settings (cdk.json, CDK_ARGS) are refused: ")
    assert message in line


def test_a_misspelt_setting_in_cdk_args_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDK_ARGS", "-c instancetype=inf2.xlarge")

    result = run_make_model()

    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "Unknown setting 'instancetype': did you mean 'instanceType'?" in line


def test_an_out_whose_parent_does_not_exist_is_refused(tmp_path: Path) -> None:
    result = run_make_model("--family", "cpu", "--tiny", "1", "--out", str(tmp_path / "no" / "such" / "folder"))

    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert f"Invalid make model variable OUT={tmp_path / 'no' / 'such' / 'folder'}" in line
    assert "its parent folder" in line
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize(
    ("arguments", "variable", "allowed"),
    [
        (["--family", "gpu"], "FAMILY", "expected one of inf1, inf2, cpu"),
        (["--checkpoint", "./no-such-checkpoint"], "CHECKPOINT", "no Hugging Face checkpoint there"),
        (["--checkpoint", "not a model id!"], "CHECKPOINT", "expected a Hugging Face model id"),
        (["--batch", "0"], "BATCH", "expected a whole number from 1 to 256"),
        (["--batch", "four"], "BATCH", "expected a whole number from 1 to 256"),
        (["--seq", "513"], "SEQ", "expected a whole number from 8 to 512"),
        (["--version", "0"], "VERSION", "expected a positive whole number"),
        (["--tiny", "yes"], "TINY", "expected 1"),
        (["--tiny", "1", "--checkpoint", "bert-base-cased"], "CHECKPOINT", "TINY=1 builds its own random BERT"),
        (["--server", "torchserve"], "SERVER", "expected one of tfserving, triton"),
        (["--family", "inf1", "--server", "triton"], "SERVER", "Triton's torch-neuronx is Inf2 only"),
    ],
)
def test_a_bad_variable_is_one_line_naming_it(arguments: list[str], variable: str, allowed: str) -> None:
    result = run_make_model("--family", "cpu", *arguments)

    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: Invalid make model variable {variable}=")
    assert allowed in line
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("docker", ["absent", "no engine"])
def test_a_neuron_family_without_docker_is_one_line(tmp_path: Path, docker: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if docker == "no engine":  # the client answers, the engine does not: `docker info` fails
        fake = bin_dir / "docker"
        fake.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
        fake.chmod(0o755)

    result = run_make_model("--family", "inf1", "--tiny", "1", "--out", str(tmp_path / "m"), path=str(bin_dir))

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: Invalid make model variable FAMILY=inf1: Neuron compiles in a Docker container (linux/amd64) and no "
        "Docker engine answers here (docker info failed); start Docker, or use FAMILY=cpu for a model without Neuron"
    ]


# Each Neuron build: (family, server) -> the release set of the image that will serve the model.
NEURON_BUILDS = [
    (Family.INF1, ServingEngine.TFSERVING, LIBNRT_RELEASES[NeuronFamily.INF1]),
    (Family.INF2, ServingEngine.TFSERVING, LIBNRT_RELEASES[NeuronFamily.INF2]),
    (Family.INF2, ServingEngine.TRITON, TRITON_INF2),
]


def installed_by(dockerfile: Path, build_args: dict[str, str]) -> set[tuple[str, str]]:
    """The Neuron wheels a compile image's pip installs: "${X_PACKAGE}==${X_VERSION}" with the build arguments."""
    pins = re.findall(r'"\$\{([A-Z_]+_PACKAGE)\}==\$\{([A-Z_]+_VERSION)\}"', dockerfile.read_text())
    return {(build_args[name], build_args[version]) for name, version in pins}


def pip_pins(dockerfile: Path) -> dict[str, str]:
    """The literal name==version pins of a Dockerfile's pip installs."""
    return dict(re.findall(r'"([a-z0-9][a-z0-9_.-]*)==([0-9][^"+]*)"', dockerfile.read_text()))


def test_the_tensorflow_compile_image_keeps_numpy_below_2() -> None:
    # TensorFlow 2.10 does not import under numpy 2 (tensorflow#91042); unpinned, pip resolves numpy 2.x.
    pins = pip_pins(COMPILER_CONTEXT / "Dockerfile")

    assert int(pins["numpy"].split(".")[0]) < 2
    assert pins["transformers"] == "4.36.2"


each_neuron_build = pytest.mark.parametrize(
    ("family", "server", "server_releases"), NEURON_BUILDS, ids=lambda value: getattr(value, "value", "")
)


@each_neuron_build
def test_the_compile_image_installs_the_compiler_of_the_servers_release(
    family: Family, server: ServingEngine, server_releases: NeuronReleaseSet
) -> None:
    chain = toolchain(family, server)
    command = build_command(chain)
    build_args = dict(command[i + 1].split("=", 1) for i, part in enumerate(command) if part == "--build-arg")
    dockerfile = Path(command[command.index("--file") + 1])

    installed = installed_by(dockerfile, build_args)

    assert installed == {(package.name, package.version) for package in server_releases.compiler}
    # The compiler and the server come from one Neuron release, as the manifest lists them.
    assert chain.release == server_releases.framework_release
    (release,) = [r for r in MANIFEST["neuron_releases"] if r["neuron_version"] == chain.release]
    listed = {(p["name"], p["version"]) for p in release["packages"]}
    assert {(p.name, p.version) for p in (*server_releases.compiler, server_releases.server[0])} <= listed
    assert command[-1] == str(COMPILER_CONTEXT)
    assert dockerfile.parent == COMPILER_CONTEXT
    assert command[2:4] == ["--platform", "linux/amd64"]


@each_neuron_build
def test_the_compile_images_python_is_one_every_compiler_package_supports(
    family: Family, server: ServingEngine, server_releases: NeuronReleaseSet
) -> None:
    chain = toolchain(family, server)
    text = (COMPILER_CONTEXT / chain.dockerfile).read_text()
    base = re.search(r"^FROM \S+python:(\d+\.\d+)", text, re.MULTILINE)
    assert base is not None
    (release,) = [r for r in MANIFEST["neuron_releases"] if r["neuron_version"] == chain.release]
    for package in chain.packages:
        (entry,) = [p for p in release["packages"] if (p["name"], p["version"]) == (package.name, package.version)]
        assert base[1] in entry["supported_python_versions"], package


def test_a_changed_table_gives_a_new_compile_image() -> None:
    tags = {image_tag(toolchain(family, server)) for family, server, _ in NEURON_BUILDS}

    assert len(tags) == len(NEURON_BUILDS)
    for family, server, _ in NEURON_BUILDS:
        for package in toolchain(family, server).packages:
            assert package.version in image_tag(toolchain(family, server))


def test_the_container_sees_the_project_read_only_and_no_network(tmp_path: Path) -> None:
    chosen = options(family="inf2", out=str(tmp_path), batch="4", sequence_length="64", version="2")
    checkpoint = tmp_path / "checkpoint"

    command = run_command(chosen, toolchain(Family.INF2), checkpoint)

    volumes = [command[i + 1] for i, part in enumerate(command) if part == "--volume"]
    assert volumes == [f"{ROOT}:{SOURCE_MOUNT}:ro", f"{tmp_path}:{OUT_MOUNT}", f"{checkpoint}:{CHECKPOINT_MOUNT}:ro"]
    assert command[command.index("--network") + 1] == "none"
    inside = command[command.index(image_tag(toolchain(Family.INF2))) + 1 :]
    assert inside[:4] == ["python", "-m", "modelbuild", "--in-container"]
    given = dict(zip(inside[4::2], inside[5::2], strict=True))
    assert given == {
        "--family": "inf2",
        "--server": chosen.server.value,
        "--out": OUT_MOUNT,
        "--version": "2",
        "--batch": "4",
        "--seq": "64",
        "--checkpoint": CHECKPOINT_MOUNT,
    }


def test_make_model_builds_the_image_then_compiles_inside_it(tmp_path: Path) -> None:
    ran: list[list[str]] = []

    def run(command: Sequence[str]) -> int:
        ran.append(list(command))
        return 0

    chosen = options(family="inf1", out=str(tmp_path / "m"), tiny="1")
    written = compile_in_container(chosen, run=run, run_quietly=lambda _command: 0, checkpoint=None)

    assert [command[:2] for command in ran] == [["docker", "build"], ["docker", "run"]]
    assert ran[1][-2:] == ["--tiny", "1"]
    assert written == tmp_path / "m" / "1"


def test_a_failed_image_build_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda _name: "/usr/bin/docker")
    chosen = options(family="inf2", out=str(tmp_path), tiny="1")

    with pytest.raises(
        ModelBuildError, match=r"^The compile image bert-inferentia-model-compiler:inf2-.* did not build"
    ):
        compile_in_container(chosen, run=lambda _command: 1, run_quietly=lambda _command: 0)


@pytest.mark.parametrize("family", NEURON_FAMILIES, ids=lambda family: family.value)
def test_inside_the_container_a_toolchain_from_another_release_is_refused(family: Family) -> None:
    chain = toolchain(family)
    framework = chain.packages[0]
    installed = {package.name: package.version for package in chain.packages} | {framework.name: "2.10.1.2.9.0.0"}

    with pytest.raises(ModelBuildError) as refused:
        neuron_compiler(chain, installed=installed.__getitem__, import_module=pytest.fail)

    assert str(refused.value) == (
        f"The compile container has {framework.name} 2.10.1.2.9.0.0, but the {family.value} server image comes from "
        f"Neuron {chain.release}, which ships {framework.version}: rebuild it (make model builds it from "
        "config/neuron_releases.py)"
    )


def test_a_missing_toolchain_package_is_named() -> None:
    def nothing_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    with pytest.raises(ModelBuildError, match="has tensorflow-neuron not installed"):
        check_installed(toolchain(Family.INF1), nothing_installed)


def test_tritons_neuron_call_is_torch_neuronx_trace_of_the_signature_module_after_the_toolchain_check() -> None:
    chain = toolchain(Family.INF2, ServingEngine.TRITON)
    installed = {package.name: package.version for package in chain.packages}
    traced: list[tuple[object, object]] = []

    class TorchNeuronx:
        @staticmethod
        def trace(module: object, example: object) -> str:
            traced.append((module, example))
            return "neuron module"

    imported: list[str] = []

    def import_module(name: str) -> type[TorchNeuronx]:
        imported.append(name)
        return TorchNeuronx

    trace = neuron_trace(chain, installed=installed.__getitem__, import_module=import_module)

    assert trace("module", ("example",)) == "neuron module"
    assert imported == ["torch_neuronx"]
    assert traced == [("module", ("example",))]
    wrong = {**installed, "torch-neuronx": "2.9.0.2.12.22436"}
    with pytest.raises(
        ModelBuildError,
        match=re.escape("has torch-neuronx 2.9.0.2.12.22436, but the inf2 server image comes from Neuron 2.31.1"),
    ):
        neuron_trace(chain, installed=wrong.__getitem__, import_module=import_module)


@pytest.mark.parametrize("family", NEURON_FAMILIES, ids=lambda family: family.value)
def test_the_neuron_call_is_the_familys_trace_with_dynamic_batch_size(
    family: Family, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEURON_CC_FLAGS", "--workdir /tmp/artifacts")
    chain = toolchain(family)
    installed = {package.name: package.version for package in chain.packages}
    imported: list[str] = []
    traced: list[tuple[object, dict[str, object]]] = []

    class Module:
        @staticmethod
        def trace(forward: object, example: dict[str, object]) -> str:
            traced.append((forward, example))
            return "compiled"

    def import_module(name: str) -> type[Module]:
        imported.append(name)
        return Module

    def forward() -> dict[str, object]:
        return {}

    compile_step = neuron_compiler(chain, installed=installed.__getitem__, import_module=import_module)
    result = compile_step(forward, {"input_ids": "example"})

    assert result == "compiled"
    assert imported == [TRACE_MODULES[family]]
    assert traced == [(forward, {"input_ids": "example"})]
    assert os.environ["NEURON_CC_FLAGS"].split() == ["--workdir", "/tmp/artifacts", DYNAMIC_BATCH_FLAG]


class RecordingS3:
    def __init__(self) -> None:
        self.uploads: list[tuple[str, str, str]] = []

    def upload_file(self, filename: str, bucket: str, key: str) -> None:
        self.uploads.append((Path(filename).name, bucket, key))


def built(out: Path, version: int) -> None:
    folder = out / str(version)
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"pb")
    (folder / "variables" / "variables.index").write_bytes(b"index")


def test_upload_puts_each_version_under_the_prefix_model_s3_uri_names(tmp_path: Path) -> None:
    built(tmp_path, 1)
    built(tmp_path, 2)
    (tmp_path / "README.md").write_text("not a model")
    (tmp_path / "7").mkdir()  # a version folder without a SavedModel stays behind
    s3 = RecordingS3()

    keys = upload(tmp_path, S3Location("my-models", "bert"), s3)

    assert keys == [
        "bert/1/saved_model.pb",
        "bert/1/variables/variables.index",
        "bert/2/saved_model.pb",
        "bert/2/variables/variables.index",
    ]
    assert {bucket for _, bucket, _ in s3.uploads} == {"my-models"}
    message = upload_command(s3="s3://my-models/bert", out=str(tmp_path), client=RecordingS3())
    assert message.endswith("deploy with -c modelS3Uri=s3://my-models/bert")


@pytest.mark.parametrize(
    ("s3", "variable", "allowed"),
    [
        ("my-models/bert", "S3", "expected s3://bucket/prefix"),
        ("s3://my-models", "S3", "expected s3://bucket/prefix"),
        ("s3://my-models/bert", "OUT", "run make model first"),
    ],
)
def test_upload_refuses_in_one_line(tmp_path: Path, s3: str, variable: str, allowed: str) -> None:
    result = run_make_model("upload", "--s3", s3, "--out", str(tmp_path / "empty"))

    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"error: Invalid make model variable {variable}=")
    assert allowed in line


def test_the_makefile_passes_every_variable_through() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile[makefile.index("\nmodel:") :]

    for variable, flag in [
        ("FAMILY", "--family"),
        ("SERVER", "--server"),
        ("CHECKPOINT", "--checkpoint"),
        ("OUT", "--out"),
        ("VERSION", "--version"),
        ("BATCH", "--batch"),
        ("SEQ", "--seq"),
        ("TINY", "--tiny"),
    ]:
        assert f'{flag} "$({variable})"' in recipe, variable
    assert '--s3 "$(S3)"' in recipe
