"""The two ways to reach Triton: KServe v2 (the Open Inference Protocol) over gRPC and over REST.

Same contract as ``client.transport``: each transport encodes its request once and sends the same
bytes every time; a failed request raises :class:`RequestFailed` with a short code. The gRPC
messages are this project's copy of Triton's protos (``components/model_server/apis/kserve_api``),
since ``tritonclient`` pins protobuf below the version the rest of the client uses.
"""

from __future__ import annotations

import json
from typing import Any

import grpc

from client.inputs import BertInputs
from client.transport import GrpcChannels, RestTransport, grpc_failure
from components.model_server.apis import messages
from components.model_server.apis.kserve_api.kserve_pb2 import (
    ModelInferRequest,
    ModelInferResponse,
    ModelReadyRequest,
    ModelReadyResponse,
)
from components.model_server.apis.messages import INFER_METHOD, KSERVE_DATATYPES, READY_METHOD
from components.model_server.runtime.model_signature import OUTPUT_NAME

# The status the client prints: KServe reports readiness, not per-version states.
READY, NOT_READY = "READY", "NOT_READY"


def infer_request(model: str, inputs: BertInputs) -> ModelInferRequest:
    return messages.infer_request(model, inputs.tensors)


def infer_body(inputs: BertInputs) -> dict[str, Any]:
    """``POST /v2/models/<m>/infer``'s JSON: each tensor's data flattened in row-major order."""
    return {
        "inputs": [
            {
                "name": name,
                "shape": list(array.shape),
                "datatype": KSERVE_DATATYPES[array.dtype.name],
                "data": array.ravel().tolist(),
            }
            for name, array in inputs.tensors.items()
        ],
        "outputs": [{"name": OUTPUT_NAME}],
    }


class KServeGrpcTransport(GrpcChannels):
    """``GRPCInferenceService/ModelInfer`` over one or more HTTP/2 channels, used round-robin."""

    def __init__(
        self, target: str, *, model: str, inputs: BertInputs, timeout: float, channels: int = 1, tls: bool = False
    ) -> None:
        super().__init__(
            target,
            method=INFER_METHOD,
            payload=infer_request(model, inputs).SerializeToString(),
            response_type=ModelInferResponse,
            timeout=timeout,
            channels=channels,
            tls=tls,
        )
        self._model = model

    async def model_status(self) -> list[tuple[int, str]]:
        call = self._channels[0].unary_unary(
            READY_METHOD,
            request_serializer=ModelReadyRequest.SerializeToString,
            response_deserializer=ModelReadyResponse.FromString,
        )
        try:
            response = await call(ModelReadyRequest(name=self._model), timeout=self._timeout)
        except grpc.aio.AioRpcError as error:
            raise grpc_failure(error) from None
        return [(0, READY if response.ready else NOT_READY)]


class KServeRestTransport(RestTransport):
    """``POST /v2/models/<model>/infer`` and ``GET /v2/models/<model>/ready`` over keep-alive HTTP/1.1."""

    def __init__(
        self, target: str, *, model: str, inputs: BertInputs, timeout: float, connections: int, tls: bool = False
    ) -> None:
        super().__init__(
            target, model=model, signature="", inputs=None, timeout=timeout, connections=connections, tls=tls
        )
        base = f"{'https' if tls else 'http'}://{target}/v2/models/{model}"
        self._predict_url = f"{base}/infer"
        self._status_url = f"{base}/ready"
        self._payload = json.dumps(infer_body(inputs), separators=(",", ":")).encode()

    async def predict(self) -> None:
        await self._request("POST", self._predict_url, lambda doc: isinstance(doc, dict) and bool(doc.get("outputs")))

    async def model_status(self) -> list[tuple[int, str]]:
        """200 when ready, 400 when not (KServe v2 health API); anything else is a failure."""
        status, _ = await self._send("GET", self._status_url, accepted=(200, 400))
        return [(0, READY if status == 200 else NOT_READY)]
