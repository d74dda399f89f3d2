"""The figures a run produces: latency percentiles, throughput, errors, and cost."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from client.load import LoadResult

PERCENTILES = (50, 90, 99)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile by linear interpolation between closest ranks (numpy's default)."""
    return float(np.percentile(np.asarray(values, dtype=float), q))


@dataclass(frozen=True)
class Summary:
    requests: int
    errors: int
    errors_by_code: dict[str, int]
    duration_s: float
    throughput_rps: float
    inferences_per_s: float
    latency_ms: dict[str, float]
    interrupted: bool
    max_in_flight: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "errors_by_code": self.errors_by_code,
            "duration_s": round(self.duration_s, 6),
            "throughput_rps": round(self.throughput_rps, 3),
            "inferences_per_s": round(self.inferences_per_s, 3),
            "latency_ms": {key: round(value, 3) for key, value in self.latency_ms.items()},
            "interrupted": self.interrupted,
            "max_in_flight": self.max_in_flight,
        }


def summarize(result: LoadResult, *, batch: int) -> Summary:
    """``requests`` counts every completed request; latency and throughput count the successful ones.

    Throughput is successes per second of the measured phase, from its start (after warm-up)
    to the last completion.
    """
    successes = [sample.latency * 1000.0 for sample in result.samples if sample.error is None]
    errors = Counter(sample.error for sample in result.samples if sample.error is not None)
    duration = max(result.finished - result.started, 1e-9)
    latency: dict[str, float] = {}
    if successes:
        latency["avg"] = float(np.mean(successes))
        latency["min"] = float(np.min(successes))
        for q in PERCENTILES:
            latency[f"p{q}"] = percentile(successes, q)
        latency["max"] = float(np.max(successes))
    throughput = len(successes) / duration
    return Summary(
        requests=len(result.samples),
        errors=sum(errors.values()),
        errors_by_code=dict(sorted((str(code), count) for code, count in errors.items())),
        duration_s=duration,
        throughput_rps=throughput,
        inferences_per_s=throughput * batch,
        latency_ms=latency,
        interrupted=result.interrupted,
        max_in_flight=result.max_in_flight,
    )


def cost_per_million(hourly_price: float, inferences_per_s: float) -> float | None:
    """Dollars per million inferences at the measured rate, or None with no throughput."""
    if inferences_per_s <= 0:
        return None
    return hourly_price / (inferences_per_s * 3600.0) * 1_000_000
