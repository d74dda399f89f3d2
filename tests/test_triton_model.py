"""The Triton side of the image: ``model.py`` against a stand-in for Triton's Python-backend utilities, and
``serve_triton.py``'s model repository, configuration and start-up errors."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.scripts import image_bin
from tests.triton_standin import TRITON_DIR, TritonModelException, request, triton_model


@pytest.fixture
def model_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    return triton_model(monkeypatch)


@dataclass
class StandInTrace:
    """What ``load_traced`` returns for a model traced at ``batch``: it refuses any other batch, as a
    Neuron model traced for a fixed shape does, and answers each row with (sum of ids, row count)."""

    batch: int
    calls: list[int] = field(default_factory=list)

    def __call__(self, input_ids: Any, input_mask: Any, segment_ids: Any) -> np.ndarray[Any, Any]:
        assert input_ids.shape[0] == self.batch, f"traced for batch {self.batch}, called with {input_ids.shape[0]}"
        self.calls.append(input_ids.shape[0])
        return np.stack([input_ids.sum(axis=1), np.full(self.batch, self.batch)], axis=1).astype(np.float32)


def version_dir(tmp_path: Path, *, batch: int, sequence: int = 8) -> Path:
    folder = tmp_path / "bert" / "1"
    (folder / "assets.extra").mkdir(parents=True)
    (folder / "model.pt").write_bytes(b"traced")
    record = {"family": "inf2", "server": "triton", "batch": batch, "sequenceLength": sequence, "tiny": False}
    (folder / "assets.extra" / "model-build.json").write_text(json.dumps(record))
    return folder


def initialized(
    model_module: types.ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    *,
    batch: int = 4,
    count: int = 2,
    instance: str = "bert_1",
    visible: str | None = "4-5",
) -> tuple[Any, StandInTrace]:
    folder = version_dir(tmp_path, batch=batch)
    trace = StandInTrace(batch)
    loaded: list[Path] = []

    def load_traced(path: Path) -> StandInTrace:
        loaded.append(path)
        return trace

    monkeypatch.setattr(model_module, "load_traced", load_traced)
    # set first, so monkeypatch restores the variable model.py changes, whatever the case
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", visible or "")
    if visible is None:
        monkeypatch.delenv("NEURON_RT_VISIBLE_CORES")
    model = model_module.TritonPythonModel()
    model.initialize(
        {
            "model_config": json.dumps({"instance_group": [{"kind": "KIND_CPU", "count": count}]}),
            "model_instance_name": instance,
            "model_repository": str(folder.parent),
            "model_version": "1",
        }
    )
    assert loaded == [folder / "model.pt"]
    return model, trace


@pytest.mark.parametrize(
    "case",
    [
        ("4-5", 2, "bert_0", 4),
        ("4-5", 2, "bert_1", 5),
        # as Triton 2.51 names them (<model>_<group>_<n>: seen in make triton-check's server log)
        ("4-5", 2, "bert_0_1", 5),
        ("8-11", 4, "bert_3", 11),
        ("3", 1, "bert_0", 3),
        (None, 2, "bert_1", 1),
    ],
    ids=lambda case: f"{case[0]}-{case[2]}",
)
def test_each_instance_takes_one_neuron_core_of_the_tasks_range(
    model_module: types.ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    case: tuple[str | None, int, str, int],
) -> None:
    visible, count, instance, core = case

    initialized(model_module, monkeypatch, tmp_path, count=count, instance=instance, visible=visible)

    assert os.environ["NEURON_RT_VISIBLE_CORES"] == str(core)


def test_an_instance_beyond_the_tasks_cores_is_an_error(
    model_module: types.ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with pytest.raises(TritonModelException, match="3 instances need 3 NeuronCores"):
        initialized(model_module, monkeypatch, tmp_path, count=3, instance="bert_2", visible="4-5")


def test_it_is_ready_only_after_a_warm_up_at_the_traced_batch(
    model_module: types.ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, trace = initialized(model_module, monkeypatch, tmp_path, batch=4)

    assert trace.calls == [4]


@pytest.mark.parametrize("sizes", [[1], [4], [3, 2], [1, 1, 1, 1, 1, 1, 1, 1, 1]])
def test_gathered_requests_run_in_chunks_of_the_traced_batch_and_each_gets_its_own_rows(
    model_module: types.ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sizes: list[int]
) -> None:
    model, trace = initialized(model_module, monkeypatch, tmp_path, batch=4)
    trace.calls.clear()

    responses = model.execute([request(size, first=index + 1) for index, size in enumerate(sizes)])

    assert set(trace.calls) == {4}  # every call at the traced batch, the last padded
    assert len(trace.calls) == -(-sum(sizes) // 4)
    for index, (size, response) in enumerate(zip(sizes, responses, strict=True)):
        assert response.error is None
        (logits,) = response.output_tensors
        assert logits.name == "logits"
        assert logits.array.dtype == np.float32
        assert logits.array.shape == (size, 2)
        assert (logits.array[:, 0] == (index + 1) * 8).all()  # its own rows, not a neighbour's or the padding


def test_a_bad_request_fails_alone_and_the_others_are_answered(
    model_module: types.ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    model, _ = initialized(model_module, monkeypatch, tmp_path, batch=2)

    responses = model.execute([request(2), request(2, drop="segment_ids"), request(1, sequence=16), request(1)])

    assert [response.error is None for response in responses] == [True, False, False, True]
    assert "missing input 'segment_ids'" in responses[1].error.message
    assert "expected int32 [batch, 8]" in responses[2].error.message
    assert responses[3].output_tensors[0].array.shape == (1, 2)


# --- serve_triton.py ---


@pytest.fixture
def serve_triton() -> types.ModuleType:
    return importlib.import_module("components.model_server.runtime.serve_triton")


def test_the_repository_holds_the_config_and_each_version_with_model_py(
    serve_triton: types.ModuleType, tmp_path: Path
) -> None:
    base = version_dir(tmp_path / "models", batch=4, sequence=128).parent
    (base / "2").mkdir()  # a version without model.pt is not one
    root = serve_triton.write_repository(tmp_path / "repo", name="bert", base=base, instances=6, batching=None)

    model_dir = root / "bert"
    assert sorted(path.name for path in model_dir.iterdir()) == ["1", "config.pbtxt"]
    assert (model_dir / "1" / "model.pt").resolve() == (base / "1" / "model.pt").resolve()
    assert (model_dir / "1" / "model.py").read_text() == (TRITON_DIR / "model.py").read_text()
    config = (model_dir / "config.pbtxt").read_text()
    assert 'name: "bert"' in config
    assert 'backend: "python"' in config
    assert "instance_group [ { kind: KIND_CPU count: 6 } ]" in config
    for name in ("input_ids", "input_mask", "segment_ids"):
        assert f'{{ name: "{name}" data_type: TYPE_INT32 dims: [ 128 ] }}' in config
    assert '{ name: "logits" data_type: TYPE_FP32 dims: [ -1 ] }' in config
    assert "dynamic_batching" not in config


def test_tritons_dynamic_batcher_prefers_multiples_of_the_traced_batch(serve_triton: types.ModuleType) -> None:
    parameters = "max_batch_size { value: 12 }\nbatch_timeout_micros { value: 2000 }\nnum_batch_threads { value: 4 }\n"

    config = serve_triton.model_config(
        name="bert", instances=2, sequence=128, compiled=4, batching=serve_triton.batching_from(parameters)
    )

    assert "max_batch_size: 12" in config
    assert "preferred_batch_size: [ 4, 8, 12 ]" in config
    assert "max_queue_delay_microseconds: 2000" in config


def test_a_max_batch_that_is_no_multiple_of_the_traced_batch_is_refused(serve_triton: types.ModuleType) -> None:
    with pytest.raises(ValueError, match="compiled for batch 4"):
        serve_triton.model_config(
            name="bert",
            instances=1,
            sequence=128,
            compiled=4,
            batching={"max_batch_size": 6, "batch_timeout_micros": 0},
        )


@pytest.mark.parametrize("content", ["nothing", "no record"])
def test_a_missing_model_or_build_record_stops_the_start_in_one_line(
    serve_triton: types.ModuleType, tmp_path: Path, content: str
) -> None:
    base = tmp_path / "models"
    if content == "no record":
        (base / "1").mkdir(parents=True)
        (base / "1" / "model.pt").write_bytes(b"traced")

    with pytest.raises(serve_triton.StartError) as stopped:
        serve_triton.write_repository(tmp_path / "repo", name="bert", base=base, instances=1, batching=None)

    assert len(str(stopped.value).splitlines()) == 1
    assert ("no model in" if content == "nothing" else "no build record") in str(stopped.value)


def test_a_tiny_cpu_model_from_s3_stops_the_start_in_one_line(serve_triton: types.ModuleType, tmp_path: Path) -> None:
    folder = version_dir(tmp_path / "models", batch=1)
    (folder / "assets.extra" / "model-build.json").write_text(
        json.dumps({"family": "cpu", "server": "triton", "batch": 1, "sequenceLength": 8, "tiny": True})
    )

    with pytest.raises(serve_triton.StartError) as stopped:
        serve_triton.write_repository(
            tmp_path / "repo", name="bert", base=folder.parent, instances=1, batching=None, family="inf2"
        )

    (line,) = str(stopped.value).splitlines()
    assert "holds a model built for family cpu, server triton, tiny (random weights)" in line
    assert "`make model FAMILY=inf2 SERVER=triton`" in line


def test_the_entrypoint_claims_a_core_slot_first_then_starts_tritonserver(tmp_path: Path) -> None:
    """Run for real: a fake tritonserver on PATH prints its arguments and NEURON_RT_VISIBLE_CORES."""
    bin_dir = image_bin(TRITON_DIR / "Dockerfile.triton", tmp_path / "bin")
    fake = bin_dir / "tritonserver"
    fake.write_text('#!/bin/sh\necho "cores=$NEURON_RT_VISIBLE_CORES"\nfor arg in "$@"; do echo "$arg"; done\n')
    fake.chmod(0o755)
    base = version_dir(tmp_path / "models", batch=1, sequence=128).parent
    environment = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "MODEL_NAME": "bert",
        "MODEL_BASE_PATH": str(base),
        "GRPC_PORT": "8500",
        "REST_PORT": "8501",
        "TRITON_INSTANCES": "2",
        "MODEL_FAMILY": "inf2",  # the image's: the record's family must match (model_record.py)
        "TRITON_SHM_REGION_BYTES": str(3 * 1024 * 1024),
        "TRITON_MAX_BATCH": "64",
        "NEURON_CORES_PER_TASK": "2",
        "NEURON_CORE_SLOTS": "6",
        "NEURON_SLOT_DIR": str(tmp_path / "slots"),
        "TRITONSERVER": str(fake),
    }

    result = subprocess.run(
        [sys.executable, str(bin_dir / "serve_triton.py")],
        env={**{k: v for k, v in os.environ.items() if k != "NEURON_RT_VISIBLE_CORES"}, **environment},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )

    lines = result.stdout.splitlines()
    assert "cores=0-1" in lines
    assert "--http-port=8501" in lines
    assert "--grpc-port=8500" in lines
    # each instance's shared-memory region is sized for a full batch, and no request is larger
    assert "--backend-config=python,shm-default-byte-size=3145728" in lines
    repository = next(line.split("=", 1)[1] for line in lines if line.startswith("--model-repository="))
    config = (Path(repository) / "bert" / "config.pbtxt").read_text()
    assert "count: 2" in config
    assert "max_batch_size: 64\n" in config
