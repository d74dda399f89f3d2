"""The deployment's settings: read once from CDK context, validated, frozen.

Every key is set in ``cdk.json``, which is the one place defaults are written, and can be
overridden with ``cdk synth -c key=value``. Values from ``cdk.json`` arrive typed (``true``, ``2``);
values from ``-c`` always arrive as strings, so each parser accepts both. A bad value raises
:class:`SettingsError`, whose one-line message names the key, the value and what is allowed.

The work is split by job: ``config/parsing.py`` reads one value, ``config/placement.py`` places
the models on NeuronCores, ``config/batching.py`` renders TF Serving's batching file,
``config/profile.py`` decides the runtime layout; this module is the schema that joins them.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from config.batching import BatchingSettings, parse_batching
from config.endpoint import EndpointSettings, parse_endpoint
from config.engines import ServingEngine
from config.fleet import Zones, check_subnets_fit, parse_fallback_sizes, parse_zones
from config.hardware import INSTANCE_SIZES, InstanceSize
from config.log_retention import LOG_RETENTION_DAYS
from config.neuron_releases import DEFAULT_AMI_RELEASE, NeuronReleaseSet
from config.parsing import SettingsError, boolean, choice, fail, integer, ipv4_cidr, text
from config.placement import ModelSettings, parse_models
from config.profile import (
    CAPACITY_FAMILIES,
    DEFAULT_ENGINE,
    ENGINE_FAMILIES,
    RUNTIME_FAMILIES,
    CapacityMode,
    NeuronRuntime,
    RuntimeProfile,
    runtime_profile,
)
from config.rollout import Rollout, deployment_percents
from config.triton_memory import largest_fitting_batch, shared_memory_plan

__all__ = [
    "SETTING_KEYS",
    "DeploymentSettings",
    "SettingsError",
    "cdk_context",
    "check_setting_names",
    "defaults",
    "load_settings",
]

ContextGetter = Callable[[str], object]
CDK_JSON = Path(__file__).resolve().parent.parent / "cdk.json"

SETTING_KEYS = (
    *("stackName", "instanceType", "spot", "minInstances", "maxInstances", "desiredCount", "allowedCidr"),
    *("keyName", "neuronRuntime", "modelName", "grpcPort", "restPort", "vpcCidr", "natGateways"),
    *("rootVolumeGiB", "logRetentionDays", "coresPerTask", "publicEndpoint", "minTasks", "maxTasks"),
    *("batching", "modelS3Uri", "models", "amiId", "neuronRecovery", "availabilityZones"),
    *("fallbackInstanceTypes", "onDemandBase", "capacity", "server", "amiRelease"),
    *("textPort", "certificateArn", "tlsTensorPorts", "apiKeySecret", "maxClientBatchSize"),
)


def cdk_context(path: Path | None = None) -> dict[str, object]:
    """cdk.json's context, or one line saying what is wrong with the file."""
    path = path or CDK_JSON
    try:
        context = json.loads(path.read_text())["context"]
    except json.JSONDecodeError as error:
        raise SettingsError(
            f"{path.name} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    except (OSError, KeyError, TypeError) as error:
        raise SettingsError(f"{path.name} has no context object ({type(error).__name__}: {error})") from None
    if not isinstance(context, dict):
        raise SettingsError(f"{path.name}'s context is not an object")
    return context


@cache
def defaults() -> Mapping[str, object]:
    """The defaults are cdk.json's own values: written once, there (read when first needed)."""
    return {key: value for key, value in cdk_context().items() if key in SETTING_KEYS}


MAX_INSTANCES = 100
MAX_TASKS = 100
_KEY_NAME = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?")
_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
# EC2 image IDs: "ami-" and 8 hex digits (older images) or 17 (since 2016).
_AMI_ID = re.compile(r"ami-(?:[0-9a-f]{8}|[0-9a-f]{17})")
# ECS's AL2023 Neuron AMI names (aws/amazon-ecs-ami al2023neu.pkr.hcl), or SSM's moving "recommended".
_AMI_RELEASE = re.compile(r"al2023-ami-ecs-neuron-hvm-2023\.0\.[0-9]{8}(?:-kernel-[0-9.]+)?-x86_64|recommended")


@dataclass(frozen=True, kw_only=True)
class DeploymentSettings:
    """Everything the app needs to know, checked before any construct is built."""

    stack_name: str
    instance_size: InstanceSize
    profile: RuntimeProfile
    spot: bool
    min_instances: int
    max_instances: int
    desired_count: int
    allowed_cidr: str
    key_name: str | None
    vpc_cidr: str
    nat_gateways: int
    root_volume_gib: int
    log_retention_days: int
    public_endpoint: bool
    min_tasks: int
    max_tasks: int
    batching: BatchingSettings | None
    models: tuple[ModelSettings, ...]
    ami_id: str | None
    """An EC2 image to boot instead of the SSM-published ECS Neuron AMI (required by ``rtd``)."""
    ami_release: str
    """The ECS Neuron AMI release the instances boot (unless ``ami_id``): an AMI name, or ``recommended``."""
    neuron_recovery: bool | None
    """Neuron's problem detector runs on every instance and replaces a faulty one (True), only reports
    (False), or is left out because the layout cannot run it (None)."""
    zones: Zones
    fallback_sizes: tuple[InstanceSize, ...]
    """More sizes the group may launch when ``instance_size`` has no capacity, with its task layout."""
    on_demand_base: int
    """Instances kept on-demand beneath the spot ones."""
    endpoint: EndpointSettings
    """TLS on the load balancer's listeners, and the text API's key and batch limit."""

    @property
    def instance_sizes(self) -> tuple[InstanceSize, ...]:
        """Every size the group may launch, the preferred one first."""
        return (self.instance_size, *self.fallback_sizes)

    @property
    def releases(self) -> NeuronReleaseSet:
        """The Neuron packages every image of this layout and family installs."""
        return self.profile.releases

    @property
    def parked(self) -> bool:
        """``desiredCount`` 0: every service holds no task, and the instances scale down to ``minInstances``."""
        return self.desired_count == 0

    @property
    def task_slots(self) -> int | None:
        """Tasks of one model the fleet can hold at most, or None where AWS sizes the fleet (Managed Instances)."""
        if self.profile.capacity is CapacityMode.MANAGED_INSTANCES:
            return None
        return self.max_instances * self.tasks_per_instance

    @property
    def rollout(self) -> Rollout:
        """Each model's placement and deployment: several models deploy in place and bin-pack, so every
        instance keeps one task of each; one model starts each replacement beside its predecessor."""
        several_models = len(self.models) > 1
        minimum, maximum = deployment_percents(
            max_tasks=self.max_tasks, task_slots=self.task_slots, min_tasks=self.min_tasks, in_place=several_models
        )
        return Rollout(
            instance_types=tuple(size.name for size in self.instance_sizes),
            one_per_instance=self.profile.one_task_per_instance or self.tasks_per_instance == 1,
            min_healthy_percent=minimum,
            max_percent=maximum,
            binpack=several_models,
        )

    @property
    def tasks_per_instance(self) -> int:
        """Tasks of each model that share one instance, each on its own NeuronCores."""
        return self.models[0].tasks_per_instance


@dataclass(frozen=True)
class _Counts:
    min_instances: int
    max_instances: int
    desired_count: int
    min_tasks: int
    max_tasks: int


def _counts(raw: ContextGetter, size: InstanceSize, models: tuple[ModelSettings, ...], *, bounded: bool) -> _Counts:
    """Instance and task counts, checked against what the instances can hold (when this stack bounds them)."""
    tasks_per_instance = models[0].tasks_per_instance
    held = f"{models[0].cores_per_task} of the {size.neuron_cores}" if len(models) == 1 else "a share of the"
    min_instances = integer("minInstances", raw("minInstances"), low=0, high=MAX_INSTANCES)
    max_instances = integer("maxInstances", raw("maxInstances"), low=1, high=MAX_INSTANCES)
    if min_instances > max_instances:
        raise fail("minInstances", min_instances, f"must not exceed maxInstances ({max_instances})")
    desired_count = integer("desiredCount", raw("desiredCount"), low=0, high=MAX_TASKS)
    capacity = max_instances * tasks_per_instance if bounded else MAX_TASKS
    if desired_count > capacity:
        raise fail(
            "desiredCount",
            desired_count,
            f"must not exceed maxInstances x tasks per instance ({max_instances} x {tasks_per_instance}): "
            f"each task holds {held} NeuronCores of an {size.name}",
        )
    min_tasks = integer("minTasks", raw("minTasks"), low=0, high=MAX_TASKS)
    max_tasks = integer("maxTasks", raw("maxTasks"), low=1, high=MAX_TASKS)
    if max_tasks > capacity:
        raise fail("maxTasks", max_tasks, f"must not exceed maxInstances x tasks per instance ({capacity})")
    if not min_tasks <= desired_count <= max_tasks:
        raise fail("desiredCount", desired_count, f"must lie between minTasks ({min_tasks}) and maxTasks ({max_tasks})")
    if bounded and capacity < 2 and desired_count > 0:
        raise fail(
            "maxInstances",
            max_instances,
            f"leaves room for one task ({max_instances} x {tasks_per_instance}): a deployment must start the "
            "replacement before the old task stops, so maxInstances x tasks per instance must be at least 2",
        )
    if len(models) > 1 and desired_count > 0 and min_tasks < 2:
        raise fail(
            "minTasks",
            min_tasks,
            "must be at least 2 with several models: each instance holds one task of every model, so a deploy "
            "replaces a model's tasks in place, one at a time, and with one task that model would stop serving",
        )
    if min_tasks == 0 and desired_count > 0:
        raise fail(
            "minTasks",
            min_tasks,
            "0 only parks the service, with desiredCount=0: a service at 0 tasks publishes no CPU or Neuron "
            "metrics, so autoscaling could never bring it back",
        )
    return _Counts(min_instances, max_instances, desired_count, min_tasks, max_tasks)


def _profile(raw: ContextGetter, size: InstanceSize) -> RuntimeProfile:
    runtime = NeuronRuntime(choice("neuronRuntime", raw("neuronRuntime"), {r.value: r for r in NeuronRuntime}))
    if size.family not in RUNTIME_FAMILIES[runtime]:
        families = ", ".join(sorted(family.value for family in RUNTIME_FAMILIES[runtime]))
        raise fail(
            "neuronRuntime",
            runtime.value,
            f"'{runtime.value}' (Neuron runtime 1.x) runs only on {families} sizes, not {size.name}",
        )
    capacity = CapacityMode(choice("capacity", raw("capacity"), {mode.value: mode for mode in CapacityMode}))
    if capacity is CapacityMode.MANAGED_INSTANCES:
        if size.family not in CAPACITY_FAMILIES[capacity]:
            raise fail(
                "capacity",
                capacity.value,
                f"ECS Managed Instances offer Inf2 for Neuron, not {size.name}: Inf1 runs on the EC2 launch type only",
            )
        if runtime is not NeuronRuntime.LIBNRT:
            raise fail("capacity", capacity.value, "ECS Managed Instances run today's libnrt layout only, not rtd")
    return runtime_profile(runtime, size.family, capacity, _engine(raw("server"), size, runtime))


def _engine(value: object, size: InstanceSize, runtime: NeuronRuntime) -> ServingEngine:
    """``server``: empty takes the family's default (TF Serving on Inf1, Triton on Inf2; rtd is TF Serving).

    Triton with rtd needs no check of its own: rtd runs on Inf1 only, Triton on Inf2 only."""
    choices = {"": None, **{engine.value: engine for engine in ServingEngine}}
    written = choice("server", value, choices)
    if not written:
        return DEFAULT_ENGINE[size.family] if runtime is NeuronRuntime.LIBNRT else ServingEngine.TFSERVING
    engine = ServingEngine(written)
    if size.family not in ENGINE_FAMILIES[engine]:
        raise fail(
            "server",
            written,
            f"Triton serves a torch-neuronx model, which runs on Inf2, not {size.name}: leave server empty or "
            "set tfserving",
        )
    return engine


# Settings that describe this stack's own Auto Scaling group: with Managed Instances AWS chooses,
# patches and sizes the instances, so a value other than cdk.json's default would be silently ignored.
ASG_ONLY_SETTINGS = (
    *("amiId", "amiRelease", "keyName", "fallbackInstanceTypes", "onDemandBase", "minInstances", "maxInstances"),
)


def _refuse_asg_only_settings(raw: ContextGetter) -> None:
    for key in ASG_ONLY_SETTINGS:
        value, default = raw(key), defaults()[key]
        if value in ([], "[]", "") and default in ([], ""):
            continue
        if str(value).lower() != str(default).lower():
            raise fail(
                key,
                value,
                "means nothing with capacity=managedInstances (AWS launches, patches and sizes the instances): "
                f"leave it at its default ({default!r})",
            )


def _batching(value: object, profile: RuntimeProfile, models: tuple[ModelSettings, ...]) -> BatchingSettings | None:
    batching = parse_batching(value)
    if batching and profile.engine.instances_per_core and not profile.own_instances:
        instances = models[0].cores_per_task
        if shared_memory_plan(instances=instances, max_batch=batching.max_batch_size, size_settable=False) is None:
            raise fail(
                "batching.maxBatchSize",
                batching.max_batch_size,
                f"at most {largest_fitting_batch(instances)} under ECS Managed Instances here: its tasks keep "
                f"Docker's 64 MiB /dev/shm, which {instances} Triton model instances share, a full batch each",
            )
    if batching and profile.runtime is NeuronRuntime.RTD:
        # serve.sh checks the batch sizes with python3, which the walk-through's Amazon Linux 2 base
        # image does not have (its yum runs on Python 2); the server would stop at every start.
        raise fail("batching", value, f'not available in {profile.name}: leave it empty ("")')
    return batching


def _ami_id(value: object, profile: RuntimeProfile) -> str | None:
    written = text("amiId", value)
    if written and not _AMI_ID.fullmatch(written):
        raise fail("amiId", value, "expected an EC2 image ID: ami- and 8 or 17 lower-case hex digits, or empty")
    if not written and profile.needs_ami_id:
        raise fail(
            "neuronRuntime",
            profile.runtime.value,
            f"'{profile.runtime.value}' needs amiId: no current ECS AMI runs neuron-rtd (the AL2 inf AMI pins "
            "driver 2.17, which dropped runtime 1.x in Neuron 2.3); name an AMI with a runtime-1.x Neuron driver",
        )
    return written or None


def _ami_release(value: object, ami_id: str | None) -> str:
    """``amiRelease``: empty takes the release table's checked AMI; else an ECS Neuron AMI name or ``recommended``."""
    written = text("amiRelease", value)
    if written and ami_id:
        raise fail("amiRelease", value, "names an ECS AMI, but amiId already names the image: leave one of them empty")
    if written and not _AMI_RELEASE.fullmatch(written):
        raise fail(
            "amiRelease",
            value,
            "expected empty (the AMI the release table was checked on), recommended, or an ECS Neuron AMI name "
            "such as al2023-ami-ecs-neuron-hvm-2023.0.20260820-kernel-6.1-x86_64",
        )
    return written or DEFAULT_AMI_RELEASE


def cdks_own(key: str) -> bool:
    """Context keys the CDK itself reads or writes: feature flags (``@aws-cdk/...``), ``aws:``/``aws-cdk:`` and
    ``cdk...`` keys, ``acknowledged-issue-numbers``, and the lookups' cached results (``<kind>:account=...``)."""
    return key.startswith(("@", "aws:", "aws-cdk:", "cdk")) or ":" in key or key == "acknowledged-issue-numbers"


def check_setting_names(keys: Iterable[str]) -> None:
    """Refuses a context key that is neither a setting nor the CDK's own, naming the closest setting.

    A misspelt ``-c instancetype=inf2.xlarge`` would otherwise be ignored and the default deployed.
    """
    for key in sorted(keys):
        if key in SETTING_KEYS or cdks_own(key):
            continue
        by_case = [name for name in SETTING_KEYS if name.lower() == key.lower()]
        closest = by_case or difflib.get_close_matches(key, SETTING_KEYS, n=1, cutoff=0.6)
        hint = f"did you mean '{closest[0]}'? " if closest else ""
        raise SettingsError(f"Unknown setting '{key}': {hint}The settings are listed in docs/settings.md")


def load_settings(get: ContextGetter) -> DeploymentSettings:
    """Build the settings from a context getter such as ``app.node.try_get_context``.

    A key that is absent (``None``) takes its value from cdk.json (:func:`defaults`).
    """

    def raw(key: str) -> object:
        value = get(key)
        if value is None:
            value = defaults().get(key)
        if value is None:
            raise fail(key, None, "no value: cdk.json's context must name every setting (see docs/settings.md)")
        return value

    size = INSTANCE_SIZES[choice("instanceType", raw("instanceType"), INSTANCE_SIZES)]
    profile = _profile(raw, size)
    if profile.capacity is CapacityMode.MANAGED_INSTANCES:
        _refuse_asg_only_settings(raw)
    ami_id = _ami_id(raw("amiId"), profile)
    models = parse_models(raw, size, profile)
    counts = _counts(raw, size, models, bounded=profile.capacity is CapacityMode.ASG)

    vpc_cidr = ipv4_cidr("vpcCidr", raw("vpcCidr"), vpc=True)
    zones = parse_zones(raw("availabilityZones"))
    check_subnets_fit(zones, vpc_cidr)
    fallback_sizes = parse_fallback_sizes(
        raw("fallbackInstanceTypes"), size, tasks_per_instance=models[0].tasks_per_instance
    )
    on_demand_base = integer("onDemandBase", raw("onDemandBase"), low=0, high=MAX_INSTANCES)
    if on_demand_base > counts.max_instances:
        raise fail("onDemandBase", on_demand_base, f"must not exceed maxInstances ({counts.max_instances})")
    allowed_cidr_value = raw("allowedCidr")
    allowed_cidr = vpc_cidr if allowed_cidr_value == "" else ipv4_cidr("allowedCidr", allowed_cidr_value, vpc=False)
    if allowed_cidr == "0.0.0.0/0":
        raise fail("allowedCidr", allowed_cidr, "must not be the whole internet: TF Serving has no authentication")
    public_endpoint = boolean("publicEndpoint", raw("publicEndpoint"))
    if public_endpoint and allowed_cidr_value == "":
        raise fail(
            "publicEndpoint",
            True,
            "needs allowedCidr too (e.g. -c allowedCidr=<your address>/32): without it the internet-facing "
            "endpoint would admit only the VPC",
        )

    key_name = text("keyName", raw("keyName"))
    if key_name and not _KEY_NAME.fullmatch(key_name):
        raise fail(
            "keyName", key_name, "expected an EC2 key pair name: 1-255 printable ASCII characters, or empty for none"
        )

    log_retention_days = integer("logRetentionDays", raw("logRetentionDays"), low=1, high=LOG_RETENTION_DAYS[-1])
    if log_retention_days not in LOG_RETENTION_DAYS:
        raise fail("logRetentionDays", log_retention_days, "expected one of " + ", ".join(map(str, LOG_RETENTION_DAYS)))

    stack_name = text("stackName", raw("stackName"))
    if not _STACK_NAME.fullmatch(stack_name):
        raise fail("stackName", stack_name, "expected 1-128 letters, digits or '-', starting with a letter")

    return DeploymentSettings(
        stack_name=stack_name,
        instance_size=size,
        profile=profile,
        spot=boolean("spot", raw("spot")),
        min_instances=counts.min_instances,
        max_instances=counts.max_instances,
        desired_count=counts.desired_count,
        allowed_cidr=allowed_cidr,
        key_name=key_name or None,
        vpc_cidr=vpc_cidr,
        nat_gateways=integer("natGateways", raw("natGateways"), low=1, high=2),
        root_volume_gib=integer("rootVolumeGiB", raw("rootVolumeGiB"), low=30, high=16384),
        log_retention_days=log_retention_days,
        public_endpoint=public_endpoint,
        min_tasks=counts.min_tasks,
        max_tasks=counts.max_tasks,
        batching=_batching(raw("batching"), profile, models),
        models=models,
        ami_id=ami_id,
        ami_release=_ami_release(raw("amiRelease"), ami_id),
        neuron_recovery=boolean("neuronRecovery", raw("neuronRecovery")) if profile.neuron_recovery else None,
        zones=zones,
        fallback_sizes=fallback_sizes,
        on_demand_base=on_demand_base,
        endpoint=parse_endpoint(
            raw("certificateArn"), raw("tlsTensorPorts"), raw("apiKeySecret"), raw("maxClientBatchSize")
        ),
    )
