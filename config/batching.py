"""TF Serving's dynamic batching: the ``batching`` setting and the parameters file it renders."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from config.parsing import fail, integer

# Setting key -> (TF Serving's parameter name, default, lowest, highest).
BATCHING_FIELDS: Mapping[str, tuple[str, int, int, int]] = {
    "maxBatchSize": ("max_batch_size", 8, 1, 1024),
    "batchTimeoutMicros": ("batch_timeout_micros", 5000, 0, 10_000_000),
    "numBatchThreads": ("num_batch_threads", 4, 1, 1024),
    "maxEnqueuedBatches": ("max_enqueued_batches", 100, 1, 1_000_000),
}


@dataclass(frozen=True, kw_only=True)
class BatchingSettings:
    """Up to ``max_batch_size`` requests wait at most ``batch_timeout_micros`` to be run as one batch."""

    max_batch_size: int
    batch_timeout_micros: int
    num_batch_threads: int
    max_enqueued_batches: int

    def parameters_file(self) -> str:
        """The text-format BatchingParameters file that ``--batching_parameters_file`` reads."""
        return "".join(f"{name} {{ value: {getattr(self, name)} }}\n" for name, *_ in BATCHING_FIELDS.values())


def parse_batching(value: object) -> BatchingSettings | None:
    """Off for {}, false or ""; otherwise an object (or its JSON text, as -c gives it) of BATCHING_FIELDS."""
    allowed = "expected {} to turn batching off, or an object with " + ", ".join(BATCHING_FIELDS)
    if isinstance(value, str):
        if value.strip().lower() in ("", "false", "off", "{}"):
            return None
        try:
            value = json.loads(value)
        except ValueError:
            raise fail("batching", value, allowed) from None
    if value is False or value == {}:
        return None
    if not isinstance(value, dict) or not set(value) <= set(BATCHING_FIELDS):
        raise fail("batching", value, allowed)
    fields = {
        name: integer(f"batching.{key}", value.get(key, default), low=low, high=high)
        for key, (name, default, low, high) in BATCHING_FIELDS.items()
    }
    return BatchingSettings(**fields)
