"""The client's messages are TF Serving's on the wire: field numbers, types and method paths.

Checked against a tiny protobuf wire decoder written here from the encoding rules, so the check
does not trust the generated code it is checking.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from client.inputs import zero_inputs
from client.transport import PREDICT_METHOD, STATUS_METHOD, predict_request
from components.model_server.apis.tfs_api.tensorflow_serving_pb2 import (
    GetModelStatusResponse,
    ModelVersionStatus,
    PredictResponse,
)
from tests.conftest import ROOT

VARINT, I64, LEN, I32 = 0, 1, 2, 5
Fields = list[tuple[int, int, object]]


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def decode(data: bytes) -> Fields:
    """(field number, wire type, value) for each field, in order; LEN values stay bytes."""
    fields: Fields = []
    at = 0
    while at < len(data):
        tag, at = _varint(data, at)
        number, wire_type = tag >> 3, tag & 7
        value: object
        if wire_type == VARINT:
            value, at = _varint(data, at)
        elif wire_type == LEN:
            length, at = _varint(data, at)
            value, at = data[at : at + length], at + length
        elif wire_type == I32:
            value, at = data[at : at + 4], at + 4
        elif wire_type == I64:
            value, at = data[at : at + 8], at + 8
        else:
            raise AssertionError(f"unexpected wire type {wire_type}")
        fields.append((number, wire_type, value))
    return fields


def only(fields: Fields, number: int) -> object:
    (value,) = [value for n, _, value in fields if n == number]
    return value


def test_method_paths_are_tf_servings() -> None:
    assert PREDICT_METHOD == "/tensorflow.serving.PredictionService/Predict"
    assert STATUS_METHOD == "/tensorflow.serving.ModelService/GetModelStatus"


def test_predict_request_uses_tf_servings_field_numbers() -> None:
    # GIVEN a batch of 2, sequence length 3, input_ids counting up
    inputs = zero_inputs(2, 3)
    inputs.tensors["input_ids"][:] = np.arange(6, dtype=np.int32).reshape(2, 3)

    wire = decode(predict_request("bert", "serving_default", inputs).SerializeToString())

    # model_spec = 1 { name = 1, signature_name = 3 }
    spec = decode(only(wire, 1))  # type: ignore[arg-type]
    assert (only(spec, 1), only(spec, 3)) == (b"bert", b"serving_default")
    # inputs = 2: one map entry { key = 1, value = 2 } per input
    entries = {only(decode(v), 1): decode(only(decode(v), 2)) for n, _, v in wire if n == 2}  # type: ignore[arg-type]
    assert set(entries) == {b"input_ids", b"input_mask", b"segment_ids"}
    tensor = entries[b"input_ids"]
    assert only(tensor, 1) == 3  # dtype = 1: DT_INT32
    dims = [only(decode(v), 1) for n, _, v in decode(only(tensor, 2)) if n == 2]  # type: ignore[arg-type]
    assert dims == [2, 3]  # tensor_shape = 2 { dim = 2 { size = 1 } }
    content = only(tensor, 4)  # tensor_content = 4: little-endian int32
    assert content == np.arange(6, dtype="<i4").tobytes()


def test_status_response_from_hand_made_bytes_reads_as_available() -> None:
    # model_version_status = 1 { version = 1: 7, state = 2: 30 (AVAILABLE) }
    status = bytes([0x08, 7, 0x10, 30])
    response = GetModelStatusResponse.FromString(bytes([0x0A, len(status)]) + status)

    (version,) = response.model_version_status
    assert (version.version, ModelVersionStatus.State.Name(version.state)) == (7, "AVAILABLE")
    assert [ModelVersionStatus.State.Value(s) for s in ("LOADING", "AVAILABLE", "END")] == [20, 30, 50]


def test_predict_response_outputs_is_field_one_and_model_spec_field_two() -> None:
    # outputs = 1 { key "logits", value { dtype = 1: DT_FLOAT } }, model_spec = 2 { name "bert" }
    tensor = bytes([0x08, 1])
    entry = bytes([0x0A, 6]) + b"logits" + bytes([0x12, len(tensor)]) + tensor
    spec = bytes([0x0A, 4]) + b"bert"
    response = PredictResponse.FromString(bytes([0x0A, len(entry)]) + entry + bytes([0x12, len(spec)]) + spec)

    assert list(response.outputs) == ["logits"]
    assert response.outputs["logits"].dtype == 1
    assert response.model_spec.name == "bert"


@pytest.mark.parametrize(
    "proto",
    [
        "components/model_server/apis/tfs_api/tensorflow_serving.proto",
        "components/model_server/apis/kserve_api/kserve.proto",
    ],
)
def test_generated_module_matches_the_proto(tmp_path: Path, proto: str) -> None:
    # `make proto` output is committed; regenerating must change nothing
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        "-I",
        ".",
        f"--python_out={tmp_path}",
        f"--pyi_out={tmp_path}",
    ]
    subprocess.run([*command, proto], cwd=ROOT, check=True, timeout=60)
    stem = proto.removesuffix(".proto")
    for suffix in ("_pb2.py", "_pb2.pyi"):
        generated = tmp_path / f"{stem}{suffix}"
        committed = ROOT / f"{stem}{suffix}"
        assert generated.read_text() == committed.read_text(), f"run `make proto`: {committed.name} is stale"
