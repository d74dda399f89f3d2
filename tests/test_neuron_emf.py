"""The neuron-monitor sidecar's exporter: neuron-monitor reports in, CloudWatch EMF lines out."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from typing import Any

import pytest

from components.model_image import DOCKER_DIR

EXPORTER = DOCKER_DIR / "neuron-monitor" / "neuron_emf.py"
sys.path.insert(0, str(EXPORTER.parent))
import neuron_emf  # noqa: E402

REPORT: dict[str, Any] = {
    "instance_info": {"instance_id": "i-0abc", "instance_type": "inf1.xlarge"},
    "neuron_runtime_data": [
        {
            "pid": 42,
            "report": {
                "neuroncore_counters": {
                    "neuroncores_in_use": {
                        "0": {"neuroncore_utilization": 80.0},
                        "1": {"neuroncore_utilization": 40.0},
                    }
                },
                "memory_used": {"neuron_runtime_used_bytes": {"host": 1000, "neuron_device": 5000}},
                "execution_stats": {
                    "execution_summary": {"completed": 120, "timed_out": 0},
                    "error_summary": {"generic": 1, "hardware": 2},
                    "latency_stats": {"total_latency": {"p50": 0.012, "p99": 0.030}},
                },
            },
        }
    ],
}


def emitted(report: dict[str, Any]) -> list[dict[str, Any]]:
    return list(neuron_emf.metric_documents(report, now_ms=1_700_000_000_000))


def metrics_of(document: dict[str, Any]) -> dict[str, str]:
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    return {metric["Name"]: metric["Unit"] for metric in directive["Metrics"]}


def test_each_neuroncore_gets_its_utilisation_with_its_dimensions() -> None:
    per_core = [doc for doc in emitted(REPORT) if "NeuronCore" in doc]

    assert [(doc["NeuronCore"], doc["NeuronCoreUtilization"]) for doc in per_core] == [("0", 80.0), ("1", 40.0)]
    for doc in per_core:
        assert doc["_aws"]["Timestamp"] == 1_700_000_000_000
        assert doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["ClusterName", "InstanceId", "NeuronCore"]]
        assert doc["InstanceId"] == "i-0abc"
        assert metrics_of(doc) == {"NeuronCoreUtilization": "Percent"}


def test_instance_summary_adds_memory_executions_errors_and_latency() -> None:
    (summary,) = [doc for doc in emitted(REPORT) if "NeuronCore" not in doc]

    assert summary["NeuronCoreUtilizationAverage"] == 60.0
    assert (summary["DeviceMemoryUsed"], summary["HostMemoryUsed"]) == (5000.0, 1000.0)
    assert (summary["ExecutionsCompleted"], summary["ExecutionErrors"]) == (120.0, 3.0)
    assert summary["ExecutionLatencyP50"] == pytest.approx(12.0)
    assert summary["ExecutionLatencyP99"] == pytest.approx(30.0)
    assert metrics_of(summary)["ExecutionLatencyP99"] == "Milliseconds"
    assert summary["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["ClusterName"], ["ClusterName", "InstanceId"]]
    # every metric a directive names is present as a top-level value (EMF's rule)
    assert set(metrics_of(summary)) <= set(summary)


def test_several_runtimes_add_up_and_keep_the_worst_latency() -> None:
    second = json.loads(json.dumps(REPORT["neuron_runtime_data"][0]))
    second["report"]["execution_stats"]["latency_stats"]["total_latency"]["p99"] = 0.050
    report = {**REPORT, "neuron_runtime_data": [REPORT["neuron_runtime_data"][0], second]}

    (summary,) = [doc for doc in emitted(report) if "NeuronCore" not in doc]

    assert summary["ExecutionsCompleted"] == 240.0
    assert summary["ExecutionLatencyP99"] == pytest.approx(50.0)


def test_an_idle_instance_emits_nothing() -> None:
    assert emitted({"neuron_runtime_data": [], "instance_info": {}}) == []


def test_run_skips_lines_that_are_not_reports() -> None:
    out = io.StringIO()

    skipped = neuron_emf.run([json.dumps(REPORT), "not json", "[1, 2]", ""], out=out, clock=lambda: 1.0)

    assert skipped == 2
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert all(json.loads(line)["_aws"]["Timestamp"] == 1000 for line in lines)


def test_exporter_runs_as_the_sidecar_runs_it() -> None:
    # GIVEN the script as the container's entrypoint pipes neuron-monitor into it
    result = subprocess.run(
        [sys.executable, str(EXPORTER)],
        input=json.dumps(REPORT) + "\n",
        capture_output=True,
        text=True,
        timeout=30,
        env={"METRICS_NAMESPACE": "TestSpace", "CLUSTER_NAME": "c1"},
        check=True,
    )

    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(documents) == 3
    assert {doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] for doc in documents} == {"TestSpace"}
    assert {doc["ClusterName"] for doc in documents} == {"c1"}
