"""A model version folder the front can read (a real WordPiece tokenizer, no weights), and the front
itself served by uvicorn on loopback, against the stand-in or a model server double."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn

from components.text_front.runtime.backend import BackendFailed, BackendUnavailable, ModelServer, connect
from components.text_front.runtime.front import FrontSettings, TextFront
from components.text_front.runtime.model_files import load_model_files
from tools.loopback import free_port
from tools.text_fixture import LABELS, SPECIAL, WORDS, bert_tokenizer, model_folder


class ScriptedServer(ModelServer):
    """A model server double: logits from the rows it is sent (token count, and 1), or a scripted fault."""

    def __init__(self, fault: Exception | None = None, *, ready: bool = True) -> None:
        super().__init__("unused:0", model="bert")
        self.fault = fault
        self.is_ready = ready
        self.calls: list[dict[str, np.ndarray[Any, Any]]] = []

    async def logits(self, tensors: Mapping[str, np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
        self.calls.append(dict(tensors))
        await asyncio.sleep(0)
        if self.fault is not None:
            raise self.fault
        tokens = float(tensors["input_mask"].sum())
        return np.array([[tokens / 4.0, 1.0]], dtype=np.float32)

    async def ready(self) -> bool:
        return self.is_ready


class _Current:
    """The one uvicorn server's app: whichever app the test running now serves (a worker runs one test
    at a time), so a test costs no server start and stop."""

    app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None, "a request arrived outside serving()"
        await self.app(scope, receive, send)


_SHARED: tuple[_Current, str] | None = None


def _shared_server() -> tuple[_Current, str]:
    global _SHARED  # noqa: PLW0603  (one server per test process, started on first use)
    if _SHARED is None:
        current, port = _Current(), free_port()
        config = uvicorn.Config(
            current, host="127.0.0.1", port=port, log_level="error", access_log=False, lifespan="off"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="front-under-test", daemon=True)
        thread.start()
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            threading.Event().wait(0.01)
        _SHARED = (current, f"http://127.0.0.1:{port}")
    return _SHARED


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` under uvicorn on loopback (one server per test process, serving this app until the block
    ends); yields its base URL."""
    current, url = _shared_server()
    current.app = app
    try:
        yield url
    finally:
        current.app = None


@contextmanager
def front(
    base: Path, server: ModelServer | None = None, *, target: str = "", api: str = "tfserving", **settings: Any
) -> Iterator[str]:
    """The front over the model folder ``base``, against ``server`` or the model server at ``target``."""
    backend = server if server is not None else connect(api, target, model="bert")
    text_front = TextFront(FrontSettings(model_name="bert", **settings), load_model_files(base), backend)
    with serving(text_front.app()) as url:
        yield url


__all__ = [
    "LABELS",
    "SPECIAL",
    "WORDS",
    "BackendFailed",
    "BackendUnavailable",
    "ScriptedServer",
    "bert_tokenizer",
    "front",
    "model_folder",
    "serving",
]
