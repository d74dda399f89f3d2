"""neuron-install.sh against simulated package repositories holding Neuron's real version strings.

Neuron's RPMs carry a build suffix in the version field (``aws-neuronx-runtime-lib-2.33.10.0_3dcef56f0-1``)
and its Debian packages in the revision (``2.33.10.0-3dcef56f0``); older builds are plain
(``2.26.14.0``). The script must pick that release's package in either form, and nothing else.
Doubles for yum, dnf, apt-cache, apt-get, rpm, curl and gpg answer from a fixture and record calls.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.paths import NEURON_INSTALL

SCRIPT = NEURON_INSTALL

# Real strings: the RPM form from a published lockfile, the Debian form from aws-neuron/
# deep-learning-containers pytorch/inference/2.9.0/Dockerfile.neuronx and vllm/inference/0.13.0.
RPM_RUNTIME = "2.33.10.0_3dcef56f0-1"
RPM_TOOLS = "2.31.15.0_5c7949a6a-1"
RPM_COLLECTIVES = "2.33.10.0_068180c7a-1"
DEB_RUNTIME = "2.33.10.0-3dcef56f0"
DEB_COLLECTIVES = "2.33.10.0-068180c7a"
DEB_TOOLS_2_28 = "2.28.23.0-f1c114a9d"
PLAIN_TOOLS = "2.26.14.0"  # tools up to 2.26.14.0 had no build suffix

RPM_DOUBLE = r"""#!/bin/bash
printf '%s\n' "${0##*/} $*" >> "$SIM_CALLS"
case "$*" in
  *"list available "*)
    name="${!#}"
    # yum and dnf put a long name on a line of its own and the version on the next
    echo "Available Packages"
    grep "^${name} " "$SIM_REPO" | while read -r pkg version; do
      printf '%s.x86_64\n                         %s   neuron\n' "$pkg" "$version"
    done ;;
esac
"""
APT_DOUBLE = r"""#!/bin/bash
printf '%s\n' "${0##*/} $*" >> "$SIM_CALLS"
case "${0##*/} $*" in
  "apt-cache madison "*)
    grep "^$2 " "$SIM_REPO" | while read -r pkg version; do
      printf '%20s | %s | https://apt.repos.neuron.amazonaws.com jammy/main amd64 Packages\n' "$pkg" "$version"
    done ;;
esac
"""
RECORDER = """#!/bin/bash
printf '%s\\n' "${0##*/} $*" >> "$SIM_CALLS"
"""
CURL_DOUBLE = (
    RECORDER
    + """while [[ $# -gt 0 ]]; do [[ $1 == -o ]] && echo key > "$2"; shift; done
"""
)


@dataclass
class Install:
    returncode: int
    stderr: str
    calls: list[str]

    @property
    def installs(self) -> list[str]:
        return [call for call in self.calls if " install " in f" {call} "]


def run(tmp_path: Path, manager: str, repo: dict[str, list[str]], *pins: str) -> Install:
    """Runs the script with ``manager`` against a repository holding ``repo`` (name -> versions)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, body in (
        ("yum", RPM_DOUBLE),
        ("dnf", RPM_DOUBLE),
        ("apt-cache", APT_DOUBLE),
        ("apt-get", RECORDER),
        ("rpm", RECORDER),
        ("curl", CURL_DOUBLE),
        ("gpg", RECORDER),
    ):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "repo").write_text(
        "".join(f"{name} {version}\n" for name, versions in repo.items() for version in versions)
    )
    (tmp_path / "tmp").mkdir(exist_ok=True)
    calls = tmp_path / "calls"
    calls.write_text("")
    result = subprocess.run(
        ["sh", str(SCRIPT), manager, *pins],
        env={
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "SIM_CALLS": str(calls),
            "SIM_REPO": str(tmp_path / "repo"),
            "SYSROOT": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return Install(result.returncode, result.stderr, calls.read_text().splitlines())


@pytest.mark.parametrize("manager", ["dnf", "yum"])
def test_rpm_builds_with_a_suffix_are_installed_by_their_exact_version(tmp_path: Path, manager: str) -> None:
    repo = {
        "aws-neuronx-runtime-lib": [
            "2.33.1.0_1a2b3c4d5-1",
            RPM_RUNTIME,
            "2.33.100.0_9f8e7d6c5-1",
            "2.34.10.0_ac18d186d-1",
        ],
        "aws-neuronx-collectives": [RPM_COLLECTIVES],
    }

    result = run(tmp_path, manager, repo, "aws-neuronx-runtime-lib=2.33.10.0", "aws-neuronx-collectives=2.33.10.0")

    assert result.returncode == 0, result.stderr
    # one transaction with both, each at its exact version-release
    assert result.installs == [
        f"{manager} install -y aws-neuronx-runtime-lib-{RPM_RUNTIME} aws-neuronx-collectives-{RPM_COLLECTIVES}"
    ]


def test_rpm_builds_without_a_suffix_are_installed_too(tmp_path: Path) -> None:
    repo = {"aws-neuronx-tools": [f"{PLAIN_TOOLS}-1", "2.26.14.01-1", "2.26.14.0.1-1", RPM_TOOLS]}

    result = run(tmp_path, "dnf", repo, f"aws-neuronx-tools={PLAIN_TOOLS}")

    assert result.returncode == 0, result.stderr
    assert result.installs == [f"dnf install -y aws-neuronx-tools-{PLAIN_TOOLS}-1"]


def test_apt_builds_with_and_without_a_suffix(tmp_path: Path) -> None:
    repo = {
        "aws-neuronx-runtime-lib": ["2.28.23.0-dd5879008", DEB_RUNTIME, "2.33.100.0-9f8e7d6c5"],
        "aws-neuronx-collectives": [DEB_COLLECTIVES],
        "aws-neuronx-tools": [DEB_TOOLS_2_28, PLAIN_TOOLS, "2.26.14.01"],
    }

    result = run(
        tmp_path,
        "apt",
        repo,
        "aws-neuronx-runtime-lib=2.33.10.0",
        "aws-neuronx-collectives=2.33.10.0",
        f"aws-neuronx-tools={PLAIN_TOOLS}",
    )

    assert result.returncode == 0, result.stderr
    assert result.installs == [
        "apt-get install -y --no-install-recommends "
        f"aws-neuronx-runtime-lib={DEB_RUNTIME} aws-neuronx-collectives={DEB_COLLECTIVES} "
        f"aws-neuronx-tools={PLAIN_TOOLS}"
    ]
    sources = (tmp_path / "etc" / "apt" / "sources.list.d" / "neuron.list").read_text()
    assert "https://apt.repos.neuron.amazonaws.com jammy main" in sources


def test_the_yum_repository_is_added_before_anything_is_installed(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        "yum",
        {"tensorflow-model-server-neuronx": ["2.10.1.2.12.2.0-1"]},
        "tensorflow-model-server-neuronx=2.10.1.2.12.2.0",
    )

    assert result.returncode == 0, result.stderr
    assert (
        "baseurl=https://yum.repos.neuron.amazonaws.com"
        in (tmp_path / "etc" / "yum.repos.d" / "neuron.repo").read_text()
    )
    assert result.calls[0].startswith("rpm --import https://yum.repos.neuron.amazonaws.com/")


@pytest.mark.parametrize("offered", [["2.33.100.0_9f8e7d6c5-1"], ["2.33.10.01-1"], ["2.33.1.0-1"], []])
def test_another_version_is_never_installed_and_the_build_stops_in_one_line(tmp_path: Path, offered: list[str]) -> None:
    result = run(tmp_path, "dnf", {"aws-neuronx-runtime-lib": offered}, "aws-neuronx-runtime-lib=2.33.10.0")

    assert result.returncode == 1
    assert result.installs == []
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("neuron-install: no aws-neuronx-runtime-lib 2.33.10.0 in the Neuron dnf repository")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["zypper", "a=1.0"], "unknown package manager 'zypper'"),
        (["dnf", "aws-neuronx-tools"], "expected NAME=VERSION"),
        (["dnf", "aws-neuronx-tools=2.31.*"], "expected a version such as 2.33.10.0"),
        (["dnf"], "usage:"),
    ],
)
def test_bad_arguments_are_one_line(tmp_path: Path, arguments: list[str], message: str) -> None:
    manager, *pins = arguments
    result = run(tmp_path, manager, {}, *pins)

    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert message in line
    assert result.installs == []


versions = st.lists(st.integers(0, 120), min_size=2, max_size=5).map(lambda parts: ".".join(map(str, parts)))
suffixes = st.sampled_from(["", "_3dcef56f0", "_5c7949a6a"])


@settings(max_examples=40, deadline=None)
@given(wanted=versions, others=st.lists(st.tuples(versions, suffixes), max_size=4), suffix=suffixes)
def test_only_the_pinned_version_is_ever_chosen(
    tmp_path_factory: pytest.TempPathFactory, wanted: str, others: list[tuple[str, str]], suffix: str
) -> None:
    tmp_path = tmp_path_factory.mktemp("repo")
    offered = [f"{version}{build}-1" for version, build in others if version != wanted]
    offered.append(f"{wanted}{suffix}-1")

    result = run(tmp_path, "dnf", {"aws-neuronx-tools": offered}, f"aws-neuronx-tools={wanted}")

    assert result.returncode == 0, result.stderr
    assert result.installs == [f"dnf install -y aws-neuronx-tools-{wanted}{suffix}-1"]
