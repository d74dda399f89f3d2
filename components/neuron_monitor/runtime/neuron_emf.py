"""Turns neuron-monitor's JSON reports (one per line on stdin) into CloudWatch EMF lines on stdout.

CloudWatch Logs extracts metrics from Embedded Metric Format log events, so a container whose
stdout goes to the awslogs driver publishes metrics without calling CloudWatch itself.
Standard library only: it runs in the sidecar image with the system python3.

Identity comes from the ECS task metadata endpoint (v4), not from neuron-monitor's
``instance_info``: that needs instance metadata, which IMDSv2 with a hop limit of 1 keeps from
bridge-mode containers, so it arrives empty or with an ``error``. A dimension whose value is not
known is left out, never sent empty.

With ``TRITON_METRICS_URL`` set (Triton's tasks), each report also carries Triton's request,
queue and compute figures for the same interval (``triton_emf.py``), under the same dimensions.

    env: CLUSTER_NAME (required), METRICS_NAMESPACE, ECS_CONTAINER_METADATA_URI_V4 (set by the ECS agent),
         TRITON_METRICS_URL
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING or __package__:  # imported as a package module (the CDK app, the tests, mypy)
    from . import metric_names, monitor_environment, triton_emf
else:  # run in the image, beside its sibling modules
    import metric_names
    import monitor_environment
    import triton_emf
EXECUTION_LATENCY = {"p50": metric_names.EXECUTION_LATENCY_P50, "p99": metric_names.EXECUTION_LATENCY_P99}

NAMESPACE = os.environ.get(monitor_environment.METRICS_NAMESPACE, metric_names.NAMESPACE)
METADATA_TIMEOUT_SECONDS = 2.0
METADATA_ATTEMPTS = 3


def task_identity(
    metadata_uri: Optional[str], *, attempts: int = METADATA_ATTEMPTS, pause: float = 0.5
) -> dict[str, str]:
    """``ServiceName`` and ``TaskId`` of this task from ``${ECS_CONTAINER_METADATA_URI_V4}/task``; only those known.

    The response carries ``TaskARN`` (``.../task/<cluster>/<task id>``) and, for a service's task,
    ``ServiceName`` (amazon-ecs-agent ecs-agent/tmds/handlers/v2 and v4 response.go).
    """
    if not metadata_uri:
        return {}
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(f"{metadata_uri}/task", timeout=METADATA_TIMEOUT_SECONDS) as response:
                task = json.load(response)
            break
        except (OSError, ValueError) as error:
            print(f"neuron_emf: task metadata unavailable ({error})", file=sys.stderr)
            if attempt + 1 < attempts:
                time.sleep(pause)
    else:
        return {}
    identity = {}
    if isinstance(task, dict):
        task_arn, service = task.get("TaskARN"), task.get("ServiceName")
        if isinstance(task_arn, str) and task_arn.rsplit("/", 1)[-1].strip():
            identity[metric_names.TASK] = task_arn.rsplit("/", 1)[-1].strip()
        if isinstance(service, str) and service.strip():
            identity[metric_names.SERVICE] = service.strip()
    return identity


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


def _number(value: object) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _add(totals: dict[str, tuple[float, str]], name: str, amount: float, unit: str) -> None:
    totals[name] = (totals.get(name, (0.0, unit))[0] + amount, unit)


def metric_documents(
    report: dict[str, Any],
    *,
    cluster_name: str,
    identity: Mapping[str, str],
    now_ms: int,
    server_figures: Optional[Mapping[str, tuple[float, str]]] = None,
) -> Iterator[dict[str, Any]]:
    """The EMF documents for one neuron-monitor report: one per NeuronCore, one for the task.

    Totals go to the cluster, and to the service when the task metadata named it: the service's
    figure is what its autoscaling tracks. Per-core figures carry every identity dimension known.
    """
    base = {metric_names.CLUSTER: cluster_name, **{key: value for key, value in identity.items() if value.strip()}}
    task_dimensions = list(base)
    summary_dimensions = [[metric_names.CLUSTER]] + (
        [[metric_names.CLUSTER, metric_names.SERVICE]] if metric_names.SERVICE in base else []
    )
    utilisations: list[float] = []
    totals: dict[str, tuple[float, str]] = {}

    for runtime in report.get("neuron_runtime_data") or []:
        runtime_report = runtime.get("report") or {}
        cores = (runtime_report.get("neuroncore_counters") or {}).get("neuroncores_in_use") or {}
        for core, counters in sorted(cores.items()):
            utilisation = _number((counters or {}).get("neuroncore_utilization"))
            if utilisation is None or not str(core).strip():
                continue
            utilisations.append(utilisation)
            yield _emf(
                now_ms,
                [[*task_dimensions, metric_names.NEURON_CORE]],
                {metric_names.NEURON_CORE_UTILIZATION: (utilisation, "Percent")},
                {**base, metric_names.NEURON_CORE: str(core).strip()},
            )

        used = (runtime_report.get("memory_used") or {}).get("neuron_runtime_used_bytes") or {}
        for source, name in (
            ("neuron_device", metric_names.DEVICE_MEMORY_USED),
            ("host", metric_names.HOST_MEMORY_USED),
        ):
            amount = _number(used.get(source))
            if amount is not None:
                _add(totals, name, amount, "Bytes")

        stats = runtime_report.get("execution_stats") or {}
        summary = stats.get("execution_summary") or {}
        completed = _number(summary.get("completed"))
        if completed is not None:
            _add(totals, metric_names.EXECUTIONS_COMPLETED, completed, "Count")
        errors = [count for count in map(_number, (stats.get("error_summary") or {}).values()) if count is not None]
        if errors:
            _add(totals, metric_names.EXECUTION_ERRORS, sum(errors), "Count")
        latency = (stats.get("latency_stats") or {}).get("total_latency") or {}
        for percentile, name in EXECUTION_LATENCY.items():
            seconds = _number(latency.get(percentile))
            if seconds is not None:
                # Several runtimes on one instance: keep the worst, the one alarms care about.
                worst = max(seconds * 1000.0, totals.get(name, (0.0, ""))[0])
                totals[name] = (worst, "Milliseconds")

    if utilisations:
        totals[metric_names.NEURON_CORE_UTILIZATION_AVERAGE] = (sum(utilisations) / len(utilisations), "Percent")
    totals.update(server_figures or {})
    if totals:
        yield _emf(now_ms, summary_dimensions, totals, base)


def run(
    lines: Iterable[str],
    *,
    cluster_name: str,
    identity: Mapping[str, str],
    out: Any = sys.stdout,
    clock: Any = time.time,
    server_figures: Optional[Callable[[], Mapping[str, tuple[float, str]]]] = None,
) -> int:
    """Converts every report line; a line that is not a JSON object is reported and skipped.

    ``server_figures`` (a ``triton_emf.TritonScrape``) is asked once per report.
    """
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
        documents = metric_documents(
            report,
            cluster_name=cluster_name,
            identity=identity,
            now_ms=int(clock() * 1000),
            server_figures=server_figures() if server_figures else None,
        )
        for document in documents:
            out.write(json.dumps(document, separators=(",", ":")) + "\n")
        out.flush()
    return skipped


def main() -> int:
    cluster_name = os.environ.get(monitor_environment.CLUSTER_NAME, "").strip()
    if not cluster_name:
        print("neuron_emf: CLUSTER_NAME is not set: the task definition must name the cluster", file=sys.stderr)
        return 2
    identity = task_identity(os.environ.get(monitor_environment.ECS_CONTAINER_METADATA_URI_V4))
    triton_url = os.environ.get(monitor_environment.TRITON_METRICS_URL, "").strip()
    scrape = None
    if triton_url:
        scrape = triton_emf.TritonScrape(triton_url)
    run(sys.stdin, cluster_name=cluster_name, identity=identity, server_figures=scrape)
    return 0


if __name__ == "__main__":
    sys.exit(main())
