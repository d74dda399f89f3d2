"""The client on KServe v2 (Triton): the wire it writes, and every measurement against a stand-in on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from client import cli
from client.endpoint import StackEndpoint
from client.inputs import zero_inputs
from client.kserve import infer_body, infer_request
from components.model_server.apis.kserve_api import kserve_pb2
from tools.model_server_standin import Behaviour, LocalServer

# Field numbers of triton-inference-server/common protobuf/grpc_service.proto that this client's
# requests and the responses it reads depend on: a renumbered copy would talk past Triton.
UPSTREAM_FIELDS = {
    "ModelInferRequest": {
        "model_name": 1,
        "model_version": 2,
        "id": 3,
        "parameters": 4,
        "inputs": 5,
        "outputs": 6,
        "raw_input_contents": 7,
    },
    "ModelInferRequest.InferInputTensor": {"name": 1, "datatype": 2, "shape": 3, "parameters": 4, "contents": 5},
    "ModelInferRequest.InferRequestedOutputTensor": {"name": 1, "parameters": 2},
    "InferTensorContents": {"int_contents": 2, "fp32_contents": 6},
    "ModelInferResponse": {
        "model_name": 1,
        "model_version": 2,
        "id": 3,
        "parameters": 4,
        "outputs": 5,
        "raw_output_contents": 6,
    },
    "ModelInferResponse.InferOutputTensor": {"name": 1, "datatype": 2, "shape": 3, "parameters": 4, "contents": 5},
    "ModelReadyRequest": {"name": 1, "version": 2},
    "ModelReadyResponse": {"ready": 1},
}


def test_the_messages_keep_tritons_field_numbers() -> None:
    for path, fields in UPSTREAM_FIELDS.items():
        descriptor = kserve_pb2.DESCRIPTOR.message_types_by_name[path.split(".")[0]]
        for nested in path.split(".")[1:]:
            descriptor = descriptor.nested_types_by_name[nested]
        assert {name: descriptor.fields_by_name[name].number for name in fields} == fields, path
    service = kserve_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert service.full_name == "inference.GRPCInferenceService"
    assert {"ModelInfer", "ModelReady"} <= set(service.methods_by_name)


def test_the_grpc_request_carries_each_input_as_raw_little_endian_int32() -> None:
    inputs = zero_inputs(2, 4)
    inputs.tensors["input_ids"][:] = np.arange(8, dtype=np.int32).reshape(2, 4)

    request = kserve_pb2.ModelInferRequest.FromString(infer_request("bert", inputs).SerializeToString())

    assert [(t.name, t.datatype, list(t.shape)) for t in request.inputs] == [
        ("input_ids", "INT32", [2, 4]),
        ("input_mask", "INT32", [2, 4]),
        ("segment_ids", "INT32", [2, 4]),
    ]
    assert np.frombuffer(request.raw_input_contents[0], dtype="<i4").tolist() == list(range(8))
    assert [output.name for output in request.outputs] == ["logits"]


def test_the_rest_body_flattens_each_tensor_in_row_major_order() -> None:
    inputs = zero_inputs(2, 3)
    inputs.tensors["segment_ids"][1] = 1

    body = infer_body(inputs)

    (segments,) = [tensor for tensor in body["inputs"] if tensor["name"] == "segment_ids"]
    assert segments == {"name": "segment_ids", "shape": [2, 3], "datatype": "INT32", "data": [0, 0, 0, 1, 1, 1]}


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[LocalServer]:
    with LocalServer(getattr(request, "param", Behaviour())) as running:
        yield running


def target(server: LocalServer, protocol: str) -> str:
    return f"127.0.0.1:{server.grpc_port if protocol == 'grpc' else server.rest_port}"


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = cli.main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
@pytest.mark.parametrize("shape", [["--concurrency", "3"], ["--rate", "300"]], ids=["closed", "open"])
def test_every_measurement_works_on_kserve(
    server: LocalServer, capsys: pytest.CaptureFixture[str], protocol: str, shape: list[str]
) -> None:
    code, report = run_json(
        capsys, "--target", target(server, protocol), "--protocol", protocol, "--api", "kserve",
        "--requests", "30", "--batch", "2", "--seq-len", "16", "--warmup", "2", "--hourly-price", "0.76", *shape,
    )  # fmt: skip

    assert code == 0
    assert report["requests"] == 30
    assert report["errors"] == 0
    assert report["settings"]["api"] == "kserve"
    assert set(report["latency_ms"]) >= {"p50", "p99"}
    assert report["cost"]["per_million_inferences_usd"] > 0
    received = server.received[-1]
    assert received.protocol == f"kserve-{protocol}"
    assert received.inputs == {name: ("INT32", (2, 16)) for name in ("input_ids", "input_mask", "segment_ids")}


@pytest.mark.parametrize("protocol", ["grpc", "rest"])
@pytest.mark.parametrize(
    ("server", "code", "state"),
    [(Behaviour(), 0, "READY"), (Behaviour(state="LOADING"), 1, "NOT_READY")],
    indirect=["server"],
)
def test_status_reports_kserve_readiness(
    server: LocalServer, capsys: pytest.CaptureFixture[str], protocol: str, code: int, state: str
) -> None:
    result = cli.main(["status", "--target", target(server, protocol), "--protocol", protocol, "--api", "kserve"])

    assert result == code
    assert capsys.readouterr().out.strip() == f"bert: {state}"


def test_the_stack_tells_the_client_which_api_it_serves(
    server: LocalServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    found = StackEndpoint("127.0.0.1", server.grpc_port, server.rest_port, "bert", "inf2.xlarge", "kserve")
    monkeypatch.setattr("client.endpoint.resolve", lambda _name, model=None: found)

    code, report = run_json(capsys, "--stack", "BertInferentia", "--requests", "3", "--warmup", "0")

    assert code == 0
    assert report["settings"]["api"] == "kserve"
    assert server.received[-1].protocol == "kserve-grpc"


@pytest.mark.parametrize("server", [Behaviour(model_name="other")], indirect=True)
def test_an_unknown_model_fails_every_request_with_its_code(
    server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["--target", target(server, "grpc"), "--api", "kserve", "--requests", "3", "--warmup", "0"])

    assert code == 1
    assert "NOT_FOUND" in capsys.readouterr().err
