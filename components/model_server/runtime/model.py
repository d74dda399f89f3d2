"""Triton Python-backend model: a BERT classifier traced with torch-neuronx, one instance per NeuronCore.

Triton starts ``count`` instances of this model (config.pbtxt, written by ``serve_triton.py``); each
takes one NeuronCore of the task's range by setting ``NEURON_RT_VISIBLE_CORES`` before it loads the
model, as triton-inference-server/python_backend ``inferentia/`` does. A request batch of any size
is cut into chunks of the batch the model was traced for, the last one padded, and the padding
dropped from the answer (what ``torch_neuronx.dynamic_batch`` does, kept here so it also holds
for the CPU build). The instance is ready only after one warm-up inference: Triton reports the
model ready once ``initialize`` returns.

Runs inside Triton's Python stub; ``triton_python_backend_utils`` is Triton's own module.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import triton_python_backend_utils as pb_utils

# The names it reads, copied beside it into each version folder by serve_triton.py (and beside it here).
if TYPE_CHECKING or __package__:  # imported as a package module (the CDK app, the tests, mypy)
    from . import model_signature, task_environment
else:  # run in the image, beside its sibling modules
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # Triton's stub loads this file by its path
    import model_signature
    import task_environment

MODEL_FILE = "model.pt"


def instance_index(instance_name: str, count: int) -> int:
    """Triton names instances ``<model>_<n>`` (``<group>_<n>``) when a group has several."""
    if count == 1:
        return 0
    found = re.search(r"_(\d+)$", instance_name)
    if found is None or int(found[1]) >= count:
        raise pb_utils.TritonModelException(f"cannot tell which of {count} instances {instance_name!r} is")
    return int(found[1])


def task_cores(visible: str | None, count: int) -> list[int]:
    """The task's NeuronCores: NEURON_RT_VISIBLE_CORES as the core slot set it ("4-7", "4", "4,5"), or 0..count-1."""
    if not visible:
        return list(range(count))
    cores: list[int] = []
    for part in visible.split(","):
        first, _, last = part.strip().partition("-")
        cores.extend(range(int(first), int(last or first) + 1))
    return cores


def core_for(instance: int, visible: str | None, count: int) -> int:
    cores = task_cores(visible, count)
    if len(cores) < count:
        raise pb_utils.TritonModelException(f"{count} instances need {count} NeuronCores, the task has {cores}")
    return cores[instance]


def load_traced(path: Path) -> Any:
    """The traced model: TorchScript, with torch-neuronx's operators registered where it is installed."""
    import torch  # noqa: PLC0415  (the stub's Python has it; tests stand in for this function)

    # torch-neuronx registers the Neuron ops a traced model calls; a CPU build (tests, dry runs) needs none.
    with contextlib.suppress(ImportError):
        import torch_neuronx  # noqa: F401, PLC0415
    with warnings.catch_warnings():
        # torch-neuronx 2.9's format is TorchScript; newer PyTorch (a CPU test build) deprecates torch.jit.
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(path))

    def run(*inputs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            result = module(*(torch.from_numpy(array) for array in inputs))
        logits = result[0] if isinstance(result, (tuple, list)) else result
        return logits.numpy()  # type: ignore[no-any-return]

    return run


def in_chunks(run: Any, inputs: list[np.ndarray], batch: int) -> np.ndarray:
    """``run`` over ``inputs`` in chunks of exactly ``batch`` rows, the last padded with its own first row."""
    rows = inputs[0].shape[0]
    outputs = []
    for start in range(0, rows, batch):
        chunk = [array[start : start + batch] for array in inputs]
        real = chunk[0].shape[0]
        if real < batch:
            chunk = [np.concatenate([part, np.repeat(part[:1], batch - real, axis=0)]) for part in chunk]
        outputs.append(np.asarray(run(*chunk))[:real])
    return np.concatenate(outputs)


class TritonPythonModel:
    """One model instance on one NeuronCore."""

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        (group,) = config["instance_group"]
        count = int(group["count"])
        instance = instance_index(args["model_instance_name"], count)
        core = core_for(instance, os.environ.get(task_environment.NEURON_RT_VISIBLE_CORES), count)
        # Before the model loads: Neuron's runtime reads it once, when it starts.
        os.environ[task_environment.NEURON_RT_VISIBLE_CORES] = str(core)
        version_dir = Path(args["model_repository"]) / args["model_version"]
        record = json.loads((version_dir / model_signature.BUILD_RECORD).read_text())
        self.batch = int(record["batch"])
        self.sequence_length = int(record["sequenceLength"])
        self.run = load_traced(version_dir / MODEL_FILE)
        # Warm-up: the first inference on a NeuronCore loads the model onto it; do it before "ready".
        warm = [np.zeros((self.batch, self.sequence_length), dtype=np.int32) for _ in model_signature.INPUT_NAMES]
        in_chunks(self.run, warm, self.batch)

    def _inputs(self, request: Any) -> list[np.ndarray]:
        arrays = []
        for name in model_signature.INPUT_NAMES:
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is None:
                raise ValueError(f"missing input {name!r}: expected {', '.join(model_signature.INPUT_NAMES)}")
            array = tensor.as_numpy()
            if array.dtype != np.int32 or array.ndim != 2 or array.shape[1] != self.sequence_length:
                expected = f"int32 [batch, {self.sequence_length}]"
                raise ValueError(f"input {name!r} is {array.dtype}{list(array.shape)}: expected {expected}")
            arrays.append(array)
        if len({array.shape[0] for array in arrays}) != 1:
            raise ValueError("the inputs' batch sizes differ")
        return arrays

    def execute(self, requests: list[Any]) -> list[Any]:
        """Every request Triton's dynamic batcher gathered, run as one batch; each gets its own rows back."""
        checked: list[tuple[int, list[np.ndarray] | None, str]] = []
        for index, request in enumerate(requests):
            try:
                checked.append((index, self._inputs(request), ""))
            except ValueError as error:
                checked.append((index, None, str(error)))
        good = [inputs for _, inputs, _ in checked if inputs is not None]
        logits = (
            in_chunks(self.run, [np.concatenate(parts) for parts in zip(*good, strict=True)], self.batch)
            if good
            else None
        )
        responses = []
        offset = 0
        for _, inputs, problem in checked:
            if inputs is None:
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(problem)))
                continue
            rows = inputs[0].shape[0]
            assert logits is not None
            tensor = pb_utils.Tensor(model_signature.OUTPUT_NAME, logits[offset : offset + rows].astype(np.float32))
            responses.append(pb_utils.InferenceResponse(output_tensors=[tensor]))
            offset += rows
        return responses
