"""The Neuron release each image comes from, and the exact version of every Neuron package it installs.

This is the one place a Neuron package version is written. The images take every version from
here as a build argument (``components/model_image.py``) and install OS packages through
``components/neuron_packages/neuron-install.sh``, which matches each version exactly, with or without the
build suffix Neuron's packages carry; ``tests/test_neuron_releases.py`` fails on a version that is not
in the manifest and on an image that installs anything else. Each set also names the range of
host drivers its runtime runs on, which the instances check before they join the cluster.

Source of every 2.x version: Neuron's release manifest, aws-neuron/aws-neuron-sdk
``src/helperscripts/n2-manifest.json`` (manifest 2.32.0, commit a3247f5b, 2026-08-17); the
releases used here are copied to ``tests/data/n2-manifest-excerpt.json`` and checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass

from config.hardware import NeuronFamily


@dataclass(frozen=True)
class NeuronPackage:
    """One package pinned to one version: an OS package from Neuron's yum or apt repository (installed by
    ``neuron-install.sh``), or a wheel from Neuron's pip repository (``pip install <name>==<version>``)."""

    name: str
    version: str
    pip: bool = False

    @property
    def pin(self) -> str:
        """``name=version`` for neuron-install.sh, ``name==version`` for pip."""
        return f"{self.name}=={self.version}" if self.pip else f"{self.name}={self.version}"


def version_key(version: str) -> tuple[int, ...]:
    """A dotted version as numbers, for comparison: "2.30.2.0" -> (2, 30, 2, 0)."""
    return tuple(int(part) for part in version.split("."))


@dataclass(frozen=True, kw_only=True)
class DriverRange:
    """The host ``aws-neuronx-dkms`` driver versions a set's runtime runs on: from ``lowest`` up to, not
    including, ``below`` (compared as dotted versions, so 2.30.2.0 lies in [2.27, 2.31))."""

    lowest: str
    below: str
    why: str

    def admits(self, version: str) -> bool:
        return version_key(self.lowest) <= version_key(version) < version_key(self.below)


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
    host_driver: DriverRange
    """The host drivers this set's runtime runs on; an instance whose driver lies outside does not join."""
    why: str

    @property
    def packages(self) -> tuple[NeuronPackage, ...]:
        """Every package any image of this set installs."""
        return (*self.server, *self.monitor)


def os_pins(packages: tuple[NeuronPackage, ...]) -> str:
    """The OS packages as neuron-install.sh takes them: ``name=version`` words, in install order."""
    return " ".join(package.pin for package in packages if not package.pip)


def pip_pins(packages: tuple[NeuronPackage, ...]) -> str:
    """The wheels as pip takes them: ``name==version`` words."""
    return " ".join(package.pin for package in packages if package.pip)


# The last TF Serving for Neuron: 2.10.1.2.12.2.0 first shipped in Neuron 2.20.1 and ships through 2.28.1 for inf1,
# trn1 and inf2; no release after 2.28.1 has one (n2-manifest.json).
LAST_TF_SERVING_RELEASE = "2.28.1"
TF_SERVING = NeuronPackage("tensorflow-model-server-neuronx", "2.10.1.2.12.2.0")

# "Neuron Driver 2.29 requires Neuron Runtime Library 2.33 or later ... nrt_init() [fails]"
# (aws-neuron-sdk release-notes/components/runtime.rst, Neuron 2.31.0 section). The AL2023 Neuron
# ECS AMI installs the newest aws-neuronx-dkms when it is built (amazon-ecs-ami
# scripts/enable-ecs-agent-inferentia-support.sh): 2.30.2 since Neuron 2.32.0.
INF2_MIN_RUNTIME_LIB = (2, 33)

# The host drivers each runtime runs on. The instances read theirs from /sys/module/neuron/version
# before they join (components/host/check-neuron-host.sh) and refuse to join outside the range, so a
# newer AMI cannot leave tasks failing nrt_init() on every start.
INF1_DRIVERS = DriverRange(
    lowest="2.21",
    below="2.25",
    # The AMI pins Inf1 hosts to the cached aws-neuronx-dkms 2.21 at boot and versionlocks it (amazon-ecs-ami
    # scripts/al2023/neuron/neuron-inf1-downgrade.sh). Neuron corrected Inf1's last driver to 2.24, the only one
    # it still patches (about-neuron/announcements/neuron2.x/announce-correction-neuron-driver-support-inf1.rst,
    # 2026-03-12; "Neuron driver versions above 2.24 only support non-Inf1 instances"). The hosts stay on the
    # AMI's 2.21: replacing a versionlocked DKMS driver at every boot is what left hosts without
    # /dev/neuron* before; an AMI that moves Inf1 to 2.24 is admitted too.
    why="the AMI's Inf1 driver 2.21 up to 2.24, the last driver with Inf1 support",
)
RUNTIME_2_33_DRIVERS = DriverRange(
    lowest="2.27",
    below="2.31",
    # "Neuron Runtime Library 2.32 is not backward-compatible with Neuron Driver 2.26 or earlier" (aws-neuron-sdk
    # release-notes/components/runtime.rst, Neuron 2.30.0; taken as 2.33's floor too, as no fix is announced);
    # "Neuron Driver 2.29 requires Neuron Runtime Library 2.33 or later" (Neuron 2.31.0). The newest driver
    # checked is 2.30.2, on AMI 20260820 (Neuron 2.32.0, amazon-ecs-ami enable-ecs-agent-inferentia-support.sh
    # installs the newest driver when the AMI is built). A later driver may demand a newer runtime, as 2.29 did.
    why="runtime 2.33 runs on drivers 2.27 to 2.30, the newest checked",
)
RTD_DRIVERS = DriverRange(
    lowest="1.0",
    below="2.3",
    # From Neuron 2.3 the driver no longer supports runtime 1.x (about-neuron/announcements/neuron2.x/
    # neuron-rtd-eol.rst); the walk-through's hosts ran aws-neuron-dkms 1.x.
    why="neuron-rtd (runtime 1.x) needs a driver from before Neuron 2.3",
)

INF1 = NeuronReleaseSet(
    framework_release=LAST_TF_SERVING_RELEASE,
    runtime_release=LAST_TF_SERVING_RELEASE,
    # AWS's own Inf1 TF Serving image installs only the server and the tools: the Inf1 runtime is
    # inside the server package (aws/deep-learning-containers, tensorflow/inference/docker/2.10/py3/
    # sdk2.17.0/Dockerfile.neuron).
    server=(TF_SERVING,),
    monitor=(NeuronPackage("aws-neuronx-tools", "2.28.23.0"),),
    compiler=(
        NeuronPackage("tensorflow-neuron", "2.10.1.2.12.2.0", pip=True),
        NeuronPackage("neuron-cc", "1.24.0.0", pip=True),
    ),
    host_driver=INF1_DRIVERS,
    why="TensorFlow for Inf1 ended from Neuron 2.29.0 (2026-04-09): 2.28.1 holds the last tensorflow-neuron and "
    "the last TF Serving build, whose Inf1 runtime (inside the server package) runs on the AMI's 2.21 driver",
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
        NeuronPackage("tensorflow-neuronx", "2.10.1.2.1.0", pip=True),
        NeuronPackage("neuronx-cc", "2.23.6484.0", pip=True),
    ),
    host_driver=RUNTIME_2_33_DRIVERS,
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
TORCH_NEURONX = NeuronPackage("torch-neuronx", "2.9.0.2.15.32035", pip=True)
TRITON_INF2 = NeuronReleaseSet(
    framework_release="2.31.1",
    runtime_release="2.31.1",
    server=(
        TORCH_NEURONX,
        NeuronPackage("aws-neuronx-runtime-lib", "2.33.10.0"),
        NeuronPackage("aws-neuronx-collectives", "2.33.10.0"),
    ),
    monitor=(NeuronPackage("aws-neuronx-tools", "2.31.15.0"),),
    compiler=(TORCH_NEURONX, NeuronPackage("neuronx-cc", "2.26.6360.0", pip=True)),
    host_driver=RUNTIME_2_33_DRIVERS,
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
    host_driver=RTD_DRIVERS,
    why="the walk-through's neuron-rtd layout; runtime 1.x is unsupported since Neuron 2.3 "
    "(about-neuron/announcements/neuron2.x/neuron-rtd-eol.rst)",
)

LIBNRT_RELEASES: dict[NeuronFamily, NeuronReleaseSet] = {NeuronFamily.INF1: INF1, NeuronFamily.INF2: INF2}


# The ECS-optimized AL2023 Neuron AMI the instances boot unless ``amiRelease`` says otherwise: a named release,
# not SSM's moving ``recommended``, so a new AMI's driver cannot outrun the runtimes above. Its drivers: Inf1
# 2.21 (neuron-inf1-downgrade.sh), Inf2 2.30.2 (the newest when it was built, Neuron 2.32.0). Names as
# aws/amazon-ecs-ami's al2023neu.pkr.hcl builds them ("<prefix>-neuron-hvm-2023.0.<date><kernel>-x86_64").
DEFAULT_AMI_RELEASE = "al2023-ami-ecs-neuron-hvm-2023.0.20260820-kernel-6.1-x86_64"
