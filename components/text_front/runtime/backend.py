"""The model server in the same task, over gRPC: TF Serving's Predict or KServe v2's ModelInfer.

One request per input, all in flight together, so the server's own batcher (TF Serving's batching,
Triton's dynamic batcher) forms the batches. A server that does not answer is Unavailable (the front
answers 503); one that answers with an error, or without logits, has Failed (424).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
import numpy as np

from components.model_server.apis import messages
from components.model_server.apis.kserve_api.kserve_pb2 import (
    ModelInferResponse,
    ModelReadyRequest,
    ModelReadyResponse,
)
from components.model_server.apis.tfs_api.tensorflow_serving_pb2 import (
    GetModelStatusRequest,
    GetModelStatusResponse,
    ModelSpec,
    ModelVersionStatus,
    PredictResponse,
)
from components.model_server.runtime.model_signature import SIGNATURE_NAME

# Codes that mean the server is not there (yet): the task is unhealthy, not the request wrong.
UNAVAILABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class BackendUnavailable(Exception):
    pass


class BackendFailed(Exception):
    pass


def _identity(payload: bytes) -> bytes:
    return payload


class ModelServer:
    """``logits(tensors)`` for one input's rows; ``ready()`` for the health check."""

    def __init__(self, target: str, *, model: str, timeout: float = 30.0) -> None:
        self.target = target
        self.model = model
        self.timeout = timeout
        self._channel: grpc.aio.Channel | None = None
        self._methods: dict[str, Any] = {}

    def _method(self, path: str) -> Any:
        """The unary method at ``path``, on a channel opened in the serving loop on first use."""
        if self._channel is None:
            options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)]
            self._channel = grpc.aio.insecure_channel(self.target, options=options)
        if path not in self._methods:
            self._methods[path] = self._channel.unary_unary(
                path, request_serializer=_identity, response_deserializer=_identity
            )
        return self._methods[path]

    async def _call(self, path: str, payload: bytes) -> bytes:
        try:
            answer: bytes = await self._method(path)(payload, timeout=self.timeout)
        except grpc.aio.AioRpcError as error:
            detail = " ".join((error.details() or error.code().name).split())[:300]
            if error.code() in UNAVAILABLE:
                raise BackendUnavailable(f"the model server is unavailable: {detail}") from None
            raise BackendFailed(f"the model server refused the request: {error.code().name}: {detail}") from None
        return answer

    async def logits(self, tensors: Mapping[str, np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
        raise NotImplementedError

    async def ready(self) -> bool:
        raise NotImplementedError

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()


class TfServing(ModelServer):
    async def logits(self, tensors: Mapping[str, np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
        request = messages.predict_request(self.model, SIGNATURE_NAME, tensors)
        answer = await self._call(messages.PREDICT_METHOD, request.SerializeToString())
        try:
            return messages.predict_logits(PredictResponse.FromString(answer))
        except (ValueError, messages.BadReply) as error:  # DecodeError is a ValueError
            raise BackendFailed(f"the model server's reply holds no logits: {error}") from None

    async def ready(self) -> bool:
        request = GetModelStatusRequest(model_spec=ModelSpec(name=self.model)).SerializeToString()
        try:
            reply = GetModelStatusResponse.FromString(await self._call(messages.STATUS_METHOD, request))
        except (BackendUnavailable, BackendFailed, ValueError):
            return False
        return any(status.state == ModelVersionStatus.State.AVAILABLE for status in reply.model_version_status)


class KServe(ModelServer):
    async def logits(self, tensors: Mapping[str, np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
        answer = await self._call(
            messages.INFER_METHOD, messages.infer_request(self.model, tensors).SerializeToString()
        )
        try:
            return messages.infer_logits(ModelInferResponse.FromString(answer))
        except (ValueError, messages.BadReply) as error:
            raise BackendFailed(f"the model server's reply holds no logits: {error}") from None

    async def ready(self) -> bool:
        request = ModelReadyRequest(name=self.model).SerializeToString()
        try:
            return bool(ModelReadyResponse.FromString(await self._call(messages.READY_METHOD, request)).ready)
        except (BackendUnavailable, BackendFailed, ValueError):
            return False


def connect(api: str, target: str, *, model: str) -> ModelServer:
    return (TfServing if api == "tfserving" else KServe)(target, model=model)
