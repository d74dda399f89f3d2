"""``FAMILY=inf1|inf2``: compile inside the pinned container, built from the release table.

Neuron's compilers come only from Neuron's own pip repository and need x86; Docker gives both on
any machine with an engine. The project is mounted read-only and the output folder read-write;
the container has no network (a Hub checkpoint is downloaded here first, into the Hugging Face
cache, and mounted).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from modelbuild.neuron import NeuronToolchain, toolchain
from modelbuild.options import ROOT, BuildOptions, Family, ModelBuildError

COMPILER_CONTEXT = Path(__file__).resolve().parent / "compiler"
IMAGE_REPOSITORY = "bert-inferentia-model-compiler"
PLATFORM = "linux/amd64"
SOURCE_MOUNT, OUT_MOUNT, CHECKPOINT_MOUNT = "/src", "/out", "/checkpoint"

Run = Callable[[Sequence[str]], int]


def image_tag(chain: NeuronToolchain) -> str:
    versions = "-".join(package.version for package in chain.packages)
    return f"{IMAGE_REPOSITORY}:{chain.family.value}-{chain.server.value}-{chain.release}-{versions}"


def build_command(chain: NeuronToolchain) -> list[str]:
    """``docker build`` of the compile image: every Neuron version a build argument from the table."""
    framework, compiler = chain.packages
    arguments = {
        "FRAMEWORK_PACKAGE": framework.name,
        "FRAMEWORK_VERSION": framework.version,
        "COMPILER_PACKAGE": compiler.name,
        "COMPILER_VERSION": compiler.version,
    }
    return [
        "docker",
        "build",
        "--platform",
        PLATFORM,
        "--tag",
        image_tag(chain),
        *(part for name, value in arguments.items() for part in ("--build-arg", f"{name}={value}")),
        "--file",
        str(COMPILER_CONTEXT / chain.dockerfile),
        str(COMPILER_CONTEXT),
    ]


def run_command(options: BuildOptions, chain: NeuronToolchain, checkpoint: Path | None) -> list[str]:
    """``docker run`` of ``python -m modelbuild`` inside the image, on mounted folders only."""
    mounts = [f"{ROOT}:{SOURCE_MOUNT}:ro", f"{options.out}:{OUT_MOUNT}"]
    arguments = [
        "--family",
        options.family.value,
        "--server",
        options.server.value,
        "--out",
        OUT_MOUNT,
        "--version",
        str(options.version),
        "--batch",
        str(options.batch),
        "--seq",
        str(options.sequence_length),
    ]
    if checkpoint is None:
        arguments += ["--tiny", "1"]
    else:
        mounts.append(f"{checkpoint}:{CHECKPOINT_MOUNT}:ro")
        arguments += ["--checkpoint", CHECKPOINT_MOUNT]
    user = [] if not hasattr(os, "getuid") else ["--user", f"{os.getuid()}:{os.getgid()}"]
    return [
        "docker",
        "run",
        "--rm",
        "--platform",
        PLATFORM,
        "--network",
        "none",
        *user,
        *(part for mount in mounts for part in ("--volume", mount)),
        "--env",
        f"PYTHONPATH={SOURCE_MOUNT}",
        "--env",
        "HF_HUB_OFFLINE=1",
        "--workdir",
        SOURCE_MOUNT,
        image_tag(chain),
        "python",
        "-m",
        "modelbuild",
        "--in-container",
        *arguments,
    ]


def _run(command: Sequence[str]) -> int:
    return subprocess.run(command, check=False).returncode


def require_docker(options: BuildOptions, run_quietly: Run) -> None:
    if shutil.which("docker") is None or run_quietly(["docker", "info"]) != 0:
        raise ModelBuildError(
            f"Invalid make model variable FAMILY={options.family.value}: Neuron compiles in a Docker container "
            f"({PLATFORM}) and no Docker engine answers here (docker info failed); start Docker, or use "
            "FAMILY=cpu for a model without Neuron"
        )


def resolve_checkpoint(options: BuildOptions) -> Path | None:
    """The checkpoint as a folder to mount: a local one as given, a Hub id downloaded into the cache."""
    if options.checkpoint is None:
        return None
    if options.local_checkpoint is not None:
        return options.local_checkpoint
    from huggingface_hub import snapshot_download  # noqa: PLC0415  (only a Hub checkpoint needs it)

    return Path(snapshot_download(options.checkpoint))


def compile_in_container(
    options: BuildOptions, *, run: Run = _run, run_quietly: Run | None = None, checkpoint: Path | None = None
) -> Path:
    """Builds (or reuses) the compile image, then runs the build inside it."""
    if options.family is Family.CPU:
        raise ValueError("cpu builds here (modelbuild.export)")
    quiet = run_quietly or (lambda command: subprocess.run(command, capture_output=True, check=False).returncode)
    require_docker(options, quiet)
    chain = toolchain(options.family, options.server)
    mounted = checkpoint if checkpoint is not None else resolve_checkpoint(options)
    options.out.mkdir(parents=True, exist_ok=True)
    if run(build_command(chain)) != 0:
        raise ModelBuildError(f"The compile image {image_tag(chain)} did not build: see docker's output above")
    if run(run_command(options, chain, mounted)) != 0:
        raise ModelBuildError("The Neuron compile failed inside its container: see its output above")
    return options.version_dir
