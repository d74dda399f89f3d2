"""Triton's model for real on CPU: `make model FAMILY=cpu SERVER=triton TINY=1` (PyTorch's trace), loaded by
``model.py`` behind the backend stand-in. Runs in the model build's venv (.model-venv), as `make test` runs it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from tests.model.conftest import ROOT
from tests.triton_standin import request, triton_model


@pytest.fixture
def model_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    return triton_model(monkeypatch)


@pytest.fixture(scope="session")
def traced_on_cpu(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CPU build of Triton's model (PyTorch's TorchScript trace), through make model's entry point."""
    out = tmp_path_factory.mktemp("triton-model")
    arguments = ["--family", "cpu", "--server", "triton", "--tiny", "1", "--batch", "2", "--seq", "16"]
    # its own process, as `make model` runs it: the build keeps TensorFlow out of that process only
    built = subprocess.run(
        [sys.executable, "-m", "modelbuild", *arguments, "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    return out / "1"


def test_make_models_triton_build_serves_through_model_py(
    model_module: types.ModuleType, monkeypatch: pytest.MonkeyPatch, traced_on_cpu: Path
) -> None:
    record = json.loads((traced_on_cpu / "assets.extra" / "model-build.json").read_text())
    assert (record["server"], record["batch"], record["sequenceLength"]) == ("triton", 2, 16)
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "0")
    model = model_module.TritonPythonModel()
    model.initialize(
        {
            "model_config": json.dumps({"instance_group": [{"kind": "KIND_CPU", "count": 1}]}),
            "model_instance_name": "bert_0",
            "model_repository": str(traced_on_cpu.parent),
            "model_version": "1",
        }
    )

    # three requests gathered: 1 + 3 + 1 rows, run in chunks of the traced batch of 2, the last padded
    responses = model.execute([request(1, 16, first=5), request(3, 16, first=7), request(1, 16, first=5)])

    logits = [response.output_tensors[0].array for response in responses]
    assert [array.shape for array in logits] == [(1, 2), (3, 2), (1, 2)]
    assert np.allclose(logits[0], logits[2], atol=1e-6)  # the same row answers the same, wherever it was placed
    assert np.allclose(logits[1], logits[1][0], atol=1e-6)
    assert not np.allclose(logits[0], logits[1][0])


def test_model_check_asks_a_cpu_traced_model_what_the_client_would(traced_on_cpu: Path) -> None:
    from modelbuild.check import check_command  # noqa: PLC0415

    answered = check_command(out=str(traced_on_cpu.parent), text="The company said", pair="profit rose")

    assert answered.startswith(f"{traced_on_cpu}: 'The company said' / 'profit rose' -> logits [")
    assert answered.split("class ")[1] in {"0", "1"}


def test_model_check_says_which_models_it_runs(traced_on_cpu: Path, tmp_path: Path) -> None:
    from modelbuild.check import check_command  # noqa: PLC0415
    from modelbuild.options import ModelBuildError  # noqa: PLC0415

    neuron = tmp_path / "models" / "1"
    shutil.copytree(traced_on_cpu, neuron)
    record = neuron / "assets.extra" / "model-build.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "family": "inf2"}))

    with pytest.raises(ModelBuildError, match=r"runs SavedModels and CPU builds of model\.pt"):
        check_command(out=str(neuron.parent), text="", pair="")
