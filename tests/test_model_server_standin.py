"""The stand-in model server refuses a malformed tensor as TF Serving and Triton do: INVALID_ARGUMENT over
gRPC and 400 over REST, whatever the shape, the bytes or the JSON, never an unknown error or a 500; what
it accepts is BERT's [batch, sequence] int32 inputs, all of one shape, and it answers their batch."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.model_server.apis.kserve_api.kserve_pb2 import ModelInferRequest, ModelInferResponse
from components.model_server.apis.tfs_api.tensorflow_serving_pb2 import DataType, PredictRequest, PredictResponse
from components.model_server.runtime.model_signature import INPUT_NAMES
from tools.loopback import LOOPBACK
from tools.model_server_standin import LocalServer

shapes = st.lists(st.integers(-1, 3), max_size=3).map(tuple)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=12,
)


@st.composite
def tensors(draw: st.DrawFn) -> list[tuple[tuple[int, ...], bytes]]:
    """Each input's shape and raw bytes: often a well-formed [batch, sequence] tensor, or one input off."""
    shape = draw(st.sampled_from([(2, 3), (1, 4)]) | shapes)
    exact = 4 * math.prod(shape) if min(shape, default=1) >= 0 else 0
    drawn = []
    for _ in INPUT_NAMES:
        own_shape = draw(st.just(shape) | shapes)
        content = draw(st.just(bytes(exact)) | st.binary(max_size=2 * exact + 5))
        drawn.append((own_shape, content))
    return drawn


def well_formed(drawn: list[tuple[tuple[int, ...], bytes]]) -> bool:
    shape = drawn[0][0]
    return (
        len(shape) == 2
        and min(shape) >= 0
        and all(own_shape == shape and len(content) == 4 * math.prod(shape) for own_shape, content in drawn)
    )


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
@given(drawn=tensors())
def test_any_tf_serving_tensor_is_answered_or_invalid(channel: grpc.Channel, drawn: Any) -> None:
    request = PredictRequest()
    request.model_spec.name = "bert"
    for name, (shape, content) in zip(INPUT_NAMES, drawn, strict=True):
        tensor = request.inputs[name]
        tensor.dtype = DataType.DT_INT32
        for size in shape:
            tensor.tensor_shape.dim.add(size=size)
        tensor.tensor_content = content

    response = answered_or_refused(channel, "/tensorflow.serving.PredictionService/Predict", request, PredictResponse)

    assert (response is not None) == well_formed(drawn)
    if response is not None:
        assert [dim.size for dim in response.outputs["logits"].tensor_shape.dim] == [drawn[0][0][0], 2]


@settings(max_examples=150, deadline=None)
@given(drawn=tensors())
def test_any_kserve_tensor_is_answered_or_invalid(channel: grpc.Channel, drawn: Any) -> None:
    request = ModelInferRequest(model_name="bert")
    for name, (shape, content) in zip(INPUT_NAMES, drawn, strict=True):
        request.inputs.add(name=name, datatype="INT32", shape=list(shape))
        request.raw_input_contents.append(content)

    response = answered_or_refused(channel, "/inference.GRPCInferenceService/ModelInfer", request, ModelInferResponse)

    assert (response is not None) == well_formed(drawn)
    if response is not None:
        assert list(response.outputs[0].shape) == [drawn[0][0][0], 2]


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


@settings(max_examples=100, deadline=None)
@given(shape=st.sampled_from([[2, 3]]) | st.lists(st.integers(-1, 3), max_size=3) | JSON_VALUES, data=JSON_VALUES)
def test_any_kserve_rest_body_is_answered_or_400(server: LocalServer, shape: Any, data: Any) -> None:
    body = {"inputs": [{"name": name, "datatype": "INT32", "shape": shape, "data": data} for name in INPUT_NAMES]}

    status, document = post(server, "/v2/models/bert/infer", body)

    assert status in (200, 400), document
    if status == 200:
        assert len(shape) == 2
        assert np.asarray(data).size == math.prod(shape)
        assert document["outputs"][0]["shape"] == [shape[0], 2]


@settings(max_examples=100, deadline=None)
@given(values=st.lists(JSON_VALUES, min_size=len(INPUT_NAMES), max_size=len(INPUT_NAMES)))
def test_any_tf_serving_rest_body_is_answered_or_400(server: LocalServer, values: list[Any]) -> None:
    body = {"inputs": dict(zip(INPUT_NAMES, values, strict=True))}

    status, document = post(server, "/v1/models/bert:predict", body)

    assert status in (200, 400), document
    if status == 200:
        shapes_sent = {np.asarray(value).shape for value in values}
        assert len(shapes_sent) == 1
        (shape,) = shapes_sent
        assert len(shape) == 2
        assert len(document["outputs"]["logits"]) == shape[0]
