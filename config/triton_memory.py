"""Triton's shared memory: what the Python backend needs in ``/dev/shm``, and where the task gets it.

Each model instance runs in a stub process of its own and exchanges every request's tensors with
Triton through its own shared-memory region: "Python backend, by default, allocates 1 MB for each
model instance. Then, it will grow the shared memory region by 1 MB chunks whenever an increase is
required", and inside Docker the default ``/dev/shm`` of "64MB ... is very small"
(triton-inference-server/python_backend README, "Managing Shared Memory"). This task runs one
instance per NeuronCore (up to 24) and up to ``max batch`` rows per execution, so:

* on this stack's own instances the server container gets ``linuxParameters.sharedMemorySize``
  sized for every instance holding its largest batch;
* ECS Managed Instances do not accept ``sharedMemorySize`` ("This parameter isn't supported for tasks
  running on Amazon ECS Managed Instances", ECS developer guide, task definition parameters for
  Managed Instances), so the task keeps Docker's 64 MiB and the largest request batch is cut until
  every instance's region fits in it.

The regions are sized at synth for the longest sequence BERT takes, as the compiled length is known
only when the server starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from components.model_server.runtime.model_signature import INPUT_NAMES, MAX_SEQUENCE_LENGTH
from components.model_server.runtime.task_environment import TRITON_MAX_REQUEST_BATCH

MIB = 1024 * 1024
DOCKER_DEFAULT_SHM_MIB = 64
# Triton's and the backend's own use of /dev/shm beside the instances' regions, kept free.
RESERVED_MIB = 8
# A batch's reply: the logits, at most this many bytes a row (1,024 labels of float32).
REPLY_BYTES_PER_ROW = 4096
INT32_BYTES = 4
# The largest request batch when the task sets no batching (make model's BATCH bound).
MAX_REQUEST_BATCH = TRITON_MAX_REQUEST_BATCH
# The smallest region the backend accepts (python_backend src/python_be.cc checks shm-default-byte-size).
MIN_REGION_MIB = 1


def batch_bytes(batch: int, sequence: int = MAX_SEQUENCE_LENGTH) -> int:
    """One execution's tensors: the inputs in and the logits out, both in the instance's region."""
    return batch * (len(INPUT_NAMES) * sequence * INT32_BYTES + REPLY_BYTES_PER_ROW)


def region_mib(batch: int) -> int:
    """An instance's region, in whole MiB: a full batch in flight, never below the backend's minimum."""
    return max(MIN_REGION_MIB, math.ceil(batch_bytes(batch) / MIB))


@dataclass(frozen=True)
class SharedMemoryPlan:
    """How much ``/dev/shm`` the server container has, and how it is used."""

    instances: int
    max_batch: int
    """The largest batch any instance executes (Triton's max_batch_size)."""
    region_mib: int
    """Each instance's region, set as the backend's shm-default-byte-size so it never has to grow."""
    shm_mib: int
    """The container's /dev/shm."""
    task_sets_size: bool
    """True where the task sets sharedMemorySize; else Docker's default."""

    @property
    def needed_mib(self) -> int:
        return RESERVED_MIB + self.instances * self.region_mib

    @property
    def region_bytes(self) -> int:
        return self.region_mib * MIB


def shared_memory_plan(*, instances: int, max_batch: int | None, size_settable: bool) -> SharedMemoryPlan | None:
    """The plan for ``instances`` model instances and the batching setting's ``max_batch`` (None: unbatched).

    None when a fixed ``/dev/shm`` cannot hold ``instances`` regions for even the batch asked for (the
    caller refuses the setting); without a batching setting the request batch is cut to fit instead.
    """
    wanted = max_batch or MAX_REQUEST_BATCH
    if size_settable:
        region = region_mib(wanted)
        return SharedMemoryPlan(
            instances=instances,
            max_batch=wanted,
            region_mib=region,
            shm_mib=RESERVED_MIB + instances * region,
            task_sets_size=True,
        )
    budget = (DOCKER_DEFAULT_SHM_MIB - RESERVED_MIB) // instances
    batch = wanted
    while batch > 1 and region_mib(batch) > budget and max_batch is None:
        batch //= 2
    if region_mib(batch) > budget:
        return None
    return SharedMemoryPlan(
        instances=instances,
        max_batch=batch,
        region_mib=region_mib(batch),
        shm_mib=DOCKER_DEFAULT_SHM_MIB,
        task_sets_size=False,
    )


def largest_fitting_batch(instances: int) -> int:
    """The largest batch whose regions fit Docker's default /dev/shm with ``instances`` instances."""
    plan = shared_memory_plan(instances=instances, max_batch=None, size_settable=False)
    assert plan is not None
    return plan.max_batch
