"""The models a fleet serves, and where each model's tasks sit on an instance's NeuronCores.

The one-model settings (``modelName``, ``grpcPort``, ``restPort``, ``coresPerTask``,
``modelS3Uri``) and the ``models`` list both become a tuple of :class:`ModelSettings` here; nothing
after this module reads the one-model keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from components.text_front.runtime import front_environment as front_env
from config.hardware import InstanceSize
from config.parsing import fail, integer, port, text
from config.profile import RuntimeProfile
from contracts import containers

MODEL_ENTRY_KEYS = ("name", "cores", "grpcPort", "restPort", "modelS3Uri")
# A model's text API port, when its entry leaves it out: the textPort setting plus the model's index.
OPTIONAL_MODEL_ENTRY_KEYS = ("textPort",)
# The fleet scales on one metric-math figure over two signals per model (components/fleet_scaling.py), and
# "Alarms based on metric math expressions can have up to 10 metrics" (CloudWatch service quotas).
MAX_MODELS = 5
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
_S3_URI = re.compile(r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<prefix>[A-Za-z0-9!_.'()/-]+?)/?")
S3_ALLOWED = "expected s3://bucket/prefix (the folder holding <version>/saved_model.pb)"


@dataclass(frozen=True)
class S3Location:
    """Where the model server loads its model from at start: ``s3://bucket/prefix/<version>/...``."""

    bucket: str
    prefix: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @classmethod
    def parse(cls, written: str) -> S3Location | None:
        """``s3://bucket/prefix`` as written, or None if it is not one (shared with ``make model-upload``)."""
        match = _S3_URI.fullmatch(written)
        if not match or ".." in written or "//" in written.removeprefix("s3://"):
            return None
        return cls(match["bucket"], match["prefix"])


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
    text_port: int
    """The load balancer's port for the text front (its TEI-compatible API)."""
    cores_per_task: int
    core_offset: int
    core_stride: int
    tasks_per_instance: int
    s3: S3Location | None

    def cores(self, slot: int) -> range:
        first = self.core_offset + slot * self.core_stride
        return range(first, first + self.cores_per_task)


def model_name(key: str, value: object) -> str:
    name = text(key, value)
    if not _MODEL_NAME.fullmatch(name) or name in containers.SIDECARS:
        raise fail(
            key,
            name,
            "expected 1-63 letters, digits, '-' or '_', starting with a letter or digit, "
            "and not " + " or ".join(sorted(containers.SIDECARS)),
        )
    return name


def model_s3(key: str, value: object, profile: RuntimeProfile) -> S3Location | None:
    written = text(key, value)
    if not written:
        return None
    location = S3Location.parse(written)
    if location is None:
        raise fail(key, value, S3_ALLOWED)
    if not profile.model_from_s3:
        raise fail(key, value, f"{profile.name} serves the model baked into its image: leave it empty")
    return location


def cores_per_task(value: object, size: InstanceSize, profile: RuntimeProfile) -> int:
    """0 (the default) means one chip; a one-task-per-instance layout always takes the whole instance."""
    requested = integer("coresPerTask", value, low=0, high=size.neuron_cores)
    if profile.one_task_per_instance:
        if requested:
            raise fail("coresPerTask", value, f"{profile.name} runs one task per instance: leave coresPerTask at 0")
        return size.neuron_cores
    if requested == 0:
        return size.cores_per_chip
    if requested not in size.core_group_sizes():
        choices = ", ".join(map(str, size.core_group_sizes()))
        raise fail("coresPerTask", value, f"expected 0 (one chip) or one of {choices} on {size.name}")
    return requested


def parse_models(
    raw: Callable[[str], object], size: InstanceSize, profile: RuntimeProfile
) -> tuple[ModelSettings, ...]:
    """Every model the fleet serves, from ``models`` or, when it is empty, from the one-model keys."""
    cores = cores_per_task(raw("coresPerTask"), size, profile)
    one_model_s3 = model_s3("modelS3Uri", raw("modelS3Uri"), profile)
    name = model_name("modelName", raw("modelName"))
    grpc_port, rest_port = port("grpcPort", raw("grpcPort")), port("restPort", raw("restPort"))
    if grpc_port == rest_port:
        raise fail("restPort", rest_port, "must differ from grpcPort")
    text_port = port("textPort", raw("textPort"))
    if text_port in (grpc_port, rest_port):
        raise fail("textPort", text_port, "must differ from grpcPort and restPort")
    listed = _listed_models(raw("models"), size, profile, first_text_port=text_port)
    if not listed:
        _front_port_free(profile, "grpcPort", grpc_port, "restPort", rest_port)
        return (
            ModelSettings(
                name=name,
                grpc_port=grpc_port,
                rest_port=rest_port,
                text_port=text_port,
                cores_per_task=cores,
                core_offset=0,
                core_stride=cores,
                tasks_per_instance=size.neuron_cores // cores,
                s3=one_model_s3,
            ),
        )
    if integer("coresPerTask", raw("coresPerTask"), low=0, high=size.neuron_cores) or one_model_s3 is not None:
        raise fail("models", "[...]", "replaces coresPerTask and modelS3Uri: leave those at 0 and empty")
    return listed


def _front_port_free(profile: RuntimeProfile, *keys_and_ports: object) -> None:
    """With its own network interface (awsvpc: Managed Instances) a task's containers share one port space,
    where the text front listens on its fixed container port: the server's ports must leave it free."""
    if not (profile.text_front and profile.task_networking):
        return
    for key, number in zip(keys_and_ports[::2], keys_and_ports[1::2], strict=True):
        if number == front_env.CONTAINER_PORT:
            raise fail(
                str(key),
                number,
                f"must not be {front_env.CONTAINER_PORT}: under Managed Instances the task's containers share "
                "one network interface, where the text front listens on that port",
            )


@dataclass(frozen=True)
class _ModelEntry:
    name: str
    cores: int
    location: S3Location
    grpc_port: int
    rest_port: int
    text_port: int


def _model_entry(
    index: int, entry: object, size: InstanceSize, profile: RuntimeProfile, first_text_port: int
) -> _ModelEntry:
    key = f"models[{index}]"
    if not isinstance(entry, dict):
        raise fail(key, entry, "expected an object with exactly " + ", ".join(MODEL_ENTRY_KEYS))
    missing = [name for name in MODEL_ENTRY_KEYS if name not in entry]
    extra = sorted(str(name) for name in entry if name not in (*MODEL_ENTRY_KEYS, *OPTIONAL_MODEL_ENTRY_KEYS))
    if missing or extra:
        said = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unknown {', '.join(extra)}" if extra else "",
            )
            if part
        )
        raise fail(
            key,
            entry,
            f"{said}: each model takes exactly " + ", ".join(MODEL_ENTRY_KEYS) + ", and may take textPort",
        )
    cores = integer(f"{key}.cores", entry["cores"], low=1, high=size.neuron_cores)
    if cores not in size.core_group_sizes():
        choices = ", ".join(map(str, size.core_group_sizes()))
        raise fail(f"{key}.cores", cores, f"expected one of {choices} on {size.name}")
    location = model_s3(f"{key}.modelS3Uri", entry["modelS3Uri"], profile)
    if location is None:
        raise fail(f"{key}.modelS3Uri", "", "each of several models loads from S3: give s3://bucket/prefix")
    return _ModelEntry(
        name=model_name(f"{key}.name", entry["name"]),
        cores=cores,
        location=location,
        grpc_port=port(f"{key}.grpcPort", entry["grpcPort"]),
        rest_port=port(f"{key}.restPort", entry["restPort"]),
        text_port=port(f"{key}.textPort", entry.get("textPort", first_text_port + index)),
    )


def _listed_models(
    value: object, size: InstanceSize, profile: RuntimeProfile, *, first_text_port: int
) -> tuple[ModelSettings, ...]:
    """Several models side by side: each instance is cut into rows holding one task of every model."""
    allowed = "expected [] for one model, or a list of {" + ", ".join(MODEL_ENTRY_KEYS) + "} objects"
    if isinstance(value, str):
        try:
            value = json.loads(value) if value.strip() else []
        except json.JSONDecodeError as error:
            raise fail("models", value, f"not valid JSON: {error.msg} at column {error.colno}; {allowed}") from None
    if not isinstance(value, list):
        raise fail("models", value, allowed)
    if value and profile.one_task_per_instance:
        raise fail("models", "[...]", f"{profile.name} serves one model per instance: leave models empty")
    if len(value) > MAX_MODELS:
        raise fail(
            "models",
            f"[{len(value)} models]",
            f"at most {MAX_MODELS}: the fleet scales on one figure over each model's CPU and NeuronCore "
            "utilisation, and a CloudWatch metric-math alarm holds at most 10 metrics",
        )
    entries = [_model_entry(index, entry, size, profile, first_text_port) for index, entry in enumerate(value)]
    _front_port_free(
        profile,
        *(
            item
            for index, entry in enumerate(entries)
            for item in (f"models[{index}].grpcPort", entry.grpc_port, f"models[{index}].restPort", entry.rest_port)
        ),
    )
    names = [entry.name for entry in entries]
    if len(set(names)) != len(names):
        raise fail("models", names, "expected every model name once")
    ports = [number for entry in entries for number in (entry.grpc_port, entry.rest_port, entry.text_port)]
    if len(set(ports)) != len(ports):
        raise fail("models", ports, "expected every gRPC, REST and text port once across the models")
    row = sum(entry.cores for entry in entries)
    if entries and size.neuron_cores % row:
        raise fail("models", row, f"the models' cores add up to {row}, which must divide {size.neuron_cores}")
    if entries and row != size.neuron_cores:
        raise fail(
            "models",
            row,
            f"the models' cores add up to {row}; several models share an instance one task each, so they must add "
            f"up to all {size.neuron_cores} NeuronCores of {size.name} (ECS can cap a service at one task per "
            "instance, not at several)",
        )
    offsets = [sum(entry.cores for entry in entries[:index]) for index in range(len(entries))]
    models = tuple(
        ModelSettings(
            name=entry.name,
            grpc_port=entry.grpc_port,
            rest_port=entry.rest_port,
            text_port=entry.text_port,
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
                raise fail("models", model.name, f"{model.name}'s cores {cores} straddle chips: reorder or resize")
    return models
