"""Triton's shared memory: every model instance's region holds a full batch, within the task's /dev/shm."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from components.model_server.runtime.model_signature import MAX_SEQUENCE_LENGTH
from config.hardware import INSTANCE_SIZES, NeuronFamily
from config.settings import SettingsError, load_settings
from config.triton_memory import (
    DOCKER_DEFAULT_SHM_MIB,
    MIB,
    RESERVED_MIB,
    batch_bytes,
    largest_fitting_batch,
    region_mib,
    shared_memory_plan,
)
from tests.conftest import CDK_JSON_CONTEXT, Synthesized

SynthFn = Callable[[str], Synthesized]
INF2 = [size for size in INSTANCE_SIZES.values() if size.family is NeuronFamily.INF2]


@pytest.mark.parametrize(
    ("size", "cores", "batch", "own"),
    [
        (size, cores, batch, own)
        for size in INF2
        for cores in size.core_group_sizes()
        for batch, own in itertools.product([None, 1, 8, 64, 256, 1024], [True, False])
        if own or cores == size.neuron_cores  # Managed Instances: one task takes the instance
    ],
    ids=str,
)
def test_every_instance_holds_its_largest_batch_within_the_tasks_shm(
    size: object, cores: int, batch: int | None, own: bool
) -> None:
    plan = shared_memory_plan(instances=cores, max_batch=batch, size_settable=own)
    if plan is None:  # refused by the settings (below)
        assert not own
        return

    assert plan.region_mib * MIB >= batch_bytes(plan.max_batch, MAX_SEQUENCE_LENGTH)
    assert plan.needed_mib <= plan.shm_mib
    if own:
        assert plan.max_batch == (batch or 256)
    else:
        assert plan.shm_mib == DOCKER_DEFAULT_SHM_MIB
        assert plan.max_batch >= 1
        if batch:
            assert plan.max_batch == batch


def test_docker_default_would_not_hold_24_instances_of_a_full_batch() -> None:
    # What the task had before: no sharedMemorySize, 24 instances at batch 256 of 512 tokens, whose
    # regions grow in whole MiB.
    assert RESERVED_MIB + 24 * region_mib(256) > DOCKER_DEFAULT_SHM_MIB


@pytest.mark.parametrize("variant", ["split", "triton-multi", "managed"])
def test_the_task_carries_the_plan(synth: SynthFn, variant: str) -> None:
    synthesized = synth(variant)
    for definition in synthesized.serving("AWS::ECS::TaskDefinition").values():
        models = {model.name for model in synthesized.settings.models}
        (server,) = [c for c in definition["Properties"]["ContainerDefinitions"] if c["Name"] in models]
        environment = {item["Name"]: item["Value"] for item in server["Environment"]}
        instances = int(environment["TRITON_INSTANCES"])
        own = synthesized.settings.profile.own_instances
        batching = synthesized.settings.batching
        plan = shared_memory_plan(
            instances=instances, max_batch=batching.max_batch_size if batching else None, size_settable=own
        )
        assert plan is not None
        assert int(environment["TRITON_SHM_REGION_BYTES"]) == plan.region_bytes
        assert int(environment["TRITON_MAX_BATCH"]) == plan.max_batch
        shm = server["LinuxParameters"].get("SharedMemorySize")
        assert shm == (plan.shm_mib if own else None)


def test_managed_instances_refuse_a_batch_the_default_shm_cannot_hold() -> None:
    context = {**CDK_JSON_CONTEXT, "capacity": "managedInstances", "instanceType": "inf2.48xlarge"}
    largest = largest_fitting_batch(24)

    load_settings({**context, "batching": {"maxBatchSize": largest}}.get)
    with pytest.raises(SettingsError, match=rf"'batching.maxBatchSize' = 256: at most {largest} under ECS Managed"):
        load_settings({**context, "batching": {"maxBatchSize": 256}}.get)
