"""The text API (TEI's classification API on the text front): ``POST /predict`` with text, over HTTP/1.1.

The key, when the endpoint has one, comes from the ``TEXT_API_KEY`` environment variable, never from the
command line (where other users of the machine could read it in the process list).
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

from client.transport import RestTransport

API_KEY_VARIABLE = "TEXT_API_KEY"
# An MRPC paraphrase pair: what the walk-through's model was fine-tuned to judge.
DEFAULT_TEXT = "The company said its profits rose in the third quarter."
DEFAULT_PAIR = "Profits went up in the third quarter, the firm said."


def _is_scores(document: Any) -> bool:
    return (
        isinstance(document, list)
        and bool(document)
        and all(isinstance(item, dict) and "label" in item and "score" in item for item in document)
    )


def _key_header() -> dict[str, str]:
    key = os.environ.get(API_KEY_VARIABLE, "")
    return {"Authorization": f"Bearer {key}"} if key else {}


def classify(base_url: str, text: str, pair: str | None = None, *, timeout: float) -> list[str]:
    """One blocking ``POST /predict`` of a text or a pair, for checks that ask once: every class's label,
    the highest score first. An answer that is not TEI's scores is a ValueError."""
    inputs: Any = text if pair is None else [text, pair]
    request = urllib.request.Request(
        f"{base_url.rstrip('/')}/predict",
        data=json.dumps({"inputs": inputs}).encode(),
        headers={"Content-Type": "application/json", **_key_header()},
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        document = json.loads(answer.read())
    if not _is_scores(document):
        raise ValueError(f"POST /predict answered {json.dumps(document)[:200]}, not TEI's scores")
    return [str(item["label"]) for item in sorted(document, key=lambda item: -float(item["score"]))]


def text_body(text: str | None, pair: str | None, batch: int) -> bytes:
    """One input (a text, or a pair with ``pair``), or ``batch`` of them: TEI's request body."""
    one: list[str] = [text or DEFAULT_TEXT, *([pair] if pair else [] if text else [DEFAULT_PAIR])]
    inputs: Any = one if batch == 1 else [one] * batch
    return json.dumps({"inputs": inputs}, separators=(",", ":")).encode()


class TextTransport(RestTransport):
    """``POST <base>/predict``; a 200 must carry scores (a list of lists for a batch). ``status`` is
    ``GET /health``: 200 is READY."""

    def __init__(self, base_url: str, *, body: bytes, batch: int, timeout: float, connections: int) -> None:
        super().__init__("unused", model="", signature="", inputs=None, timeout=timeout, connections=connections)
        base = base_url.rstrip("/")
        self._predict_url = f"{base}/predict"
        self._status_url = f"{base}/health"
        self._payload = body
        self._batch = batch
        self._headers = {**self._headers, **_key_header()}

    def _answered(self, document: Any) -> bool:
        if self._batch == 1:
            return _is_scores(document)
        return isinstance(document, list) and len(document) == self._batch and all(map(_is_scores, document))

    async def predict(self) -> None:
        await self._request("POST", self._predict_url, self._answered)

    async def model_status(self) -> list[tuple[int, str]]:
        status, _ = await self._send("GET", self._status_url, accepted=(200, 503))
        return [(0, "READY" if status == 200 else "UNAVAILABLE")]
