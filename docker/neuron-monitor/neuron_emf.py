"""Turns neuron-monitor's JSON reports (one per line on stdin) into CloudWatch EMF lines on stdout.

CloudWatch Logs extracts metrics from Embedded Metric Format log events, so a container whose
stdout goes to the awslogs driver publishes metrics without calling CloudWatch itself.
Standard library only: it runs in the sidecar image with the system python3.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

NAMESPACE = os.environ.get("METRICS_NAMESPACE", "NeuronMonitor")
CLUSTER_NAME = os.environ.get("CLUSTER_NAME", "unknown")


def _emf(
    timestamp_ms: int, dimensions: list[list[str]], values: dict[str, tuple[float, str]], labels: dict[str, str]
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": dimensions,
                    "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in values.items()],
                }
            ],
        },
        **labels,
    }
    document.update({name: value for name, (value, _) in values.items()})
    return document


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _add(totals: dict[str, tuple[float, str]], name: str, amount: float, unit: str) -> None:
    totals[name] = (totals.get(name, (0.0, unit))[0] + amount, unit)


def metric_documents(report: dict[str, Any], *, now_ms: int) -> Iterator[dict[str, Any]]:
    """The EMF documents for one neuron-monitor report: one per NeuronCore, one per instance."""
    instance_id = str(report.get("instance_info", {}).get("instance_id", "unknown"))
    base = {"ClusterName": CLUSTER_NAME, "InstanceId": instance_id}
    utilisations: list[float] = []
    totals: dict[str, tuple[float, str]] = {}

    for runtime in report.get("neuron_runtime_data") or []:
        runtime_report = runtime.get("report") or {}
        cores = (runtime_report.get("neuroncore_counters") or {}).get("neuroncores_in_use") or {}
        for core, counters in sorted(cores.items()):
            utilisation = _number((counters or {}).get("neuroncore_utilization"))
            if utilisation is None:
                continue
            utilisations.append(utilisation)
            yield _emf(
                now_ms,
                [["ClusterName", "InstanceId", "NeuronCore"]],
                {"NeuronCoreUtilization": (utilisation, "Percent")},
                {**base, "NeuronCore": str(core)},
            )

        used = (runtime_report.get("memory_used") or {}).get("neuron_runtime_used_bytes") or {}
        for source, name in (("neuron_device", "DeviceMemoryUsed"), ("host", "HostMemoryUsed")):
            amount = _number(used.get(source))
            if amount is not None:
                _add(totals, name, amount, "Bytes")

        stats = runtime_report.get("execution_stats") or {}
        summary = stats.get("execution_summary") or {}
        completed = _number(summary.get("completed"))
        if completed is not None:
            _add(totals, "ExecutionsCompleted", completed, "Count")
        errors = [count for count in map(_number, (stats.get("error_summary") or {}).values()) if count is not None]
        if errors:
            _add(totals, "ExecutionErrors", sum(errors), "Count")
        latency = (stats.get("latency_stats") or {}).get("total_latency") or {}
        for percentile in ("p50", "p99"):
            seconds = _number(latency.get(percentile))
            if seconds is not None:
                name = f"ExecutionLatency{percentile.upper()}"
                # Several runtimes on one instance: keep the worst, the one alarms care about.
                worst = max(seconds * 1000.0, totals.get(name, (0.0, ""))[0])
                totals[name] = (worst, "Milliseconds")

    if utilisations:
        totals["NeuronCoreUtilizationAverage"] = (sum(utilisations) / len(utilisations), "Percent")
    if totals:
        yield _emf(now_ms, [["ClusterName"], ["ClusterName", "InstanceId"]], totals, base)


def run(lines: Iterable[str], out: Any = sys.stdout, clock: Any = time.time) -> int:
    """Converts every report line; a line that is not a JSON object is reported and skipped."""
    skipped = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            report = json.loads(line)
        except json.JSONDecodeError:
            report = None
        if not isinstance(report, dict):
            skipped += 1
            print(f"neuron_emf: skipped a line that is not a neuron-monitor report: {line[:120]!r}", file=sys.stderr)
            continue
        for document in metric_documents(report, now_ms=int(clock() * 1000)):
            out.write(json.dumps(document, separators=(",", ":")) + "\n")
        out.flush()
    return skipped


if __name__ == "__main__":
    run(sys.stdin)
