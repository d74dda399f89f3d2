"""A stand-in for Triton's ``triton_python_backend_utils``: the calls ``model.py`` makes, with Triton's
semantics, so the model runs in a test without a Triton server. numpy and the standard library only."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.scripts import load_script

TRITON_DIR = Path(__file__).resolve().parent.parent / "components" / "model_server" / "runtime"


class TritonModelException(Exception):
    pass


@dataclass
class Tensor:
    name: str
    array: np.ndarray[Any, Any]

    def as_numpy(self) -> np.ndarray[Any, Any]:
        return self.array


@dataclass
class TritonError:
    message: str


@dataclass
class InferenceRequest:
    inputs: list[Tensor]


@dataclass
class InferenceResponse:
    output_tensors: list[Tensor]
    error: TritonError | None = None


def get_input_tensor_by_name(request: InferenceRequest, name: str) -> Tensor | None:
    return next((tensor for tensor in request.inputs if tensor.name == name), None)


def triton_model(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """``model.py``, loaded with the stand-in in place of Triton's module."""
    utils = types.ModuleType("triton_python_backend_utils")
    for value in (TritonModelException, Tensor, TritonError, InferenceRequest, InferenceResponse):
        setattr(utils, value.__name__, value)
    utils.get_input_tensor_by_name = get_input_tensor_by_name  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", utils)
    return load_script(TRITON_DIR / "model.py", "triton_model_under_test")


def request(batch: int, sequence: int = 8, *, first: int = 1, drop: str | None = None) -> InferenceRequest:
    ids = np.full((batch, sequence), first, dtype=np.int32)
    tensors = {"input_ids": ids, "input_mask": np.ones_like(ids), "segment_ids": np.zeros_like(ids)}
    return InferenceRequest([Tensor(name, array) for name, array in tensors.items() if name != drop])
