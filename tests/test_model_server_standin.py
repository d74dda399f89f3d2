"""The stand-in model server refuses a malformed tensor as TF Serving and Triton do: INVALID_ARGUMENT over
gRPC and 400 over REST, never an unknown error or a 500. What it accepts is BERT's [batch, sequence]
int32 inputs, all of one shape, in either of each API's encodings, and it answers their batch.

Each example is a well-formed request, or one with exactly one fault in one input; the stand-in must
answer the first and refuse the second. Arbitrary JSON bodies must get a 200 or a 400, never a 500.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import grpc
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.model_server.apis.kserve_api.kserve_pb2 import ModelInferRequest, ModelInferResponse
from components.model_server.apis.messages import INFER_METHOD, PREDICT_METHOD
from components.model_server.apis.tfs_api.tensorflow_serving_pb2 import DataType, PredictRequest, PredictResponse
from components.model_server.runtime.model_signature import INPUT_NAMES
from tools.loopback import LOOPBACK
from tools.model_server_standin import LocalServer

INT32 = st.integers(-(2**31), 2**31 - 1)
# The faults a request can carry in one input; "none" is a well-formed request.
FAULTS = ("none", "rank", "negative size", "another shape", "too many values", "bytes not int32s")
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=12,
)


@dataclass(frozen=True)
class Tensor:
    shape: tuple[int, ...]
    values: tuple[int, ...]
    extra_bytes: bytes = b""  # raw encodings only: bytes after the values


@dataclass(frozen=True)
class Drawn:
    tensors: tuple[Tensor, ...]
    fault: str
    raw: bool  # tensor_content / raw_input_contents, else int_val / int_contents

    @property
    def batch(self) -> int:
        return self.tensors[0].shape[0]


@st.composite
def requests(draw: st.DrawFn, *, min_batch: int = 0) -> Drawn:
    """Three [batch, sequence] inputs, then at most one fault put into one of them."""
    batch, sequence = draw(st.integers(min_batch, 3)), draw(st.integers(1, 4))

    def values(count: int) -> tuple[int, ...]:
        return tuple(draw(st.lists(INT32, min_size=count, max_size=count)))

    tensors = [Tensor((batch, sequence), values(batch * sequence)) for _ in INPUT_NAMES]
    fault = draw(st.sampled_from(FAULTS))
    raw = fault == "bytes not int32s" or draw(st.booleans())
    victim = draw(st.integers(0, len(tensors) - 1))
    tensor = tensors[victim]
    if fault == "rank":
        shape = draw(st.sampled_from([(batch * sequence,), (batch, sequence, 1), (1, batch, sequence)]))
        tensor = replace(tensor, shape=shape)
    elif fault == "negative size":
        tensor = Tensor((-1, sequence), ())
    elif fault == "another shape":
        tensor = Tensor((batch + 1, sequence), values((batch + 1) * sequence))
    elif fault == "too many values":
        tensor = replace(tensor, values=(*tensor.values, 0))
    elif fault == "bytes not int32s":
        tensor = replace(tensor, extra_bytes=bytes(draw(st.integers(1, 3))))
    tensors[victim] = tensor
    return Drawn(tuple(tensors), fault, raw)


def raw_bytes(tensor: Tensor) -> bytes:
    return np.array(tensor.values, dtype="<i4").tobytes() + tensor.extra_bytes


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


@pytest.fixture(scope="module")
def channel(server: LocalServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"{LOOPBACK}:{server.grpc_port}") as opened:
        yield opened


def answered_or_refused(channel: grpc.Channel, method: str, request: Any, response_type: Any) -> Any:
    """The answer to ``method``, or None when the stand-in refused the request as invalid; any other code fails."""
    call = channel.unary_unary(
        method, request_serializer=type(request).SerializeToString, response_deserializer=response_type.FromString
    )
    try:
        return call(request, timeout=10)
    except grpc.RpcError as error:
        refused = error
    assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.details()
    return None


@settings(max_examples=150, deadline=None)
@given(drawn=requests())
def test_tf_serving_requests_are_answered_when_well_formed_and_invalid_otherwise(
    channel: grpc.Channel, drawn: Drawn
) -> None:
    request = PredictRequest()
    request.model_spec.name = "bert"
    for name, tensor in zip(INPUT_NAMES, drawn.tensors, strict=True):
        proto = request.inputs[name]
        proto.dtype = DataType.DT_INT32
        for size in tensor.shape:
            proto.tensor_shape.dim.add(size=size)
        if drawn.raw:
            proto.tensor_content = raw_bytes(tensor)
        else:
            proto.int_val.extend(tensor.values)

    response = answered_or_refused(channel, PREDICT_METHOD, request, PredictResponse)

    assert (response is not None) == (drawn.fault == "none")
    if response is not None:
        assert [dim.size for dim in response.outputs["logits"].tensor_shape.dim] == [drawn.batch, 2]


@settings(max_examples=150, deadline=None)
@given(drawn=requests())
def test_kserve_requests_are_answered_when_well_formed_and_invalid_otherwise(
    channel: grpc.Channel, drawn: Drawn
) -> None:
    request = ModelInferRequest(model_name="bert")
    for name, tensor in zip(INPUT_NAMES, drawn.tensors, strict=True):
        proto = request.inputs.add(name=name, datatype="INT32", shape=list(tensor.shape))
        if drawn.raw:
            request.raw_input_contents.append(raw_bytes(tensor))
        else:
            proto.contents.int_contents.extend(tensor.values)

    response = answered_or_refused(channel, INFER_METHOD, request, ModelInferResponse)

    assert (response is not None) == (drawn.fault == "none")
    if response is not None:
        assert list(response.outputs[0].shape) == [drawn.batch, 2]


def post(server: LocalServer, path: str, body: object) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"http://{LOOPBACK}:{server.rest_port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


# REST has no raw bytes, and a batch of 0 rows is `[]`, which has no sequence length: batches from 1.
REST_REQUESTS = requests(min_batch=1).filter(lambda drawn: drawn.fault != "bytes not int32s")


@settings(max_examples=100, deadline=None)
@given(drawn=REST_REQUESTS)
def test_tf_serving_rest_bodies_are_answered_when_well_formed_and_400_otherwise(
    server: LocalServer, drawn: Drawn
) -> None:
    def rows(tensor: Tensor) -> Any:
        if min(tensor.shape) < 0 or len(tensor.values) != math.prod(tensor.shape):
            return list(tensor.values)  # no array has that shape: sent flat, a rank the model does not take
        return np.array(tensor.values, dtype=np.int64).reshape(tensor.shape).tolist()

    body = {"inputs": {name: rows(tensor) for name, tensor in zip(INPUT_NAMES, drawn.tensors, strict=True)}}

    status, document = post(server, "/v1/models/bert:predict", body)

    assert status == (200 if drawn.fault == "none" else 400), document
    if status == 200:
        assert len(document["outputs"]["logits"]) == drawn.batch


@settings(max_examples=100, deadline=None)
@given(drawn=REST_REQUESTS)
def test_kserve_rest_bodies_are_answered_when_well_formed_and_400_otherwise(server: LocalServer, drawn: Drawn) -> None:
    body = {
        "inputs": [
            {"name": name, "datatype": "INT32", "shape": list(tensor.shape), "data": list(tensor.values)}
            for name, tensor in zip(INPUT_NAMES, drawn.tensors, strict=True)
        ]
    }

    status, document = post(server, "/v2/models/bert/infer", body)

    assert status == (200 if drawn.fault == "none" else 400), document
    if status == 200:
        assert document["outputs"][0]["shape"] == [drawn.batch, 2]


@settings(max_examples=100, deadline=None)
@given(shape=JSON_VALUES, data=JSON_VALUES, inputs=st.lists(JSON_VALUES, min_size=3, max_size=3))
def test_any_json_gets_an_answer_or_a_400(server: LocalServer, shape: Any, data: Any, inputs: list[Any]) -> None:
    kserve = {"inputs": [{"name": name, "datatype": "INT32", "shape": shape, "data": data} for name in INPUT_NAMES]}
    tf_serving = {"inputs": dict(zip(INPUT_NAMES, inputs, strict=True))}

    assert post(server, "/v2/models/bert/infer", kserve)[0] in (200, 400)
    assert post(server, "/v1/models/bert:predict", tf_serving)[0] in (200, 400)
