"""The Neuron release each image comes from, and the exact version of every Neuron package it installs.

This is the one place a Neuron package version is written. The images take every version from
here as a build argument (``components/model_image.py``); ``tests/test_neuron_releases.py`` fails
on a pin in a Dockerfile that is not in this table and on a version that is not in the manifest.

Source of every 2.x version: Neuron's release manifest, aws-neuron/aws-neuron-sdk
``src/helperscripts/n2-manifest.json`` (manifest 2.32.0, commit a3247f5b, 2026-08-17); the
releases used here are copied to ``tests/data/n2-manifest-excerpt.json`` and checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.hardware import NeuronFamily


@dataclass(frozen=True)
class NeuronPackage:
    """One package pinned to one version, as ``dnf install <name>-<version>`` or ``pip install <name>==<version>``."""

    name: str
    version: str


@dataclass(frozen=True, kw_only=True)
class NeuronReleaseSet:
    """What one runtime layout and Inferentia family installs, and from which Neuron releases.

    ``framework_release`` is where the model server (and the compiler a model is built with) comes
    from; ``runtime_release`` is where the runtime library and tools come from. They differ only
    when the host's driver needs a newer runtime than the framework's own release ships, as Neuron
    itself pairs them (its 2.32 PyTorch install keeps torch-neuronx from 2.31 with the 2.32 runtime).
    """

    framework_release: str
    runtime_release: str
    server: tuple[NeuronPackage, ...]
    """The model-server image's Neuron packages, in install order."""
    monitor: tuple[NeuronPackage, ...]
    """The sidecar image's Neuron packages (neuron-monitor's tools, or the neuron-rtd daemon)."""
    compiler: tuple[NeuronPackage, ...]
    """The pip packages a model for this set is compiled with (Neuron's pip repository only)."""
    host_driver: str
    """The ``aws-neuronx-dkms`` line the host AMI gives, which this set must run on."""
    why: str

    @property
    def packages(self) -> tuple[NeuronPackage, ...]:
        """Every package any image of this set installs."""
        return (*self.server, *self.monitor)


# The last TF Serving for Neuron: 2.10.1.2.12.2.0 ships in Neuron 2.20.2 through 2.28.1 for inf1,
# trn1 and inf2; no release after 2.28.1 has one (n2-manifest.json).
LAST_TF_SERVING_RELEASE = "2.28.1"
TF_SERVING = NeuronPackage("tensorflow-model-server-neuronx", "2.10.1.2.12.2.0")

# "Neuron Driver 2.29 requires Neuron Runtime Library 2.33 or later ... nrt_init() [fails]"
# (aws-neuron-sdk release-notes/components/runtime.rst, Neuron 2.31.0 section). The AL2023 Neuron
# ECS AMI installs the newest aws-neuronx-dkms when it is built (amazon-ecs-ami
# scripts/enable-ecs-agent-inferentia-support.sh): 2.30.2 since Neuron 2.32.0.
INF2_MIN_RUNTIME_LIB = (2, 33)

INF1 = NeuronReleaseSet(
    framework_release=LAST_TF_SERVING_RELEASE,
    runtime_release=LAST_TF_SERVING_RELEASE,
    # AWS's own Inf1 TF Serving image installs only the server and the tools: the Inf1 runtime is
    # inside the server package (aws/deep-learning-containers, tensorflow/inference/docker/2.10/py3/
    # sdk2.17.0/Dockerfile.neuron).
    server=(TF_SERVING,),
    monitor=(NeuronPackage("aws-neuronx-tools", "2.28.23.0"),),
    compiler=(
        NeuronPackage("tensorflow-neuron", "2.10.1.2.12.2.0"),
        NeuronPackage("neuron-cc", "1.24.0.0"),
    ),
    # amazon-ecs-ami scripts/al2023/neuron/neuron-inf1-downgrade.sh installs the cached 2.21.* RPMs
    # on Inf1 hosts at boot and versionlocks them.
    host_driver="2.21",
    why="TensorFlow-Neuron for Inf1 ended with Neuron 2.31; 2.28.1 holds the last TF Serving build, "
    "whose Inf1 runtime (inside the server package) runs on the AMI's 2.21 driver",
)

INF2 = NeuronReleaseSet(
    framework_release=LAST_TF_SERVING_RELEASE,
    runtime_release="2.31.1",
    # AWS's own Inf2 TF Serving image installs the server, aws-neuronx-runtime-lib and
    # aws-neuronx-collectives, and sets LD_LIBRARY_PATH=/opt/aws/neuron/lib (aws/deep-learning-
    # containers, tensorflow/inference/docker/2.10/py3/sdk2.17.0/Dockerfile.neuronx).
    server=(
        TF_SERVING,
        NeuronPackage("aws-neuronx-runtime-lib", "2.33.10.0"),
        NeuronPackage("aws-neuronx-collectives", "2.33.10.0"),
    ),
    monitor=(NeuronPackage("aws-neuronx-tools", "2.31.15.0"),),
    compiler=(
        NeuronPackage("tensorflow-neuronx", "2.10.1.2.1.0"),
        NeuronPackage("neuronx-cc", "2.23.6484.0"),
    ),
    host_driver="2.29 or later (the newest when the AMI was built)",
    why="TensorFlow on Inf2 is out of support since Neuron 2.29, so TF Serving comes from 2.28.1; its "
    "own runtime (2.30) fails nrt_init() on the AMI's driver 2.29+, which needs runtime 2.33 or later: "
    "the runtime, collectives and tools come from 2.31.1 (runtime 2.33.10), the release the Triton "
    "stack for Inf2 also uses",
)

# The maintained stack for Inf2: torch-neuronx behind Triton. torch-neuronx 2.9.0.2.15.32035 (PyTorch
# 2.9) last shipped in Neuron 2.31.x, with runtime 2.33.10.0 (n2-manifest.json); AWS's last PyTorch
# inference image for Inf2 pins exactly this set on Ubuntu 24.04 (aws-neuron/deep-learning-containers
# pytorch/inference/2.9.0/Dockerfile.neuronx, sdk2.31.1). The name torch-neuronx also carries a
# newer native build for Trn2/Trn3 only, so the version is pinned.
TORCH_NEURONX = NeuronPackage("torch-neuronx", "2.9.0.2.15.32035")
TRITON_INF2 = NeuronReleaseSet(
    framework_release="2.31.1",
    runtime_release="2.31.1",
    server=(
        TORCH_NEURONX,
        NeuronPackage("aws-neuronx-runtime-lib", "2.33.10.0"),
        NeuronPackage("aws-neuronx-collectives", "2.33.10.0"),
    ),
    monitor=(NeuronPackage("aws-neuronx-tools", "2.31.15.0"),),
    compiler=(TORCH_NEURONX, NeuronPackage("neuronx-cc", "2.26.6360.0")),
    host_driver="2.29 or later (the newest when the AMI was built)",
    why="TensorFlow on Inf2 is out of support since Neuron 2.29; torch-neuronx 2.9 (in maintenance, last "
    "shipped in 2.31.x) with runtime 2.33.10 is the supported PyTorch path, served by Triton's Python backend",
)

# The 2020 walk-through's runtime 1.x pair (Neuron 1.x, before the 2.x manifest): the runtime of May
# 2020, 1.0.6905.0 (release-notes/archive/neuron-cc/neuron-cc.rst), and TF Serving 1.15.0.1.0.1572.0
# of 5/11/2020 (release-notes/archive/tensorflow/tensorflow-modelserver-neuron/
# tensorflow-modelserver-neuron.rst). Neuron's own neuron-rtd Dockerfile also installs
# aws-neuron-tools (deploy/docker-examples/v1/inference/Dockerfile.neuron-rtd); the daemon does
# not need them and no release note here pins a matching version, so the sidecar leaves them out.
RTD = NeuronReleaseSet(
    framework_release="1.x (May 2020)",
    runtime_release="1.x (May 2020)",
    server=(NeuronPackage("tensorflow-model-server-neuron", "1.15.0.1.0.1572.0"),),
    monitor=(NeuronPackage("aws-neuron-runtime", "1.0.6905.0"),),
    compiler=(),
    host_driver="1.x (aws-neuron-dkms), from the AMI named by amiId",
    why="the walk-through's neuron-rtd layout; runtime 1.x is unsupported since Neuron 2.3 "
    "(about-neuron/announcements/neuron2.x/neuron-rtd-eol.rst)",
)

LIBNRT_RELEASES: dict[NeuronFamily, NeuronReleaseSet] = {NeuronFamily.INF1: INF1, NeuronFamily.INF2: INF2}
