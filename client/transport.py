"""The two ways to reach TF Serving: gRPC (``PredictionService``, ``ModelService``) and REST.

Each transport builds its request body once and sends the same bytes every time, so the client
measures the server, not its own serialisation. A failed request raises :class:`RequestFailed`
with a short code (a gRPC status name, ``HTTP 503``, ``TIMEOUT``, ``BAD_RESPONSE`` ...).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp
import grpc
from google.protobuf.message import DecodeError

from client.inputs import BertInputs
from components.model_server.apis import messages
from components.model_server.apis.messages import PREDICT_METHOD, STATUS_METHOD
from components.model_server.apis.tfs_api.tensorflow_serving_pb2 import (
    GetModelStatusRequest,
    GetModelStatusResponse,
    ModelSpec,
    ModelVersionStatus,
    PredictRequest,
    PredictResponse,
)

# One HTTP/2 connection carries at most ~100 concurrent streams by default; spread beyond that.
STREAMS_PER_CHANNEL = 64
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


# The failure codes that mean nothing answered at all (gRPC's, and the REST transports'): refused,
# reset, no route, a name that does not resolve. The load runner gives up on a target that only says these.
UNREACHABLE_CODES = frozenset({"UNAVAILABLE", "CONNECTION_REFUSED", "CONNECT_FAILED", "CONNECTION_ERROR"})


def one_line(text: str, limit: int) -> str:
    """``text`` on one line and at most ``limit`` characters, cut between words (a word longer than the
    whole limit is cut, as nothing else fits)."""
    collapsed = " ".join(text.split())
    if len(collapsed) <= limit:
        return collapsed
    cut = collapsed[: limit - 1]
    if collapsed[limit - 1] != " " and " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip() + "…"


class RequestFailed(Exception):
    """One request did not produce a prediction."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


class Transport(Protocol):
    async def predict(self) -> None: ...

    async def model_status(self) -> list[tuple[int, str]]: ...

    async def close(self) -> None: ...


def predict_request(model: str, signature: str, inputs: BertInputs) -> PredictRequest:
    return messages.predict_request(model, signature, inputs.tensors)


def passthrough(payload: bytes) -> bytes:
    return payload


def channels_for(concurrency: int) -> int:
    return max(1, -(-concurrency // STREAMS_PER_CHANNEL))


class GrpcChannels:
    """One unary method over one or more HTTP/2 channels, used round-robin, sending the same encoded
    request each time; a reply that is not a ``response_type`` with outputs is BAD_RESPONSE.

    The base of both gRPC transports: TF Serving's ``Predict`` and KServe's ``ModelInfer``.
    """

    def __init__(
        self,
        target: str,
        *,
        method: str,
        payload: bytes,
        response_type: Any,
        timeout: float,
        channels: int,
        tls: bool = False,
    ) -> None:
        self._timeout = timeout
        self._payload = payload
        self._response_type = response_type
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            # Separate channels must not share one subchannel, or they share one connection.
            ("grpc.use_local_subchannel_pool", 1),
        ]
        # TLS (a load balancer with certificateArn) checks the server's name against the system's CAs.
        self._channels = [
            grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(), options=options)
            if tls
            else grpc.aio.insecure_channel(target, options=options)
            for _ in range(max(1, channels))
        ]
        self._calls = [
            # Raw bytes both ways: the request is encoded once, and a response that does not parse
            # becomes BAD_RESPONSE here rather than a logged traceback inside grpc.
            channel.unary_unary(method, request_serializer=passthrough, response_deserializer=passthrough)
            for channel in self._channels
        ]
        self._next = itertools.cycle(self._calls)

    async def predict(self) -> None:
        try:
            answer = await next(self._next)(self._payload, timeout=self._timeout)
        except grpc.aio.AioRpcError as error:
            raise grpc_failure(error) from None
        name = self._response_type.__name__
        try:
            response = self._response_type.FromString(answer)
        except DecodeError:
            raise RequestFailed("BAD_RESPONSE", f"{name} does not parse") from None
        if not response.outputs:
            raise RequestFailed("BAD_RESPONSE", f"{name} has no outputs")

    async def close(self) -> None:
        await asyncio.gather(*(channel.close() for channel in self._channels))


class GrpcTransport(GrpcChannels):
    """``PredictionService/Predict`` over one or more HTTP/2 channels, used round-robin."""

    def __init__(
        self,
        target: str,
        *,
        model: str,
        signature: str,
        inputs: BertInputs,
        timeout: float,
        channels: int = 1,
        tls: bool = False,
    ) -> None:
        super().__init__(
            target,
            method=PREDICT_METHOD,
            payload=predict_request(model, signature, inputs).SerializeToString(),
            response_type=PredictResponse,
            timeout=timeout,
            channels=channels,
            tls=tls,
        )
        self._model = model

    async def model_status(self) -> list[tuple[int, str]]:
        call = self._channels[0].unary_unary(
            STATUS_METHOD,
            request_serializer=GetModelStatusRequest.SerializeToString,
            response_deserializer=GetModelStatusResponse.FromString,
        )
        try:
            response = await call(GetModelStatusRequest(model_spec=ModelSpec(name=self._model)), timeout=self._timeout)
        except grpc.aio.AioRpcError as error:
            raise grpc_failure(error) from None
        return [
            (status.version, ModelVersionStatus.State.Name(status.state)) for status in response.model_version_status
        ]


def grpc_failure(error: grpc.aio.AioRpcError) -> RequestFailed:
    code = error.code()
    details = error.details() or ""
    if code is grpc.StatusCode.INTERNAL and "deserializ" in details.lower():
        return RequestFailed("BAD_RESPONSE", details)
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return RequestFailed("TIMEOUT", details)
    return RequestFailed(code.name, details)


class RestTransport:
    """``POST /v1/models/<model>:predict`` in the column (``inputs``) form, over keep-alive HTTP/1.1."""

    def __init__(
        self,
        target: str,
        *,
        model: str,
        signature: str,
        inputs: BertInputs | None,
        timeout: float,
        connections: int,
        tls: bool = False,
    ) -> None:
        base = f"{'https' if tls else 'http'}://{target}/v1/models/{model}"
        self._predict_url = f"{base}:predict"
        self._status_url = base
        self._headers = {"Content-Type": "application/json"}
        self._payload = b""
        if inputs is not None:
            body: dict[str, Any] = {"inputs": {name: array.tolist() for name, array in inputs.tensors.items()}}
            if signature:
                body["signature_name"] = signature
            self._payload = json.dumps(body, separators=(",", ":")).encode()
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._connections, force_close=False)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def _send(self, method: str, url: str, *, accepted: tuple[int, ...] = (200,)) -> tuple[int, bytes]:
        """The status and body of one call; a status outside ``accepted``, or no answer, raises."""
        try:
            async with self._client().request(
                method,
                url,
                data=self._payload if method == "POST" else None,
                headers=self._headers,
            ) as response:
                body = await response.read()
                if response.status not in accepted:
                    raise RequestFailed(f"HTTP {response.status}", body[:2000].decode(errors="replace"))
                return response.status, body
        except TimeoutError:
            raise RequestFailed("TIMEOUT") from None
        except aiohttp.ClientConnectorError as error:
            code = "CONNECTION_REFUSED" if isinstance(error.os_error, ConnectionRefusedError) else "CONNECT_FAILED"
            raise RequestFailed(code, str(error)) from None
        except aiohttp.ClientError as error:
            raise RequestFailed("CONNECTION_ERROR", str(error)) from None

    async def _request(self, method: str, url: str, check: Callable[[Any], bool]) -> Any:
        _, body = await self._send(method, url)
        try:
            document = json.loads(body)
        except ValueError:
            raise RequestFailed("BAD_RESPONSE", "response is not JSON") from None
        if not check(document):
            raise RequestFailed(
                "BAD_RESPONSE", "unexpected JSON: " + one_line(body[:2000].decode(errors="replace"), 120)
            )
        return document

    async def predict(self) -> None:
        await self._request(
            "POST", self._predict_url, lambda doc: isinstance(doc, dict) and ("outputs" in doc or "predictions" in doc)
        )

    async def model_status(self) -> list[tuple[int, str]]:
        document = await self._request(
            "GET", self._status_url, lambda doc: isinstance(doc, dict) and "model_version_status" in doc
        )
        return [(int(status["version"]), str(status["state"])) for status in document["model_version_status"]]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


API_TFSERVING, API_KSERVE, API_TEXT = "tfserving", "kserve", "text"
TENSOR_APIS = (API_TFSERVING, API_KSERVE)
APIS = (*TENSOR_APIS, API_TEXT)


def open_transport(
    protocol: str,
    target: str,
    *,
    model: str,
    signature: str,
    inputs: BertInputs,
    timeout: float,
    concurrency: int,
    api: str = API_TFSERVING,
    tls: bool = False,
) -> Transport:
    """TF Serving's API (Predict) or KServe v2's (ModelInfer, Triton), over gRPC or REST, with TLS when
    the load balancer terminates it. (The text API has its own transport, client/text.py.)"""
    if api == API_KSERVE:
        from client.kserve import KServeGrpcTransport, KServeRestTransport  # noqa: PLC0415  (kserve imports this module)

        if protocol == "grpc":
            return KServeGrpcTransport(
                target, model=model, inputs=inputs, timeout=timeout, channels=channels_for(concurrency), tls=tls
            )
        return KServeRestTransport(
            target, model=model, inputs=inputs, timeout=timeout, connections=concurrency, tls=tls
        )
    if protocol == "grpc":
        return GrpcTransport(
            target,
            model=model,
            signature=signature,
            inputs=inputs,
            timeout=timeout,
            channels=channels_for(concurrency),
            tls=tls,
        )
    return RestTransport(
        target, model=model, signature=signature, inputs=inputs, timeout=timeout, connections=concurrency, tls=tls
    )


__all__ = [
    "PREDICT_METHOD",
    "STATUS_METHOD",
    "GrpcChannels",
    "GrpcTransport",
    "RequestFailed",
    "RestTransport",
    "Transport",
    "open_transport",
    "predict_request",
]
