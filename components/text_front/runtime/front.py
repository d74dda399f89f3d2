"""A Text Embeddings Inference-compatible classification API in front of the task's model server.

TEI's HTTP API for sequence classification (huggingface/text-embeddings-inference v1.9,
router/src/http/server.rs and types.rs): ``POST /predict`` and the compatibility route ``POST /``
take ``{"inputs": "text"}``, a pair ``["a", "b"]`` or a batch ``[["a"], ["b", "c"]]``, with
``truncate`` (default true, TEI's auto-truncate), ``truncation_direction`` and ``raw_scores``, and
answer ``[{"score", "label"}, ...]`` sorted by score (a list of lists for a batch). ``GET /info``,
``GET /health`` (also ``GET /`` and ``/ping``) and ``GET /metrics`` (Prometheus). Errors are
``{"error", "error_type"}`` with TEI's statuses: Validation 422, Empty 400, Overloaded 429,
Backend 424, Unhealthy 503 (``impl From<&ErrorType> for StatusCode``). With an API key every route
but health and metrics needs ``Authorization: Bearer <key>``, else 401 with an empty body.

    python -m components.text_front.runtime.front   (settings from the environment: front_environment.py)
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from components.text_front.runtime import front_environment as env
from components.text_front.runtime.backend import BackendFailed, BackendUnavailable, ModelServer, connect
from components.text_front.runtime.encoding import DIRECTIONS, Encoder, Sequence, TooLong
from components.text_front.runtime.model_files import ModelFiles, ModelFilesError, load_model_files

VERSION = "1.0"
# Larger bodies are refused before they are read whole (TEI: --payload-limit, 2 MB by default).
PAYLOAD_LIMIT_BYTES = 2_000_000
# How long one answer of the model server's readiness is trusted, so health checks do not pile up on it.
HEALTH_TTL_SECONDS = 1.0
OPEN_PATHS = {("GET", "/health"), ("GET", "/"), ("GET", "/ping"), ("GET", "/metrics")}
INPUTS_SHAPE = "a string, a pair of strings [string, string] or a batch of mixed strings and pairs [[string], ...]"

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class ApiError(Exception):
    """An answer in TEI's error shape: ``{"error": message, "error_type": kind}``."""

    STATUS: ClassVar[dict[str, int]] = {
        "Validation": 422,
        "Tokenizer": 422,
        "Empty": 400,
        "Overloaded": 429,
        "Backend": 424,
        "Unhealthy": 503,
    }

    def __init__(self, kind: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status or self.STATUS[kind]

    def response(self) -> JSONResponse:
        return JSONResponse({"error": str(self), "error_type": self.kind}, status_code=self.status)


@dataclass(frozen=True)
class FrontSettings:
    model_name: str
    max_client_batch_size: int = env.DEFAULT_MAX_CLIENT_BATCH_SIZE
    max_concurrent_requests: int = env.DEFAULT_MAX_CONCURRENT_REQUESTS
    api_key: str = ""


@dataclass(frozen=True)
class PredictRequest:
    sequences: list[Sequence]
    batch: bool
    truncate: bool
    direction: str
    raw_scores: bool


def _sequence(value: Any) -> Sequence:
    if isinstance(value, list) and len(value) in (1, 2) and all(isinstance(part, str) for part in value):
        return (value[0],) if len(value) == 1 else (value[0], value[1])
    raise ApiError("Validation", f"`inputs`: expected {INPUTS_SHAPE}")


def parse_request(body: bytes, max_batch: int) -> PredictRequest:
    """The request as TEI reads it; anything else is one Validation error (422) or Empty (400)."""
    try:
        document = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError("Validation", "the request body is not valid UTF-8") from None
    except ValueError as error:
        raise ApiError("Validation", f"the request body is not JSON: {error}") from None
    if not isinstance(document, dict) or "inputs" not in document:
        raise ApiError("Validation", "missing field `inputs`")
    inputs = document["inputs"]
    sequences: list[Sequence]
    if isinstance(inputs, str):
        sequences, batch = [(inputs,)], False
    elif isinstance(inputs, list) and inputs and isinstance(inputs[0], str):
        sequences, batch = [_sequence(inputs)], False
    elif isinstance(inputs, list) and inputs:
        sequences, batch = [_sequence(item) for item in inputs], True
    else:
        raise ApiError("Validation", f"`inputs`: expected {INPUTS_SHAPE}")
    if batch and len(sequences) > max_batch:
        raise ApiError("Validation", f"batch size {len(sequences)} > maximum allowed batch size {max_batch}")
    truncate = document.get("truncate")
    raw_scores = document.get("raw_scores", False)
    direction = document.get("truncation_direction", "right")
    if truncate is not None and not isinstance(truncate, bool):
        raise ApiError("Validation", "`truncate`: expected true, false or null")
    if not isinstance(raw_scores, bool):
        raise ApiError("Validation", "`raw_scores`: expected true or false")
    if not isinstance(direction, str) or direction.lower() not in DIRECTIONS:
        raise ApiError("Validation", "`truncation_direction`: expected `left` or `right`")
    return PredictRequest(sequences, batch, truncate is not False, direction.lower(), raw_scores)


def scored(logits: np.ndarray[Any, Any], files: ModelFiles, *, raw_scores: bool) -> list[dict[str, Any]]:
    """One input's classes, best first: softmax probabilities, or the raw logits."""
    row = np.asarray(logits, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(row)):
        raise ApiError("Backend", "score is NaN")
    if not raw_scores and row.size > 1:
        exponentials = np.exp(row - row.max())
        row = exponentials / exponentials.sum()
    order = sorted(range(row.size), key=lambda index: -row[index])
    return [{"score": float(row[index]), "label": files.label(index)} for index in order]


class Metrics:
    """TEI's request metrics (router/src/http/server.rs names them), in the front's own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("te_request_count", "Requests", ["method"], registry=self.registry)
        self.successes = Counter("te_request_success", "Successful requests", ["method"], registry=self.registry)
        self.failures = Counter("te_request_failure", "Failed requests", ["err"], registry=self.registry)
        self.duration = Histogram("te_request_duration", "Request seconds", registry=self.registry)
        self.tokenization = Histogram("te_request_tokenization_duration", "Seconds", registry=self.registry)
        self.inference = Histogram("te_request_inference_duration", "Seconds", registry=self.registry)
        self.input_length = Histogram(
            "te_request_input_length", "Tokens", buckets=(8, 16, 32, 64, 128, 256, 512), registry=self.registry
        )


class ApiKey:
    """Every route but health and metrics needs ``Authorization: Bearer <key>``, compared in constant
    time (hmac.compare_digest); anything else is 401 with an empty body, as TEI answers."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self._app = app
        self._expected = f"Bearer {key}".encode()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (scope["method"], scope["path"]) not in OPEN_PATHS:
            sent = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(sent, self._expected):
                await Response(status_code=401)(scope, receive, send)
                return
        await self._app(scope, receive, send)


class TextFront:
    """The routes, over one model's files and its model server."""

    def __init__(self, settings: FrontSettings, files: ModelFiles, server: ModelServer) -> None:
        self.settings = settings
        self.files = files
        self.server = server
        self.encoder = Encoder(files.tokenizer, files.sequence_length)
        self.metrics = Metrics()
        self._in_flight = 0
        self._health: tuple[float, bool] = (-math.inf, False)

    async def _body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > PAYLOAD_LIMIT_BYTES:
            raise ApiError("Validation", f"the request body is over {PAYLOAD_LIMIT_BYTES} bytes", 413)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > PAYLOAD_LIMIT_BYTES:
                raise ApiError("Validation", f"the request body is over {PAYLOAD_LIMIT_BYTES} bytes", 413)
        return body

    async def _one(self, sequence: Sequence, parsed: PredictRequest) -> list[dict[str, Any]]:
        if all(not part for part in sequence):  # as TEI's tokenization checks it, once per input
            raise ApiError("Empty", "`inputs` cannot be empty")
        started = time.perf_counter()
        try:
            tensors = self.encoder.encode(sequence, truncate=parsed.truncate, direction=parsed.direction)
        except TooLong as error:
            raise ApiError("Validation", str(error)) from None
        except Exception as error:  # tokenizers raises bare Exceptions
            raise ApiError("Tokenizer", f"tokenization failed: {error}") from None
        self.metrics.tokenization.observe(time.perf_counter() - started)
        self.metrics.input_length.observe(int(tensors["input_mask"].sum()))
        started = time.perf_counter()
        try:
            logits = await self.server.logits(tensors)
        except BackendUnavailable as error:
            raise ApiError("Unhealthy", str(error)) from None
        except BackendFailed as error:
            raise ApiError("Backend", str(error)) from None
        self.metrics.inference.observe(time.perf_counter() - started)
        return scored(logits, self.files, raw_scores=parsed.raw_scores)

    async def predict(self, request: Request) -> Response:
        started = time.perf_counter()
        method = "single"
        try:
            if self._in_flight >= self.settings.max_concurrent_requests:
                raise ApiError("Overloaded", "Model is overloaded")
            self._in_flight += 1
            try:
                parsed = parse_request(await self._body(request), self.settings.max_client_batch_size)
                method = "batch" if parsed.batch else "single"
                self.metrics.requests.labels(method).inc()
                answers = await asyncio.gather(*(self._one(sequence, parsed) for sequence in parsed.sequences))
            finally:
                self._in_flight -= 1
        except ApiError as error:
            self.metrics.failures.labels(error.kind.lower()).inc()
            return error.response()
        except Exception as error:  # a fault of ours: logged, answered in TEI's shape without a traceback
            print(f"text-front: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
            self.metrics.failures.labels("backend").inc()
            return ApiError("Backend", f"internal error ({type(error).__name__})", 500).response()
        self.metrics.successes.labels(method).inc()
        self.metrics.duration.observe(time.perf_counter() - started)
        return JSONResponse(answers if parsed.batch else answers[0])

    async def health(self, request: Request) -> Response:
        checked, ready = self._health
        now = time.monotonic()
        if now - checked > HEALTH_TTL_SECONDS:
            ready = await self.server.ready()
            self._health = (now, ready)
        if ready:
            return Response(status_code=200)
        return ApiError("Unhealthy", "unhealthy").response()

    async def info(self, request: Request) -> Response:
        id2label = {str(index): label for index, label in sorted(self.files.id2label.items())}
        return JSONResponse(
            {
                "model_id": self.files.checkpoint,
                "model_sha": None,
                "model_dtype": "float32",
                "served_model_name": self.settings.model_name,
                "model_type": {
                    "classifier": {"id2label": id2label, "label2id": {v: int(k) for k, v in id2label.items()}}
                },
                "max_concurrent_requests": self.settings.max_concurrent_requests,
                "max_input_length": self.files.sequence_length,
                "max_batch_tokens": self.files.sequence_length * self.settings.max_client_batch_size,
                "max_batch_requests": None,
                "max_client_batch_size": self.settings.max_client_batch_size,
                "auto_truncate": True,
                "tokenization_workers": 1,
                "version": VERSION,
                "sha": None,
                "docker_label": None,
            }
        )

    async def metrics_page(self, request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def app(self) -> ASGIApp:
        routes = [
            Route("/predict", self.predict, methods=["POST"]),
            Route("/", self.predict, methods=["POST"]),
            Route("/", self.health, methods=["GET"]),
            Route(env.HEALTH_PATH, self.health, methods=["GET"]),
            Route("/ping", self.health, methods=["GET"]),
            Route("/info", self.info, methods=["GET"]),
            Route("/metrics", self.metrics_page, methods=["GET"]),
        ]
        app: ASGIApp = Starlette(routes=routes)
        return ApiKey(app, self.settings.api_key) if self.settings.api_key else app


class FrontConfigError(ValueError):
    """A setting of the front's environment is wrong; the message names it and what is allowed."""


def _positive(environ: dict[str, str], name: str, default: int) -> int:
    value = environ.get(name, str(default)).strip()
    if not value.isdigit() or int(value) < 1:
        raise FrontConfigError(f"{name}={value!r}: expected a whole number of 1 or more")
    return int(value)


def from_environment(environ: dict[str, str]) -> tuple[FrontSettings, Path, str, str, int]:
    """(settings, model base path, model server target, its API, port), or FrontConfigError."""
    name = environ.get(env.MODEL_NAME, "").strip()
    if not name:
        raise FrontConfigError(f"{env.MODEL_NAME} is not set: the name the model server serves the model under")
    base = environ.get(env.MODEL_BASE_PATH, "").strip()
    if not base:
        raise FrontConfigError(f"{env.MODEL_BASE_PATH} is not set: the model's folder of version folders")
    target = environ.get(env.MODEL_SERVER, "").strip()
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise FrontConfigError(f"{env.MODEL_SERVER}={target!r}: expected host:port of the model server's gRPC API")
    api = environ.get(env.SERVER_API, "").strip()
    if api not in env.SERVER_APIS:
        raise FrontConfigError(f"{env.SERVER_API}={api!r}: expected one of {', '.join(env.SERVER_APIS)}")
    settings = FrontSettings(
        model_name=name,
        max_client_batch_size=_positive(environ, env.MAX_CLIENT_BATCH_SIZE, env.DEFAULT_MAX_CLIENT_BATCH_SIZE),
        max_concurrent_requests=_positive(environ, env.MAX_CONCURRENT_REQUESTS, env.DEFAULT_MAX_CONCURRENT_REQUESTS),
        api_key=environ.get(env.API_KEY, ""),
    )
    return settings, Path(base), target, api, _positive(environ, env.PORT, env.CONTAINER_PORT)


def build(environ: dict[str, str]) -> tuple[ASGIApp, int]:
    settings, base, target, api, port = from_environment(environ)
    files = load_model_files(base)
    return TextFront(settings, files, connect(api, target, model=settings.model_name)).app(), port


def main() -> int:
    import uvicorn  # noqa: PLC0415  (the server, only when run)

    try:
        app, port = build(dict(os.environ))
    except (FrontConfigError, ModelFilesError) as error:
        print(f"text-front: {error}", file=sys.stderr, flush=True)
        return 2
    print(f"text-front: listening on port {port}", flush=True)
    host = os.environ.get(env.HOST, env.DEFAULT_HOST)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
