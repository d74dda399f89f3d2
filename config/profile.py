"""The runtime layout, decided once: which facts follow from the Neuron runtime, the Inferentia family
and the capacity mode.

Constructs read these facts (the base image, the sidecar, the host-port policy, ...); none of them
tests the runtime or the family again.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from config.engines import TF_SERVING, TRITON, EngineFacts, ServingEngine
from config.hardware import NeuronFamily
from config.neuron_releases import LIBNRT_RELEASES, RTD, TRITON_INF2, NeuronReleaseSet
from contracts import containers

AL2023_BASE = "public.ecr.aws/amazonlinux/amazonlinux:2023"
AL2_BASE = "public.ecr.aws/amazonlinux/amazonlinux:2"
# "PyTorch 2.9 is not available on Amazon Linux 2023 ... Use Ubuntu 24.04" (aws-neuron-sdk
# setup/pytorch/manual.rst): the Triton image is Ubuntu; the host stays AL2023.
UBUNTU_BASE = "public.ecr.aws/docker/library/ubuntu:24.04"


class NeuronRuntime(Enum):
    """How the model server reaches the Neuron devices."""

    LIBNRT = "libnrt"
    """Today's runtime: a library inside the model server, devices mapped into its container."""
    RTD = "rtd"
    """The 2020 walk-through's layout: a ``neuron-rtd`` daemon sidecar behind a Unix socket."""


class CapacityMode(Enum):
    """Who runs the instances."""

    ASG = "asg"
    """This stack's Auto Scaling group, registered as an ECS capacity provider."""
    MANAGED_INSTANCES = "managedInstances"
    """ECS Managed Instances: AWS launches, patches and drains the instances."""


class Sidecar(Enum):
    """The task's second container; its value is the container's name (components/model_server/images.py
    maps each to its image's Dockerfile)."""

    NEURON_MONITOR = containers.NEURON_MONITOR
    NEURON_RTD = containers.NEURON_RTD


@dataclass(frozen=True, kw_only=True)
class RuntimeProfile:
    """Everything that differs between the runtime layouts, for one Inferentia family."""

    runtime: NeuronRuntime
    family: NeuronFamily
    capacity: CapacityMode
    engine: EngineFacts
    """The model server: TF Serving or Triton."""
    name: str
    """How errors name the layout, e.g. "the rtd layout"."""
    releases: NeuronReleaseSet
    base_image: str
    """The model server's base image."""
    sidecar: Sidecar
    neuron_metrics: bool
    """The sidecar publishes NeuronCore metrics: the service scales on them and the dashboard shows them."""
    shared_pid_namespace: bool
    """The containers share the task's PID namespace (neuron-monitor watches the server's runtime)."""
    needs_ami_id: bool
    """No published ECS AMI can run this layout: the user must name one (``amiId``)."""
    model_from_s3: bool
    """A task can copy its model from S3 at start (else the model is baked into the image)."""

    @property
    def managed(self) -> bool:
        return self.capacity is CapacityMode.MANAGED_INSTANCES

    @property
    def own_instances(self) -> bool:
        """The instances are this stack's Auto Scaling group (else AWS runs them: Managed Instances)."""
        return not self.managed

    @property
    def task_networking(self) -> bool:
        """Tasks get their own network interface (awsvpc) and security group; the load balancer targets IPs."""
        return self.managed

    @property
    def managed_neuron_devices(self) -> bool:
        """The server asks ECS for every Neuron device (``resourceRequirements`` NeuronDevice=ALL, Managed
        Instances only) instead of mapping ``/dev/neuronN`` itself."""
        return self.managed

    @property
    def one_task_per_instance(self) -> bool:
        """One task takes the whole instance: the rtd daemon owns every device, and a task that asks for
        every Neuron device has the instance to itself (ECS developer guide, "Amazon ECS task definitions
        for AWS Neuron machine learning workloads"). Else tasks share it, each on its own NeuronCores."""
        return self.runtime is NeuronRuntime.RTD or self.managed

    @property
    def static_host_ports(self) -> bool:
        """Tasks bind the model's own ports on the host (rtd, as the walk-through; awsvpc tasks on their own
        interface), else Docker picks dynamic host ports."""
        return self.runtime is NeuronRuntime.RTD or self.managed

    @property
    def text_front(self) -> bool:
        """The task carries the text front: every layout but rtd, which stays the 2020 walk-through's
        two-container task exactly (its Amazon Linux 2 server and neuron-rtd daemon, nothing added)."""
        return self.runtime is NeuronRuntime.LIBNRT

    @property
    def neuron_recovery(self) -> bool:
        """Neuron's node problem detector and recovery can run: it needs driver 2.15+ and a runtime from
        Neuron 2.18 or later (aws-neuron-sdk deploy/ecs/npd.rst), which runtime 1.x is not, and an
        instance this stack runs (Managed Instances are AWS's to repair)."""
        return self.runtime is NeuronRuntime.LIBNRT and self.own_instances

    @property
    def server_metrics(self) -> bool:
        """The sidecar also publishes the server's own request figures (Triton's queue and compute time)."""
        return self.neuron_metrics and self.engine.metrics_port is not None


def runtime_profile(
    runtime: NeuronRuntime,
    family: NeuronFamily,
    capacity: CapacityMode,
    engine: ServingEngine = ServingEngine.TFSERVING,
) -> RuntimeProfile:
    """The facts of ``runtime`` on ``family`` with ``capacity`` and ``engine``. The caller has checked that
    they go together (ENGINE_FAMILIES, RUNTIME_FAMILIES, CAPACITY_FAMILIES)."""
    if runtime is NeuronRuntime.RTD:
        return RuntimeProfile(
            runtime=runtime,
            family=family,
            capacity=capacity,
            engine=TF_SERVING,
            name="the rtd layout",
            releases=RTD,
            base_image=AL2_BASE,
            sidecar=Sidecar.NEURON_RTD,
            neuron_metrics=False,
            shared_pid_namespace=False,
            needs_ami_id=True,
            model_from_s3=False,
        )
    managed = capacity is CapacityMode.MANAGED_INSTANCES
    triton = engine is ServingEngine.TRITON
    return RuntimeProfile(
        runtime=runtime,
        family=family,
        capacity=capacity,
        engine=TRITON if triton else TF_SERVING,
        name="ECS Managed Instances" if managed else "the libnrt layout",
        releases=TRITON_INF2 if triton else LIBNRT_RELEASES[family],
        base_image=UBUNTU_BASE if triton else AL2023_BASE,
        sidecar=Sidecar.NEURON_MONITOR,
        neuron_metrics=True,
        shared_pid_namespace=True,
        needs_ami_id=False,
        model_from_s3=True,
    )


# The families each model server runs on: torch-neuronx supports Inf2 and Trn, not Inf1 (whose PyTorch
# path, torch-neuron, left support with Neuron 2.x's Inf1 line); TF Serving runs on both.
ENGINE_FAMILIES = {
    ServingEngine.TFSERVING: frozenset(NeuronFamily),
    ServingEngine.TRITON: frozenset({NeuronFamily.INF2}),
}
# The default where ``server`` is left empty: the walk-through's TF Serving on Inf1, the maintained
# stack on Inf2.
DEFAULT_ENGINE = {NeuronFamily.INF1: ServingEngine.TFSERVING, NeuronFamily.INF2: ServingEngine.TRITON}

# The families each runtime runs on: runtime 1.x never supported Inferentia 2.
RUNTIME_FAMILIES = {NeuronRuntime.LIBNRT: frozenset(NeuronFamily), NeuronRuntime.RTD: frozenset({NeuronFamily.INF1})}
# ECS Managed Instances offer Trn1, Trn2 and Inf2 for Neuron work; "Inf1 instances are only supported on
# the EC2 launch type" (ECS developer guide, "Amazon ECS task definitions for AWS Neuron machine learning
# workloads"). Of this project's sizes, every Inf2 size.
CAPACITY_FAMILIES = {
    CapacityMode.ASG: frozenset(NeuronFamily),
    CapacityMode.MANAGED_INSTANCES: frozenset({NeuronFamily.INF2}),
}
