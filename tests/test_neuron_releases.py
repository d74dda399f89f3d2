"""One Neuron release set per family: the table against Neuron's manifest, and every image pin against the table."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from config.neuron_releases import (
    INF1,
    INF2,
    INF2_MIN_RUNTIME_LIB,
    LAST_TF_SERVING_RELEASE,
    LIBNRT_RELEASES,
    RTD,
    NeuronPackage,
    NeuronReleaseSet,
)
from tests.conftest import ROOT, VARIANTS, Synthesized
from tests.paths import COMPONENTS, SERVER_RUNTIME, TEXT_FRONT_RUNTIME
from tests.test_images import docker_images

SynthFn = Callable[[str], Synthesized]
MANIFEST = json.loads((ROOT / "tests" / "data" / "n2-manifest-excerpt.json").read_text())
LITERAL_NEURON_PIN = re.compile(
    r"\b(?:aws-neuron\S*|tensorflow-model-server\S*|tensorflow-neuron\S*|neuron\S*-cc|torch-neuron\S*)[-=]=?\d"
)
# A package manager's install command naming a Neuron package itself, rather than neuron-install.sh's list.
DIRECT_NEURON_INSTALL = re.compile(
    r"(?:yum|dnf|apt-get|apt|pip) install[^\n]*?\b(?:aws-neuron|tensorflow-model-server|tensorflow-neuron|torch-neuron"
    r"|neuron-cc|neuronx-cc)"
)
# The images' build arguments carrying the table's pins, and how each Dockerfile must consume them.
OS_PINS, PIP_PINS = "NEURON_OS_PACKAGES", "NEURON_PIP_PACKAGES"
INSTALLS_OS_PINS = re.compile(r"neuron-install\.sh (?:yum|dnf|apt) \$\{NEURON_OS_PACKAGES\}")
INSTALLS_PIP_PINS = re.compile(r"pip install [^&]*?\$\{NEURON_PIP_PACKAGES\}")


def manifest_release(version: str) -> dict[str, list[dict[str, Any]]]:
    (release,) = [release for release in MANIFEST["neuron_releases"] if release["neuron_version"] == version]
    by_name: dict[str, list[dict[str, Any]]] = {}
    for package in release["packages"]:
        by_name.setdefault(package["name"], []).append(package)
    return by_name


def release_of(package: NeuronPackage, releases: NeuronReleaseSet) -> str:
    """The runtime side (aws-neuronx-*) comes from runtime_release, the framework side from framework_release."""
    return releases.runtime_release if package.name.startswith("aws-neuronx-") else releases.framework_release


@pytest.mark.parametrize(
    ("family", "releases"), [(family.value, releases) for family, releases in LIBNRT_RELEASES.items()]
)
def test_every_package_of_a_family_is_in_its_release_for_that_family(family: str, releases: NeuronReleaseSet) -> None:
    for package in (*releases.server, *releases.monitor, *releases.compiler):
        listed = manifest_release(release_of(package, releases)).get(package.name, [])
        matching = [entry for entry in listed if entry["version"] == package.version]
        assert matching, f"{package} is not in Neuron {release_of(package, releases)}"
        assert any(family in entry["supported_instances"] for entry in matching), f"{package} does not list {family}"


def test_tf_serving_comes_from_the_last_release_that_ships_it() -> None:
    assert INF1.framework_release == INF2.framework_release == LAST_TF_SERVING_RELEASE
    later = [release for release in MANIFEST["neuron_releases"] if release["neuron_version"] != LAST_TF_SERVING_RELEASE]
    assert later, "the excerpt holds a later release to compare with"
    for release in later:
        assert "tensorflow-model-server-neuronx" not in {package["name"] for package in release["packages"]}


def test_inf2_loads_a_runtime_the_amis_driver_accepts() -> None:
    (runtime_lib,) = [package for package in INF2.server if package.name == "aws-neuronx-runtime-lib"]
    (collectives,) = [package for package in INF2.server if package.name == "aws-neuronx-collectives"]

    assert tuple(int(part) for part in runtime_lib.version.split(".")[:2]) >= INF2_MIN_RUNTIME_LIB
    assert collectives.version == runtime_lib.version


def test_inf1_carries_its_runtime_inside_the_server_package() -> None:
    assert [package.name for package in INF1.server] == ["tensorflow-model-server-neuronx"]
    assert INF1.host_driver.admits("2.21.37.0")


def pins_of(words: str, *, pip: bool) -> set[tuple[str, str]]:
    separator = "==" if pip else "="
    return {tuple(word.split(separator, 1)) for word in words.split()}  # type: ignore[misc]


def installed_by(dockerfile: Path, build_args: dict[str, str]) -> set[tuple[str, str]]:
    """The (package, version) pairs an image installs: its pin build arguments, where its Dockerfile
    hands them to neuron-install.sh (OS packages) and to pip (wheels)."""
    text = dockerfile.read_text()
    installed = set()
    if INSTALLS_OS_PINS.search(text):
        installed |= pins_of(build_args.get(OS_PINS, ""), pip=False)
    if INSTALLS_PIP_PINS.search(text):
        installed |= pins_of(build_args.get(PIP_PINS, ""), pip=True)
    return installed


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_image_installs_exactly_the_release_tables_packages(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)
    releases = synthesized.settings.releases
    images = docker_images(synthesized)

    assert images
    for image in images:
        dockerfile = COMPONENTS / image["dockerFile"]
        installed = installed_by(dockerfile, image.get("dockerBuildArgs", {}))
        # the text front talks to the server over gRPC and needs no Neuron package at all
        expected = {SERVER_RUNTIME: releases.server, TEXT_FRONT_RUNTIME: ()}.get(dockerfile.parent, releases.monitor)
        assert installed == {(package.name, package.version) for package in expected}, dockerfile
        assert DIRECT_NEURON_INSTALL.findall(dockerfile.read_text()) == [], dockerfile


DOCKERFILES = sorted(
    path
    for path in [*COMPONENTS.glob("*/runtime/Dockerfile*"), *(ROOT / "modelbuild" / "compiler").glob("Dockerfile*")]
    if path.suffix != ".dockerignore"
)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_dockerfile_writes_a_neuron_version_of_its_own(dockerfile: Path) -> None:
    text = dockerfile.read_text()

    assert LITERAL_NEURON_PIN.findall(text) == []
    for name, default in re.findall(r"^ARG ([A-Z0-9_]*(?:VERSION|PACKAGES))(?:=(.*))?$", text, flags=re.MULTILINE):
        assert default.strip('"') == "", f"{dockerfile.parent.name}: ARG {name} must come from the release table"


def test_the_checks_catch_a_neuron_package_installed_past_the_table(tmp_path: Path) -> None:
    rogue = tmp_path / "Dockerfile"
    rogue.write_text('ARG NEURON_OS_PACKAGES\nRUN dnf install -y "aws-neuronx-tools-2.17.1.0*"\n')

    assert installed_by(rogue, {OS_PINS: "aws-neuronx-tools=2.31.15.0"}) == set()
    assert DIRECT_NEURON_INSTALL.findall(rogue.read_text()) != []
    assert LITERAL_NEURON_PIN.findall("RUN yum install -y aws-neuronx-dkms-2.24.7.0") != []


def test_rtd_installs_the_walkthrough_era_runtime_pair() -> None:
    assert [(p.name, p.version) for p in RTD.packages] == [
        ("tensorflow-model-server-neuron", "1.15.0.1.0.1572.0"),
        ("aws-neuron-runtime", "1.0.6905.0"),
    ]
