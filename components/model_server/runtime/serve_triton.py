"""The Triton image's entrypoint: claim a core slot, write the model repository, start tritonserver.

The repository is written at start, in a temporary folder, because part of it is only known then:
the model's versions (baked into the image or copied from S3 by the task), the batch the newest was
traced for (its build record), the task's NeuronCores (one model instance each), and the batching
setting. Standard library only; it runs on the image's Python.

    env: MODEL_NAME, MODEL_BASE_PATH, GRPC_PORT, REST_PORT, TRITON_INSTANCES, TRITON_SHM_REGION_BYTES,
         TRITON_MAX_BATCH, [BATCHING_PARAMETERS], [NEURON_CORES_PER_TASK ... for the core slot],
         TRITONSERVER, TRITON_BACKENDS
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING or __package__:  # imported as a package module (the CDK app, the tests, mypy)
    from . import batch_sizes, model_record, model_signature, task_environment
else:  # run in the image, beside its sibling modules
    import batch_sizes
    import model_record
    import model_signature
    import task_environment
MODEL_FILE = "model.pt"
# What the model's version folders need beside model.py in Triton's repository: the names it reads.
NAME_MODULES = ("model_signature.py", "task_environment.py")
# The backend's own default region and growth step (python_backend README, "Managing Shared Memory").
SHM_GROWTH_BYTES = 1024 * 1024
_PARAMETER = re.compile(r"(\w+)\s*\{\s*value:\s*(\d+)\s*\}")


class StartError(RuntimeError):
    pass


def versions(base: Path) -> list[Path]:
    children = list(base.iterdir()) if base.is_dir() else []
    found = [child for child in children if child.name.isdigit() and (child / MODEL_FILE).is_file()]
    if not found:
        raise StartError(f"no model in {base}: expected <version>/{MODEL_FILE} (make model FAMILY=inf2 SERVER=triton)")
    return sorted(found, key=lambda child: int(child.name))


def sequence_length(version: Path) -> int:
    import json  # noqa: PLC0415

    return int(json.loads((version / model_signature.BUILD_RECORD).read_text())["sequenceLength"])


def model_config(
    *,
    name: str,
    instances: int,
    sequence: int,
    compiled: int,
    batching: dict[str, int] | None,
    max_batch: int = task_environment.TRITON_MAX_REQUEST_BATCH,
) -> str:
    """config.pbtxt: the signature, one CPU-kind instance per NeuronCore, and batching agreed with the trace.

    With ``batching`` the dynamic batcher prefers multiples of the compiled batch up to
    ``maxBatchSize`` (which must be one), waiting at most ``batchTimeoutMicros``; without, each
    request of up to ``max_batch`` rows (what the instances' shared memory holds) runs as it comes,
    in chunks of the compiled batch (model.py).
    """
    inputs = ",\n".join(
        f'  {{ name: "{input_name}" data_type: TYPE_INT32 dims: [ {sequence} ] }}'
        for input_name in model_signature.INPUT_NAMES
    )
    lines = [
        f'name: "{name}"',
        'backend: "python"',
        f"max_batch_size: {batching['max_batch_size'] if batching else max_batch}",
        f"input [\n{inputs}\n]",
        f'output [\n  {{ name: "{model_signature.OUTPUT_NAME}" data_type: TYPE_FP32 dims: [ -1 ] }}\n]',
        f"instance_group [ {{ kind: KIND_CPU count: {instances} }} ]",
    ]
    if batching:
        preferred = ", ".join(
            str(size) for size in batch_sizes.allowed_batch_sizes(compiled, batching["max_batch_size"])
        )
        lines.append(
            "dynamic_batching {\n"
            f"  preferred_batch_size: [ {preferred} ]\n"
            f"  max_queue_delay_microseconds: {batching['batch_timeout_micros']}\n"
            "}"
        )
    return "\n".join(lines) + "\n"


def batching_from(parameters: str | None) -> dict[str, int] | None:
    """The task's BATCHING_PARAMETERS (TF Serving's text format, the one setting for both servers)."""
    if not parameters:
        return None
    return {name: int(value) for name, value in _PARAMETER.findall(parameters)}


def write_repository(
    root: Path,
    *,
    name: str,
    base: Path,
    instances: int,
    batching: dict[str, int] | None,
    max_batch: int = task_environment.TRITON_MAX_REQUEST_BATCH,
    family: str | None = None,
) -> Path:
    """``root/<name>/config.pbtxt`` and one folder per version: its files linked, model.py beside them.

    ``family``, the image's (MODEL_FAMILY), refuses a model built for another family or a TINY one."""
    found = versions(base)
    problem = model_record.refusal(base, family, "triton") if family else None
    if problem:
        raise StartError(problem)
    compiled = batch_sizes.compiled_batch(base)
    if compiled is None:
        raise StartError(f"{found[-1]} has no build record ({model_signature.BUILD_RECORD}): build it with make model")
    model_dir = root / name
    model_dir.mkdir(parents=True)
    config = model_config(
        name=name,
        instances=instances,
        sequence=sequence_length(found[-1]),
        compiled=compiled,
        batching=batching,
        max_batch=max_batch,
    )
    (model_dir / "config.pbtxt").write_text(config)
    for version in found:
        target = model_dir / version.name
        target.mkdir()
        for entry in version.iterdir():
            (target / entry.name).symlink_to(entry)
        for script in ("model.py", *NAME_MODULES):
            shutil.copy2(Path(__file__).resolve().parent / script, target / script)
    return root


def main() -> int:
    if os.environ.get(task_environment.NEURON_CORES_PER_TASK) and not os.environ.get(
        task_environment.NEURON_RT_VISIBLE_CORES
    ):
        slot_script = Path(__file__).resolve().parent / "neuron_slot.py"
        os.execvp(sys.executable, [sys.executable, str(slot_script), sys.executable, *sys.argv])
    name = os.environ["MODEL_NAME"]
    try:
        repository = write_repository(
            Path(tempfile.mkdtemp(prefix="triton-models-")),
            name=name,
            base=Path(os.environ["MODEL_BASE_PATH"]),
            instances=int(os.environ[task_environment.TRITON_INSTANCES]),
            batching=batching_from(os.environ.get("BATCHING_PARAMETERS")),
            max_batch=int(os.environ.get(task_environment.TRITON_MAX_BATCH, task_environment.TRITON_MAX_REQUEST_BATCH)),
            family=os.environ.get(task_environment.MODEL_FAMILY),
        )
    except (StartError, ValueError) as error:
        print(f"ERROR: {error}", file=sys.stderr, flush=True)
        return 1
    server = os.environ.get("TRITONSERVER", "tritonserver")
    arguments = [
        server,
        f"--model-repository={repository}",
        f"--backend-directory={os.environ.get('TRITON_BACKENDS', '/opt/tritonserver/backends')}",
        f"--http-port={os.environ['REST_PORT']}",
        f"--grpc-port={os.environ['GRPC_PORT']}",
        f"--metrics-port={task_environment.TRITON_METRICS_PORT}",
        "--model-control-mode=none",
    ]
    region = os.environ.get(task_environment.TRITON_SHM_REGION_BYTES)
    if region:
        # Each instance's region holds a full batch from the start, within what the task's /dev/shm holds.
        arguments += [
            f"--backend-config=python,shm-default-byte-size={region}",
            f"--backend-config=python,shm-growth-byte-size={SHM_GROWTH_BYTES}",
        ]
    os.execvp(server, arguments)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
