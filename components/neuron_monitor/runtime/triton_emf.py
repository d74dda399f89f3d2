"""Triton's Prometheus metrics as per-interval figures, for the sidecar's EMF lines (``neuron_emf.py``).

Triton serves cumulative counters at ``:8002/metrics`` (Triton user guide, "Metrics": request
success and failure counts, inference and execution counts, and cumulative request, queue and
compute microseconds, per model). CloudWatch wants what happened in each interval, so each scrape
is turned into the change since the last one: counts, and mean milliseconds per successful request.
A counter that went down means Triton restarted: its value is then the whole interval's change.
The pending-request gauge, where this Triton has it, is passed on as it is.

Runs with the sidecar image's system python3 (3.9 on Amazon Linux 2023); prometheus_client's
parser reads the text format.

``neuron_emf.py`` scrapes once per neuron-monitor report when the task sets ``TRITON_METRICS_URL``.
"""

from __future__ import annotations

import sys
import urllib.request
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Optional

from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING or __package__:  # imported as a package module (the CDK app, the tests, mypy)
    from . import metric_names
else:  # run in the image, beside its sibling modules
    import metric_names
# Triton's counters (user guide, "Metrics", Counts) -> the interval's count.
COUNTS = {
    "nv_inference_request_success": metric_names.INFERENCE_REQUESTS,
    "nv_inference_request_failure": metric_names.INFERENCE_FAILURES,
    "nv_inference_count": metric_names.INFERENCES,
    "nv_inference_exec_count": metric_names.BATCH_EXECUTIONS,
}
# Triton's cumulative microseconds (user guide, "Metrics", Latencies: Counters) -> mean milliseconds
# per successful request in the interval.
DURATIONS = {
    "nv_inference_queue_duration_us": metric_names.QUEUE_TIME,
    "nv_inference_compute_infer_duration_us": metric_names.COMPUTE_TIME,
    "nv_inference_request_duration_us": metric_names.REQUEST_TIME,
}
# Gauges, passed on as they are.
GAUGES = {"nv_inference_pending_request_count": metric_names.PENDING_REQUESTS}
SUCCESS = "nv_inference_request_success"
SCRAPE_TIMEOUT_SECONDS = 2.0

Figures = dict[str, tuple[float, str]]


def totals(text: str, model: Optional[str] = None) -> dict[str, float]:
    """Each metric this reads, summed over versions and failure reasons (of ``model``, if given)."""
    wanted = {*COUNTS, *DURATIONS, *GAUGES}
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in wanted:
            continue
        # The parser names a counter's samples <family>_total (OpenMetrics), whatever Triton wrote.
        for sample in family.samples:
            if sample.name not in (family.name, f"{family.name}_total"):
                continue
            if model is None or sample.labels.get("model") == model:
                found[family.name] = found.get(family.name, 0.0) + float(sample.value)
    return found


def figures(previous: Optional[Mapping[str, float]], current: Mapping[str, float]) -> Figures:
    """The interval's figures from two scrapes; only gauges from the first."""
    result: Figures = {GAUGES[name]: (current[name], "Count") for name in GAUGES if name in current}
    if previous is None:
        return result
    restarted = any(current.get(name, 0.0) < previous.get(name, 0.0) for name in (*COUNTS, *DURATIONS))

    def change(name: str) -> Optional[float]:
        if name not in current:
            return None
        return current[name] if restarted else current[name] - previous.get(name, 0.0)

    for name, metric in COUNTS.items():
        counted = change(name)
        if counted is not None:
            result[metric] = (counted, "Count")
    requests = change(SUCCESS)
    if requests:
        for name, metric in DURATIONS.items():
            microseconds = change(name)
            if microseconds is not None:
                result[metric] = (microseconds / requests / 1000.0, "Milliseconds")
    return result


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_SECONDS) as response:
        return str(response.read().decode("utf-8"))


class TritonScrape:
    """Scrapes Triton once per call and returns the figures since the previous call."""

    def __init__(self, url: str, *, model: Optional[str] = None, fetch: Callable[[str], str] = _fetch) -> None:
        self._url, self._model, self._fetch = url, model, fetch
        self._previous: Optional[dict[str, float]] = None
        self._unavailable = False

    def __call__(self) -> Figures:
        try:
            current = totals(self._fetch(self._url), self._model)
        except (OSError, ValueError) as error:
            # Not up yet (a model loads for minutes), or restarting: said once per outage, and the
            # next scrape that answers starts afresh.
            if not self._unavailable:
                print(f"triton_emf: {self._url} unavailable ({error}); retrying each report", file=sys.stderr)
            self._unavailable, self._previous = True, None
            return {}
        self._unavailable = False
        previous, self._previous = self._previous, current
        return figures(previous, current)
