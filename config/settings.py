"""The deployment's settings: read once from CDK context, validated, frozen.

Every key can be set in ``cdk.json`` or overridden with ``cdk synth -c key=value``. Values from
``cdk.json`` arrive typed (``true``, ``2``); values from ``-c`` always arrive as strings, so each
parser accepts both. A bad value raises :class:`SettingsError`, whose one-line message names the key,
the value and what is allowed.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

from config.hardware import INSTANCE_SIZES, InstanceSize, NeuronFamily
from config.neuron_releases import LIBNRT_RELEASES, RTD, NeuronReleaseSet

ContextGetter = Callable[[str], object]


class NeuronRuntime(Enum):
    """How the model server reaches the Neuron devices."""

    LIBNRT = "libnrt"
    """Today's runtime: a library inside the model server, devices mapped into its container."""
    RTD = "rtd"
    """The 2020 walk-through's layout: a ``neuron-rtd`` daemon sidecar behind a Unix socket."""


class SettingsError(ValueError):
    """A setting was given a value it cannot take."""


# Container names in the task besides the model server's own (which is ``modelName``).
SIDECAR_CONTAINER_NAMES = frozenset({"neuron-rtd", "neuron-monitor", "model-sync"})
# Host ports the ECS agent keeps for itself on container instances.
ECS_RESERVED_PORTS = frozenset({22, 2375, 2376, 51678, 51679, 51680})
# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (
    *(1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545),
    *(731, 1096, 1827, 2192, 2557, 2922, 3288, 3653),
)
MAX_INSTANCES = 100
MAX_TASKS = 100
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
_KEY_NAME = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?")
_INTEGER = re.compile(r"[0-9]{1,9}")
# EC2 image IDs: "ami-" and 8 hex digits (older images) or 17 (since 2016).
_AMI_ID = re.compile(r"ami-(?:[0-9a-f]{8}|[0-9a-f]{17})")
_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
_S3_URI = re.compile(r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<prefix>[A-Za-z0-9!_.'()/-]+?)/?")

DEFAULTS: Mapping[str, object] = {
    "stackName": "BertInferentia",
    "instanceType": "inf1.xlarge",
    "spot": True,
    "minInstances": 0,
    "maxInstances": 2,
    "desiredCount": 1,
    "allowedCidr": "",
    "keyName": "",
    "neuronRuntime": NeuronRuntime.LIBNRT.value,
    "modelName": "bert",
    "grpcPort": 8500,
    "restPort": 8501,
    "vpcCidr": "10.0.0.0/16",
    "natGateways": 1,
    "rootVolumeGiB": 60,
    "logRetentionDays": 30,
    "coresPerTask": 0,
    "publicEndpoint": False,
    "minTasks": 1,
    "maxTasks": 2,
    "batching": {},
    "modelS3Uri": "",
    "models": [],
    "amiId": "",
}
MODEL_ENTRY_KEYS = ("name", "cores", "grpcPort", "restPort", "modelS3Uri")

# TF Serving's batching parameters: setting key -> (parameter name, default, lowest, highest).
BATCHING_FIELDS: Mapping[str, tuple[str, int, int, int]] = {
    "maxBatchSize": ("max_batch_size", 8, 1, 1024),
    "batchTimeoutMicros": ("batch_timeout_micros", 5000, 0, 10_000_000),
    "numBatchThreads": ("num_batch_threads", 4, 1, 1024),
    "maxEnqueuedBatches": ("max_enqueued_batches", 100, 1, 1_000_000),
}


@dataclass(frozen=True, kw_only=True)
class BatchingSettings:
    """TF Serving's dynamic batching: up to ``max_batch_size`` requests wait at most ``batch_timeout_micros``."""

    max_batch_size: int
    batch_timeout_micros: int
    num_batch_threads: int
    max_enqueued_batches: int

    def parameters_file(self) -> str:
        """The text-format BatchingParameters file that ``--batching_parameters_file`` reads."""
        return "".join(f"{name} {{ value: {getattr(self, name)} }}\n" for name, *_ in BATCHING_FIELDS.values())


@dataclass(frozen=True)
class S3Location:
    """Where the model server loads its model from at start: ``s3://bucket/prefix/<version>/...``."""

    bucket: str
    prefix: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass(frozen=True, kw_only=True)
class ModelSettings:
    """One model the fleet serves, and where its tasks' NeuronCores lie on every instance.

    Task slot ``n`` of this model holds cores ``core_offset + n*core_stride`` onwards, ``cores_per_task``
    of them. With one model the stride is the task's own size; with several, each instance is cut
    into rows of one task per model, and the stride is a row's width.
    """

    name: str
    grpc_port: int
    rest_port: int
    cores_per_task: int
    core_offset: int
    core_stride: int
    tasks_per_instance: int
    s3: S3Location | None

    def cores(self, slot: int) -> range:
        first = self.core_offset + slot * self.core_stride
        return range(first, first + self.cores_per_task)


@dataclass(frozen=True, kw_only=True)
class DeploymentSettings:
    """Everything the app needs to know, checked before any construct is built."""

    stack_name: str
    instance_size: InstanceSize
    spot: bool
    min_instances: int
    max_instances: int
    desired_count: int
    allowed_cidr: str
    key_name: str | None
    neuron_runtime: NeuronRuntime
    model_name: str
    grpc_port: int
    rest_port: int
    vpc_cidr: str
    nat_gateways: int
    root_volume_gib: int
    log_retention_days: int
    cores_per_task: int
    public_endpoint: bool
    min_tasks: int
    max_tasks: int
    batching: BatchingSettings | None
    model_s3: S3Location | None
    models: tuple[ModelSettings, ...]
    ami_id: str | None
    """An EC2 image to boot instead of the SSM-published ECS Neuron AMI (required by ``rtd``)."""

    @property
    def releases(self) -> NeuronReleaseSet:
        """The Neuron packages every image of this layout and family installs."""
        if self.neuron_runtime is NeuronRuntime.RTD:
            return RTD
        return LIBNRT_RELEASES[self.instance_size.family]

    @property
    def parked(self) -> bool:
        """``desiredCount`` 0: every service holds no task, and the instances scale down to ``minInstances``."""
        return self.desired_count == 0

    @property
    def tasks_per_instance(self) -> int:
        """Tasks of each model that share one instance, each on its own NeuronCores."""
        return self.models[0].tasks_per_instance


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(key: str, value: object, allowed: str) -> SettingsError:
    return SettingsError(f"Invalid setting '{key}' = {_shown(value)}: {allowed}")


def _boolean(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise _fail(key, value, "expected true or false")


def _integer(key: str, value: object, *, low: int, high: int) -> int:
    allowed = f"expected a whole number from {low} to {high}"
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _fail(key, value, allowed)
    if isinstance(value, str):
        if not _INTEGER.fullmatch(value):
            raise _fail(key, value, allowed)
        number = int(value)
    else:
        number = value
    if not low <= number <= high:
        raise _fail(key, value, allowed)
    return number


def _text(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise _fail(key, value, "expected a string")
    return value


def _choice(key: str, value: object, choices: Mapping[str, object]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _fail(key, value, "expected one of " + ", ".join(choices))
    return value


def _ipv4_cidr(key: str, value: object, *, vpc: bool) -> str:
    allowed = (
        "expected a private IPv4 CIDR block from /16 to /22, e.g. 10.0.0.0/16"
        if vpc
        else "expected an IPv4 CIDR block such as 10.0.0.0/16 or 203.0.113.7/32"
    )
    text = _text(key, value)
    if "/" not in text or text.strip() != text:
        raise _fail(key, value, allowed)
    try:
        network = ipaddress.IPv4Network(text, strict=True)
    except ValueError:
        raise _fail(key, value, allowed) from None
    if vpc and not (network.is_private and 16 <= network.prefixlen <= 22):
        raise _fail(key, value, allowed)
    return str(network)


def _port(key: str, value: object) -> int:
    port = _integer(key, value, low=1, high=65535)
    if port in ECS_RESERVED_PORTS:
        reserved = ", ".join(map(str, sorted(ECS_RESERVED_PORTS)))
        raise _fail(key, value, f"expected a port from 1 to 65535 other than {reserved} (kept by the ECS agent)")
    return port


@dataclass(frozen=True)
class _Counts:
    min_instances: int
    max_instances: int
    desired_count: int
    min_tasks: int
    max_tasks: int


def _counts(raw: ContextGetter, size: InstanceSize, models: tuple[ModelSettings, ...]) -> _Counts:
    """Instance and task counts, checked against what the instances can hold."""
    tasks_per_instance = models[0].tasks_per_instance
    held = f"{models[0].cores_per_task} of the {size.neuron_cores}" if len(models) == 1 else "a share of the"
    min_instances = _integer("minInstances", raw("minInstances"), low=0, high=MAX_INSTANCES)
    max_instances = _integer("maxInstances", raw("maxInstances"), low=1, high=MAX_INSTANCES)
    if min_instances > max_instances:
        raise _fail("minInstances", min_instances, f"must not exceed maxInstances ({max_instances})")
    desired_count = _integer("desiredCount", raw("desiredCount"), low=0, high=MAX_TASKS)
    capacity = max_instances * tasks_per_instance
    if desired_count > capacity:
        raise _fail(
            "desiredCount",
            desired_count,
            f"must not exceed maxInstances x tasks per instance ({max_instances} x {tasks_per_instance}): "
            f"each task holds {held} NeuronCores of an {size.name}",
        )
    min_tasks = _integer("minTasks", raw("minTasks"), low=0, high=MAX_TASKS)
    max_tasks = _integer("maxTasks", raw("maxTasks"), low=1, high=MAX_TASKS)
    if max_tasks > capacity:
        raise _fail("maxTasks", max_tasks, f"must not exceed maxInstances x tasks per instance ({capacity})")
    if not min_tasks <= desired_count <= max_tasks:
        raise _fail(
            "desiredCount", desired_count, f"must lie between minTasks ({min_tasks}) and maxTasks ({max_tasks})"
        )
    if min_tasks == 0 and desired_count > 0:
        raise _fail(
            "minTasks",
            min_tasks,
            "0 only parks the service, with desiredCount=0: a service at 0 tasks publishes no CPU or Neuron "
            "metrics, so autoscaling could never bring it back",
        )
    return _Counts(min_instances, max_instances, desired_count, min_tasks, max_tasks)


def load_settings(get: ContextGetter) -> DeploymentSettings:
    """Build the settings from a context getter such as ``app.node.try_get_context``.

    A key that is absent (``None``) takes its value from :data:`DEFAULTS`.
    """

    def raw(key: str) -> object:
        value = get(key)
        return DEFAULTS[key] if value is None else value

    instance_type = _choice("instanceType", raw("instanceType"), INSTANCE_SIZES)
    runtime = NeuronRuntime(_choice("neuronRuntime", raw("neuronRuntime"), {r.value: r for r in NeuronRuntime}))
    size = INSTANCE_SIZES[instance_type]
    if runtime is NeuronRuntime.RTD and size.family is not NeuronFamily.INF1:
        raise _fail(
            "neuronRuntime", runtime.value, f"'rtd' (Neuron runtime 1.x) runs only on inf1 sizes, not {instance_type}"
        )

    ami_id = _ami_id(raw("amiId"), runtime)
    cores_per_task = _cores_per_task(raw("coresPerTask"), size, runtime)
    model_s3 = _model_s3("modelS3Uri", raw("modelS3Uri"), runtime)
    model_name = _model_name("modelName", raw("modelName"))
    grpc_port = _port("grpcPort", raw("grpcPort"))
    rest_port = _port("restPort", raw("restPort"))
    if grpc_port == rest_port:
        raise _fail("restPort", rest_port, "must differ from grpcPort")
    models = _models(raw("models"), size, runtime)
    cores_requested = _integer("coresPerTask", raw("coresPerTask"), low=0, high=size.neuron_cores)
    if models and (cores_requested != 0 or model_s3 is not None):
        raise _fail("models", "[...]", "replaces coresPerTask and modelS3Uri: leave those at 0 and empty")
    models = models or (
        ModelSettings(
            name=model_name,
            grpc_port=grpc_port,
            rest_port=rest_port,
            cores_per_task=cores_per_task,
            core_offset=0,
            core_stride=cores_per_task,
            tasks_per_instance=size.neuron_cores // cores_per_task,
            s3=model_s3,
        ),
    )
    counts = _counts(raw, size, models)

    vpc_cidr = _ipv4_cidr("vpcCidr", raw("vpcCidr"), vpc=True)
    allowed_cidr_value = raw("allowedCidr")
    allowed_cidr = vpc_cidr if allowed_cidr_value == "" else _ipv4_cidr("allowedCidr", allowed_cidr_value, vpc=False)
    if allowed_cidr == "0.0.0.0/0":
        raise _fail("allowedCidr", allowed_cidr, "must not be the whole internet: TF Serving has no authentication")

    key_name = _text("keyName", raw("keyName"))
    if key_name and not _KEY_NAME.fullmatch(key_name):
        raise _fail(
            "keyName", key_name, "expected an EC2 key pair name: 1-255 printable ASCII characters, or empty for none"
        )

    retention_allowed = "expected one of " + ", ".join(map(str, LOG_RETENTION_DAYS))
    log_retention_days = _integer("logRetentionDays", raw("logRetentionDays"), low=1, high=LOG_RETENTION_DAYS[-1])
    if log_retention_days not in LOG_RETENTION_DAYS:
        raise _fail("logRetentionDays", log_retention_days, retention_allowed)

    stack_name = _text("stackName", raw("stackName"))
    if not _STACK_NAME.fullmatch(stack_name):
        raise _fail("stackName", stack_name, "expected 1-128 letters, digits or '-', starting with a letter")

    return DeploymentSettings(
        stack_name=stack_name,
        instance_size=size,
        spot=_boolean("spot", raw("spot")),
        min_instances=counts.min_instances,
        max_instances=counts.max_instances,
        desired_count=counts.desired_count,
        allowed_cidr=allowed_cidr,
        key_name=key_name or None,
        neuron_runtime=runtime,
        model_name=model_name,
        grpc_port=grpc_port,
        rest_port=rest_port,
        vpc_cidr=vpc_cidr,
        nat_gateways=_integer("natGateways", raw("natGateways"), low=1, high=2),
        root_volume_gib=_integer("rootVolumeGiB", raw("rootVolumeGiB"), low=30, high=16384),
        log_retention_days=log_retention_days,
        cores_per_task=cores_per_task,
        public_endpoint=_boolean("publicEndpoint", raw("publicEndpoint")),
        min_tasks=counts.min_tasks,
        max_tasks=counts.max_tasks,
        batching=_batching(raw("batching")),
        model_s3=model_s3,
        models=models,
        ami_id=ami_id,
    )


def _ami_id(value: object, runtime: NeuronRuntime) -> str | None:
    text = _text("amiId", value)
    if text and not _AMI_ID.fullmatch(text):
        raise _fail("amiId", value, "expected an EC2 image ID: ami- and 8 or 17 lower-case hex digits, or empty")
    if not text and runtime is NeuronRuntime.RTD:
        raise _fail(
            "neuronRuntime",
            runtime.value,
            "'rtd' needs amiId: no current ECS AMI runs neuron-rtd (the AL2 inf AMI pins driver 2.17, which "
            "dropped runtime 1.x in Neuron 2.3); name an AMI with a runtime-1.x Neuron driver",
        )
    return text or None


def _model_name(key: str, value: object) -> str:
    name = _text(key, value)
    if not _MODEL_NAME.fullmatch(name) or name in SIDECAR_CONTAINER_NAMES:
        raise _fail(
            key,
            name,
            "expected 1-63 letters, digits, '-' or '_', starting with a letter or digit, "
            "and not " + " or ".join(sorted(SIDECAR_CONTAINER_NAMES)),
        )
    return name


def _model_s3(key: str, value: object, runtime: NeuronRuntime) -> S3Location | None:
    text = _text(key, value)
    if not text:
        return None
    match = _S3_URI.fullmatch(text)
    if not match or ".." in text or "//" in text.removeprefix("s3://"):
        raise _fail(key, value, "expected s3://bucket/prefix (the folder holding <version>/saved_model.pb)")
    if runtime is NeuronRuntime.RTD:
        raise _fail(key, value, "the rtd layout serves the model baked into its image: leave it empty")
    return S3Location(match["bucket"], match["prefix"])


@dataclass(frozen=True)
class _ModelEntry:
    name: str
    cores: int
    location: S3Location
    grpc_port: int
    rest_port: int


def _model_entry(index: int, entry: object, size: InstanceSize, runtime: NeuronRuntime) -> _ModelEntry:
    key = f"models[{index}]"
    if not isinstance(entry, dict) or set(entry) != set(MODEL_ENTRY_KEYS):
        raise _fail(key, entry, "expected an object with exactly " + ", ".join(MODEL_ENTRY_KEYS))
    cores = _integer(f"{key}.cores", entry["cores"], low=1, high=size.neuron_cores)
    if cores not in size.core_group_sizes():
        choices = ", ".join(map(str, size.core_group_sizes()))
        raise _fail(f"{key}.cores", cores, f"expected one of {choices} on {size.name}")
    location = _model_s3(f"{key}.modelS3Uri", entry["modelS3Uri"], runtime)
    if location is None:
        raise _fail(f"{key}.modelS3Uri", "", "each of several models loads from S3: give s3://bucket/prefix")
    return _ModelEntry(
        name=_model_name(f"{key}.name", entry["name"]),
        cores=cores,
        location=location,
        grpc_port=_port(f"{key}.grpcPort", entry["grpcPort"]),
        rest_port=_port(f"{key}.restPort", entry["restPort"]),
    )


def _models(value: object, size: InstanceSize, runtime: NeuronRuntime) -> tuple[ModelSettings, ...]:
    """Several models side by side: each instance is cut into rows holding one task of every model."""
    allowed = "expected [] for one model, or a list of {" + ", ".join(MODEL_ENTRY_KEYS) + "} objects"
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except ValueError:
            raise _fail("models", value, allowed) from None
    if not isinstance(value, list):
        raise _fail("models", value, allowed)
    if value and runtime is NeuronRuntime.RTD:
        raise _fail("models", "[...]", "the rtd layout serves one model: leave models empty")
    entries = [_model_entry(index, entry, size, runtime) for index, entry in enumerate(value)]
    names = [entry.name for entry in entries]
    if len(set(names)) != len(names):
        raise _fail("models", names, "expected every model name once")
    ports = [port for entry in entries for port in (entry.grpc_port, entry.rest_port)]
    if len(set(ports)) != len(ports):
        raise _fail("models", ports, "expected every gRPC and REST port once across the models")
    row = sum(entry.cores for entry in entries)
    if entries and size.neuron_cores % row:
        raise _fail("models", row, f"the models' cores add up to {row}, which must divide {size.neuron_cores}")
    offsets = [sum(entry.cores for entry in entries[:index]) for index in range(len(entries))]
    models = tuple(
        ModelSettings(
            name=entry.name,
            grpc_port=entry.grpc_port,
            rest_port=entry.rest_port,
            cores_per_task=entry.cores,
            core_offset=offset,
            core_stride=row,
            tasks_per_instance=size.neuron_cores // row,
            s3=entry.location,
        )
        for entry, offset in zip(entries, offsets, strict=True)
    )
    for model in models:
        for slot in range(model.tasks_per_instance):
            chips = {core // size.cores_per_chip for core in model.cores(slot)}
            if len(chips) > max(1, model.cores_per_task // size.cores_per_chip):
                cores = list(model.cores(slot))
                raise _fail("models", model.name, f"{model.name}'s cores {cores} straddle chips: reorder or resize")
    return models


def _batching(value: object) -> BatchingSettings | None:
    """Off for {}, false or ""; otherwise an object (or its JSON text, as -c gives it) of BATCHING_FIELDS."""
    allowed = "expected {} to turn batching off, or an object with " + ", ".join(BATCHING_FIELDS)
    if isinstance(value, str):
        if value.strip().lower() in ("", "false", "off", "{}"):
            return None
        try:
            value = json.loads(value)
        except ValueError:
            raise _fail("batching", value, allowed) from None
    if value is False or value == {}:
        return None
    if not isinstance(value, dict) or not set(value) <= set(BATCHING_FIELDS):
        raise _fail("batching", value, allowed)
    fields = {
        name: _integer(f"batching.{key}", value.get(key, default), low=low, high=high)
        for key, (name, default, low, high) in BATCHING_FIELDS.items()
    }
    return BatchingSettings(**fields)


def _cores_per_task(value: object, size: InstanceSize, runtime: NeuronRuntime) -> int:
    """0 (the default) means one chip; rtd always takes the whole instance."""
    whole_instance = size.neuron_cores if runtime is NeuronRuntime.RTD else size.cores_per_chip
    allowed = size.core_group_sizes()
    requested = _integer("coresPerTask", value, low=0, high=size.neuron_cores)
    if requested == 0:
        return whole_instance
    if runtime is NeuronRuntime.RTD:
        raise _fail("coresPerTask", value, "the rtd layout runs one task per instance: leave coresPerTask at 0")
    if requested not in allowed:
        choices = ", ".join(map(str, allowed))
        raise _fail("coresPerTask", value, f"expected 0 (one chip) or one of {choices} on {size.name}")
    return requested
