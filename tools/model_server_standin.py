"""A TensorFlow Serving (and Triton) stand-in on loopback, for the client's tests and ``make bench-local``.

It speaks the same gRPC methods and REST endpoints as TF Serving, and Triton's KServe v2 ones
(``ModelInfer``, ``ModelReady``, ``/v2/models/<m>/infer`` and ``/ready``), checks requests the way TF
Serving does (model name, int32 tensors of a consistent shape), waits a fixed model time, and can
misbehave on purpose: fail every Nth request, answer with garbage, or report the model LOADING.
It records what it received so tests can check the client's side of the wire.

    python -m tools.model_server_standin --grpc-port 8500 --rest-port 8501 --model-time-ms 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import signal
import threading
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np
from aiohttp import web

from components.model_server.apis.kserve_api.kserve_pb2 import (
    ModelInferRequest,
    ModelInferResponse,
    ModelReadyRequest,
    ModelReadyResponse,
)
from components.model_server.apis.messages import tensor_proto
from components.model_server.apis.tfs_api.tensorflow_serving_pb2 import (
    DataType,
    GetModelStatusRequest,
    GetModelStatusResponse,
    ModelSpec,
    ModelVersionStatus,
    PredictRequest,
    PredictResponse,
)
from tools.loopback import LOOPBACK

GARBAGE = b"\x0a\x05\xff\xff\xff\xff\xff"


@dataclass
class Behaviour:
    """How the stand-in answers."""

    model_name: str = "bert"
    model_time: float = 0.0
    error_every: int = 0
    garbage: bool = False
    state: str = "AVAILABLE"


@dataclass(frozen=True)
class Received:
    """What one Predict call carried, as the server parsed it."""

    protocol: str
    model: str
    signature: str
    inputs: dict[str, tuple[str, tuple[int, ...]]]
    first_row: dict[str, tuple[int, ...]]


class InvalidRequest(ValueError):
    pass


@dataclass
class _Counters:
    predicts: int = 0
    received: deque[Received] = field(default_factory=lambda: deque(maxlen=10_000))


def _checked_shape(name: str, shape: tuple[int, ...], others: dict[str, tuple[str, tuple[int, ...]]]) -> None:
    """As the BERT signature takes its inputs: each [batch, sequence], all of one shape (TF Serving and
    Triton answer anything else INVALID_ARGUMENT)."""
    if len(shape) != 2 or min(shape) < 0:
        raise InvalidRequest(f"input {name}: expects shape [batch, sequence], got {list(shape)}")
    for other, (_, other_shape) in others.items():
        if other_shape != shape:
            raise InvalidRequest(f"input {name}: shape {list(shape)}, but {other} has {list(other_shape)}")


def _int32s(name: str, content: bytes) -> np.ndarray[Any, np.dtype[np.int32]]:
    """Raw little-endian int32 values, as TF Serving's tensor_content and Triton's raw_input_contents hold them."""
    if len(content) % 4:
        raise InvalidRequest(f"input {name}: {len(content)} bytes is no whole number of int32 values")
    return np.frombuffer(content, dtype="<i4")


@contextlib.asynccontextmanager
async def _grpc_errors(context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[None]:
    """A refused request as the gRPC status a model server answers with: unknown model NOT_FOUND, a bad
    request INVALID_ARGUMENT, a dropped one UNAVAILABLE (``context.abort`` ends the call)."""
    try:
        yield
    except LookupError as error:
        await context.abort(grpc.StatusCode.NOT_FOUND, str(error))
    except InvalidRequest as error:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
    except ConnectionAbortedError as error:
        await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))


def _check_grpc_inputs(
    request: PredictRequest,
) -> tuple[dict[str, tuple[str, tuple[int, ...]]], dict[str, tuple[int, ...]]]:
    """As TF Serving checks a PredictRequest: int32 tensors whose tensor_content (or int_val) fills their
    shape. Returns each input's type and shape, and its first row."""
    seen: dict[str, tuple[str, tuple[int, ...]]] = {}
    rows: dict[str, tuple[int, ...]] = {}
    for name, tensor in request.inputs.items():
        shape = tuple(dim.size for dim in tensor.tensor_shape.dim)
        if tensor.dtype != DataType.DT_INT32:
            raise InvalidRequest(f"input {name}: expects int32, got {DataType.Name(tensor.dtype)}")
        _checked_shape(name, shape, seen)
        values = _int32s(name, tensor.tensor_content) if tensor.tensor_content else tensor.int_val
        if len(values) != math.prod(shape):
            raise InvalidRequest(f"input {name}: {len(values)} values for shape {list(shape)}")
        seen[name] = ("DT_INT32", shape)
        # tolist() converts in C: the stand-in shares the machine with the client it measures, so it spends
        # as little per request as it can.
        first = values[: shape[-1]]
        rows[name] = tuple(first.tolist() if isinstance(first, np.ndarray) else first)
    if not seen:
        raise InvalidRequest("no inputs")
    return seen, rows


def _check_kserve_inputs(
    request: ModelInferRequest,
) -> tuple[dict[str, tuple[str, tuple[int, ...]]], dict[str, tuple[int, ...]]]:
    """As Triton checks a ModelInferRequest: INT32 tensors whose raw bytes (or int_contents) fill their shape."""
    if not request.inputs:
        raise InvalidRequest("no inputs")
    if request.raw_input_contents and len(request.raw_input_contents) != len(request.inputs):
        raise InvalidRequest("raw_input_contents must hold one entry per input")
    seen: dict[str, tuple[str, tuple[int, ...]]] = {}
    rows: dict[str, tuple[int, ...]] = {}
    for index, tensor in enumerate(request.inputs):
        shape = tuple(int(size) for size in tensor.shape)
        if tensor.datatype != "INT32":
            raise InvalidRequest(f"input {tensor.name}: expects INT32, got {tensor.datatype}")
        _checked_shape(tensor.name, shape, seen)
        values = (
            _int32s(tensor.name, request.raw_input_contents[index])
            if request.raw_input_contents
            else np.array(tensor.contents.int_contents, dtype=np.int32)
        )
        if values.size != math.prod(shape):
            raise InvalidRequest(f"input {tensor.name}: {values.size} values for shape {list(shape)}")
        seen[tensor.name] = ("INT32", shape)
        rows[tensor.name] = tuple(values[: shape[-1]].tolist())
    return seen, rows


class LocalServer:
    """Runs the stand-in's gRPC and REST servers on loopback, in a thread of its own or in the caller's loop."""

    def __init__(self, behaviour: Behaviour | None = None, *, grpc_port: int = 0, rest_port: int = 0) -> None:
        self.behaviour = behaviour or Behaviour()
        self.grpc_port = grpc_port
        self.rest_port = rest_port
        self.counters = _Counters()
        # One answer per API, model and batch, built once: every answer of a kind is the same bytes.
        self._answers: dict[tuple[str, str, int], Any] = {}
        self._grpc_server: grpc.aio.Server | None = None
        self._rest_runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    @property
    def received(self) -> list[Received]:
        return list(self.counters.received)

    # --- behaviour shared by both protocols ---

    async def _predict(self, received: Received, arrived: float) -> None:
        """Records the call and answers ``model_time`` after it ``arrived`` (loop time): the model time
        is the server's whole service time, its own parsing included, as for a server that runs the
        model for that long."""
        if received.model != self.behaviour.model_name:
            raise LookupError(f"Servable not found for request: Latest({received.model})")
        self.counters.predicts += 1
        self.counters.received.append(received)
        if self.behaviour.model_time:
            loop = asyncio.get_running_loop()
            await asyncio.sleep(max(0.0, arrived + self.behaviour.model_time - loop.time()))
        every = self.behaviour.error_every
        if every and self.counters.predicts % every == 0:
            raise ConnectionAbortedError("injected failure")

    def _status(self, model: str) -> list[tuple[int, str]]:
        if model != self.behaviour.model_name:
            raise LookupError(f"Could not find any versions of model {model}")
        return [(1, self.behaviour.state)]

    # --- gRPC ---

    async def _grpc_predict(self, request: PredictRequest, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        arrived = asyncio.get_running_loop().time()
        async with _grpc_errors(context):
            inputs, rows = _check_grpc_inputs(request)
            spec = request.model_spec
            received = Received("grpc", spec.name, spec.signature_name, inputs, rows)
            await self._predict(received, arrived)
        batch = next(iter(inputs.values()))[1][0]
        key = ("tfserving", request.model_spec.name, batch)
        if key not in self._answers:
            response = PredictResponse(model_spec=ModelSpec(name=request.model_spec.name))
            response.outputs["logits"].CopyFrom(tensor_proto(np.zeros((batch, 2), dtype=np.float32)))
            self._answers[key] = response
        return self._answers[key]

    async def _grpc_status(
        self, request: GetModelStatusRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> GetModelStatusResponse:
        try:
            versions = self._status(request.model_spec.name)
        except LookupError as error:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(error))
        return GetModelStatusResponse(
            model_version_status=[
                ModelVersionStatus(version=version, state=ModelVersionStatus.State.Value(state))
                for version, state in versions
            ]
        )

    async def _grpc_infer(self, request: ModelInferRequest, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        arrived = asyncio.get_running_loop().time()
        async with _grpc_errors(context):
            inputs, rows = _check_kserve_inputs(request)
            await self._predict(Received("kserve-grpc", request.model_name, "", inputs, rows), arrived)
        batch = next(iter(inputs.values()))[1][0]
        key = ("kserve", request.model_name, batch)
        if key not in self._answers:
            response = ModelInferResponse(model_name=request.model_name, model_version="1")
            response.outputs.add(name="logits", datatype="FP32", shape=[batch, 2])
            response.raw_output_contents.append(np.zeros((batch, 2), dtype="<f4").tobytes())
            self._answers[key] = response
        return self._answers[key]

    async def _grpc_ready(self, request: ModelReadyRequest, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        ready = request.name == self.behaviour.model_name and self.behaviour.state == "AVAILABLE"
        return ModelReadyResponse(ready=ready)

    def _grpc_handlers(self) -> tuple[grpc.GenericRpcHandler, ...]:
        serialize = (lambda _: GARBAGE) if self.behaviour.garbage else PredictResponse.SerializeToString
        return (
            grpc.method_handlers_generic_handler(
                "tensorflow.serving.PredictionService",
                {
                    "Predict": grpc.unary_unary_rpc_method_handler(
                        self._grpc_predict,
                        request_deserializer=PredictRequest.FromString,
                        response_serializer=serialize,
                    )
                },
            ),
            grpc.method_handlers_generic_handler(
                "inference.GRPCInferenceService",
                {
                    "ModelInfer": grpc.unary_unary_rpc_method_handler(
                        self._grpc_infer,
                        request_deserializer=ModelInferRequest.FromString,
                        response_serializer=(lambda _: GARBAGE)
                        if self.behaviour.garbage
                        else ModelInferResponse.SerializeToString,
                    ),
                    "ModelReady": grpc.unary_unary_rpc_method_handler(
                        self._grpc_ready,
                        request_deserializer=ModelReadyRequest.FromString,
                        response_serializer=ModelReadyResponse.SerializeToString,
                    ),
                },
            ),
            grpc.method_handlers_generic_handler(
                "tensorflow.serving.ModelService",
                {
                    "GetModelStatus": grpc.unary_unary_rpc_method_handler(
                        self._grpc_status,
                        request_deserializer=GetModelStatusRequest.FromString,
                        response_serializer=GetModelStatusResponse.SerializeToString,
                    )
                },
            ),
        )

    # --- REST ---

    async def _rest_status(self, request: web.Request) -> web.Response:
        try:
            versions = self._status(request.match_info["model"])
        except LookupError as error:
            return web.json_response({"error": str(error)}, status=404)
        return web.json_response(
            {
                "model_version_status": [
                    {"version": str(v), "state": s, "status": {"error_code": "OK", "error_message": ""}}
                    for v, s in versions
                ]
            }
        )

    async def _rest_predict(self, request: web.Request) -> web.Response:
        arrived = asyncio.get_running_loop().time()
        model, _, verb = request.match_info["model_verb"].partition(":")
        try:
            if verb != "predict":
                raise LookupError(f"unknown method {verb!r}")
            document = await request.json()
            tensors = document.get("inputs") if isinstance(document, dict) else None
            if not isinstance(tensors, dict) or not tensors:
                raise InvalidRequest("missing 'inputs'")
            arrays = {name: np.asarray(values) for name, values in tensors.items()}
            inputs: dict[str, tuple[str, tuple[int, ...]]] = {}
            for name, array in arrays.items():
                if array.dtype.kind not in "iu":
                    raise InvalidRequest(f"input {name}: expects integers")
                _checked_shape(name, array.shape, inputs)
                inputs[name] = ("int", array.shape)
            first_row = {name: tuple(int(v) for v in array[0]) for name, array in arrays.items()}
            signature = str(document.get("signature_name", ""))
            await self._predict(Received("rest", model, signature, inputs, first_row), arrived)
        except LookupError as error:
            return web.json_response({"error": str(error)}, status=404)
        except ValueError as error:  # InvalidRequest, or a body that is not JSON
            return web.json_response({"error": str(error)}, status=400)
        except ConnectionAbortedError as error:
            return web.json_response({"error": str(error)}, status=503)
        if self.behaviour.garbage:
            return web.Response(body=b"<html>not json", content_type="text/html")
        batch = next(iter(inputs.values()))[1][0]
        return web.json_response({"outputs": {"logits": [[0.0, 0.0]] * batch}})

    async def _kserve_ready(self, request: web.Request) -> web.Response:
        """200 when ready, 400 when not (KServe v2 health API)."""
        ready = request.match_info["model"] == self.behaviour.model_name and self.behaviour.state == "AVAILABLE"
        return web.Response(status=200 if ready else 400)

    async def _kserve_infer(self, request: web.Request) -> web.Response:
        arrived = asyncio.get_running_loop().time()
        model = request.match_info["model"]
        try:
            document = await request.json()
            tensors = document.get("inputs") if isinstance(document, dict) else None
            if not isinstance(tensors, list) or not tensors:
                raise InvalidRequest("missing 'inputs'")
            inputs: dict[str, tuple[str, tuple[int, ...]]] = {}
            rows: dict[str, tuple[int, ...]] = {}
            for tensor in tensors:
                if not isinstance(tensor["shape"], list) or any(type(size) is not int for size in tensor["shape"]):
                    raise InvalidRequest(f"input {tensor['name']}: shape must be a list of integers")
                shape = tuple(tensor["shape"])
                _checked_shape(str(tensor["name"]), shape, inputs)
                data = np.asarray(tensor["data"])
                if tensor.get("datatype") != "INT32" or data.size != int(np.prod(shape)) or data.dtype.kind not in "iu":
                    raise InvalidRequest(f"input {tensor.get('name')}: expects INT32 data filling {list(shape)}")
                inputs[str(tensor["name"])] = ("INT32", shape)
                rows[str(tensor["name"])] = tuple(int(v) for v in data.ravel()[: shape[-1]])
            await self._predict(Received("kserve-rest", model, "", inputs, rows), arrived)
        except LookupError as error:
            return web.json_response({"error": str(error)}, status=400)
        except (ValueError, KeyError, TypeError) as error:
            return web.json_response({"error": str(error)}, status=400)
        except ConnectionAbortedError as error:
            return web.json_response({"error": str(error)}, status=503)
        if self.behaviour.garbage:
            return web.Response(body=b"<html>not json", content_type="text/html")
        batch = next(iter(inputs.values()))[1][0]
        output = {"name": "logits", "datatype": "FP32", "shape": [batch, 2], "data": [0.0] * (batch * 2)}
        return web.json_response({"model_name": model, "model_version": "1", "outputs": [output]})

    # --- lifecycle ---

    async def serve(self) -> None:
        """Starts both servers in the running loop; returns once they listen."""
        server = grpc.aio.server()
        server.add_generic_rpc_handlers(self._grpc_handlers())
        self.grpc_port = server.add_insecure_port(f"{LOOPBACK}:{self.grpc_port}")
        await server.start()
        self._grpc_server = server

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/v1/models/{model}", self._rest_status)
        app.router.add_post("/v1/models/{model_verb}", self._rest_predict)
        app.router.add_get("/v2/models/{model}/ready", self._kserve_ready)
        app.router.add_post("/v2/models/{model}/infer", self._kserve_infer)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, LOOPBACK, self.rest_port)
        await site.start()
        self.rest_port = runner.addresses[0][1]
        self._rest_runner = runner

    async def shutdown(self) -> None:
        if self._grpc_server is not None:
            await self._grpc_server.stop(grace=None)
        if self._rest_runner is not None:
            await self._rest_runner.cleanup()

    def start(self) -> LocalServer:
        """Runs the servers in a background thread; returns once both listen."""
        ready = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._stopped = asyncio.Event()
            try:
                await self.serve()
            except BaseException as error:
                failure.append(error)
                ready.set()
                raise
            ready.set()
            await self._stopped.wait()
            await self.shutdown()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            with contextlib.suppress(BaseException):
                self._loop.run_until_complete(main())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="local-tf-serving", daemon=True)
        self._thread.start()
        ready.wait(timeout=30)
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(timeout=30)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


async def _serve_forever(server: LocalServer) -> None:
    await server.serve()
    print(json.dumps({"ready": True, "grpc_port": server.grpc_port, "rest_port": server.rest_port}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grpc-port", type=int, default=8500)
    parser.add_argument("--rest-port", type=int, default=8501)
    parser.add_argument("--model", default="bert")
    parser.add_argument("--model-time-ms", type=float, default=0.0)
    parser.add_argument("--error-every", type=int, default=0, help="fail every Nth Predict (0: never)")
    parser.add_argument("--garbage", action="store_true", help="answer Predict with bytes that do not parse")
    parser.add_argument("--state", default="AVAILABLE", choices=["LOADING", "AVAILABLE", "UNLOADING", "END"])
    args = parser.parse_args(argv)
    behaviour = Behaviour(args.model, args.model_time_ms / 1000.0, args.error_every, args.garbage, args.state)
    asyncio.run(_serve_forever(LocalServer(behaviour, grpc_port=args.grpc_port, rest_port=args.rest_port)))


if __name__ == "__main__":
    main()
