"""Claims one group of NeuronCores for this model server, then starts it.

ECS gives every task of a service the same definition, so tasks sharing an instance cannot be told
apart by their environment. Each task instead takes the first free slot: slot N is the lock file
``<dir>/slot-N.lock`` held with flock, and owns the k cores from ``offset + N*stride`` (k = cores
per task; offset and stride place several models' tasks side by side, and default to 0 and k).
The lock's descriptor is inherited by the server, so the slot frees itself when the server exits,
however it exits. Standard library only: it runs on the image's own python3.

    neuron_slot.py SERVER [ARGS...]
    env: NEURON_CORES_PER_TASK, NEURON_CORE_SLOTS, NEURON_SLOT_DIR, NEURON_CORE_OFFSET, NEURON_CORE_STRIDE
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING or __package__:  # imported as a package module (the CDK app, the tests, mypy)
    from . import task_environment
else:  # run in the image, beside its sibling modules
    import task_environment


class NoFreeSlot(RuntimeError):
    pass


def cores_for(slot: int, cores_per_task: int, offset: int = 0, stride: Optional[int] = None) -> str:
    first = offset + slot * (cores_per_task if stride is None else stride)
    return f"{first}-{first + cores_per_task - 1}"


def claim(slot_dir: Path, slots: int) -> tuple[int, int]:
    """The first free slot and its open, locked descriptor; raises NoFreeSlot when all are held."""
    slot_dir.mkdir(parents=True, exist_ok=True)
    for slot in range(slots):
        descriptor = os.open(slot_dir / f"slot-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)  # novm
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)  # novm
        except BlockingIOError:
            os.close(descriptor)
            continue
        return slot, descriptor
    raise NoFreeSlot(f"all {slots} NeuronCore slots in {slot_dir} are held by other tasks")


def main(argv: list[str]) -> None:
    cores_per_task = int(os.environ[task_environment.NEURON_CORES_PER_TASK])
    slots = int(os.environ[task_environment.NEURON_CORE_SLOTS])
    slot_dir = Path(os.environ.get(task_environment.NEURON_SLOT_DIR, "/run/neuron-slots"))
    try:
        slot, descriptor = claim(slot_dir, slots)
    except NoFreeSlot as error:
        print(f"ERROR: {error}", file=sys.stderr, flush=True)
        sys.exit(75)  # EX_TEMPFAIL: ECS starts a replacement, which finds a slot once one frees
    os.set_inheritable(descriptor, True)
    offset = int(os.environ.get(task_environment.NEURON_CORE_OFFSET, "0"))
    stride = int(os.environ.get(task_environment.NEURON_CORE_STRIDE, str(cores_per_task)))
    cores = cores_for(slot, cores_per_task, offset, stride)
    os.environ[task_environment.NEURON_RT_VISIBLE_CORES] = cores
    print(f"neuron_slot: slot {slot}, {task_environment.NEURON_RT_VISIBLE_CORES}={cores}", flush=True)
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
