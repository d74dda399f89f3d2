"""The neuron-monitor sidecar's exporter: neuron-monitor reports in, CloudWatch EMF lines out.

Every document it writes is checked against the EMF specification (tests/emf_spec.py): every
dimension named, present on the root node, a non-empty string. Identity comes from the ECS task
metadata endpoint (served here on loopback), never from neuron-monitor's instance metadata.
"""

from __future__ import annotations

import http.server
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.neuron_monitor.runtime import metric_names as metrics
from components.neuron_monitor.runtime import neuron_emf
from tests.emf_spec import violations
from tests.loopback import serving
from tests.paths import MONITOR_RUNTIME

EXPORTER = MONITOR_RUNTIME / "neuron_emf.py"

TASK_ARN = "arn:aws:ecs:us-east-1:111122223333:task/bert-cluster/0123456789abcdef0123456789abcdef"
IDENTITY = {"ServiceName": "bert-service", "TaskId": "0123456789abcdef0123456789abcdef"}
RUNTIME: dict[str, Any] = {
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
REPORT: dict[str, Any] = {"instance_info": {"instance_id": "i-0abc"}, "neuron_runtime_data": [RUNTIME]}
# What neuron-monitor reports in a bridge-mode container with IMDSv2 and a hop limit of 1.
REPORTS_AS_SEEN_IN_THE_SIDECAR = {
    "with instance_info": REPORT,
    "without instance_info": {"neuron_runtime_data": [RUNTIME]},
    "instance_info with an error": {
        "instance_info": {"instance_id": "", "error": "failed to fetch instance metadata"},
        "neuron_runtime_data": [RUNTIME],
    },
    "a runtime with an error": {"neuron_runtime_data": [RUNTIME, {"pid": 7, "report": {}, "error": "timed out"}]},
    "several runtimes": {"neuron_runtime_data": [RUNTIME, RUNTIME, RUNTIME]},
}


def emitted(report: dict[str, Any], identity: dict[str, str] | None = None) -> list[dict[str, Any]]:
    return list(
        neuron_emf.metric_documents(
            report,
            cluster_name="bert-cluster",
            identity=IDENTITY if identity is None else identity,
            now_ms=1_700_000_000_000,
        )
    )


def metrics_of(document: dict[str, Any]) -> dict[str, str]:
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    return {metric["Name"]: metric["Unit"] for metric in directive["Metrics"]}


def dimension_sets(document: dict[str, Any]) -> list[list[str]]:
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    return list(directive["Dimensions"])


@pytest.mark.parametrize("case", sorted(REPORTS_AS_SEEN_IN_THE_SIDECAR))
@pytest.mark.parametrize(
    "identity",
    [IDENTITY, {}, {"TaskId": IDENTITY["TaskId"]}, {"ServiceName": "  "}],
    ids=["full identity", "no task metadata", "task only", "blank service"],
)
def test_every_document_is_valid_emf_with_no_empty_dimension(case: str, identity: dict[str, str]) -> None:
    documents = emitted(REPORTS_AS_SEEN_IN_THE_SIDECAR[case], identity)

    assert documents
    for document in documents:
        assert violations(document) == []
        assert "InstanceId" not in json.dumps(dimension_sets(document))


def test_each_neuroncore_gets_its_utilisation_with_the_tasks_identity() -> None:
    per_core = [doc for doc in emitted(REPORT) if "NeuronCore" in doc]

    assert [(doc["NeuronCore"], doc["NeuronCoreUtilization"]) for doc in per_core] == [("0", 80.0), ("1", 40.0)]
    for doc in per_core:
        assert doc["_aws"]["Timestamp"] == 1_700_000_000_000
        assert dimension_sets(doc) == [["ClusterName", "ServiceName", "TaskId", "NeuronCore"]]
        assert metrics_of(doc) == {"NeuronCoreUtilization": "Percent"}


def test_the_task_summary_goes_to_the_cluster_and_to_the_service_its_scaling_reads() -> None:
    (summary,) = [doc for doc in emitted(REPORT) if "NeuronCore" not in doc]

    assert summary["NeuronCoreUtilizationAverage"] == 60.0
    assert (summary["DeviceMemoryUsed"], summary["HostMemoryUsed"]) == (5000.0, 1000.0)
    assert (summary["ExecutionsCompleted"], summary["ExecutionErrors"]) == (120.0, 3.0)
    assert summary["ExecutionLatencyP50"] == pytest.approx(12.0)
    assert summary["ExecutionLatencyP99"] == pytest.approx(30.0)
    assert metrics_of(summary)["ExecutionLatencyP99"] == "Milliseconds"
    assert dimension_sets(summary) == [["ClusterName"], list(metrics.SERVICE_DIMENSIONS)]


def test_without_a_service_name_the_summary_goes_to_the_cluster_only() -> None:
    (summary,) = [doc for doc in emitted(REPORT, {}) if "NeuronCore" not in doc]

    assert dimension_sets(summary) == [["ClusterName"]]


def test_several_runtimes_add_up_and_keep_the_worst_latency() -> None:
    second = json.loads(json.dumps(RUNTIME))
    second["report"]["execution_stats"]["latency_stats"]["total_latency"]["p99"] = 0.050

    (summary,) = [doc for doc in emitted({"neuron_runtime_data": [RUNTIME, second]}) if "NeuronCore" not in doc]

    assert summary["ExecutionsCompleted"] == 240.0
    assert summary["ExecutionLatencyP99"] == pytest.approx(50.0)


def test_an_idle_task_emits_nothing() -> None:
    assert emitted({"neuron_runtime_data": [], "instance_info": {}}) == []


numbers = st.one_of(
    st.integers(-5, 10**12), st.floats(allow_nan=False, allow_infinity=False), st.none(), st.text(max_size=3)
)
runtime_reports = st.fixed_dictionaries(
    {
        "report": st.fixed_dictionaries(
            {
                "neuroncore_counters": st.fixed_dictionaries(
                    {
                        "neuroncores_in_use": st.dictionaries(
                            st.text(min_size=1, max_size=3), st.fixed_dictionaries({"neuroncore_utilization": numbers})
                        )
                    }
                ),
                "memory_used": st.fixed_dictionaries(
                    {"neuron_runtime_used_bytes": st.fixed_dictionaries({"host": numbers, "neuron_device": numbers})}
                ),
                "execution_stats": st.fixed_dictionaries(
                    {
                        "execution_summary": st.fixed_dictionaries({"completed": numbers}),
                        "error_summary": st.dictionaries(st.text(max_size=5), numbers, max_size=3),
                        "latency_stats": st.fixed_dictionaries(
                            {"total_latency": st.fixed_dictionaries({"p50": numbers, "p99": numbers})}
                        ),
                    }
                ),
            }
        ),
        "error": st.text(max_size=10),
    }
)


@given(
    runtimes=st.lists(runtime_reports, max_size=4),
    identity=st.dictionaries(st.sampled_from(["ServiceName", "TaskId"]), st.text(max_size=8)),
)
def test_any_report_gives_valid_emf(runtimes: list[dict[str, Any]], identity: dict[str, str]) -> None:
    for document in emitted({"neuron_runtime_data": runtimes}, identity):
        assert violations(document) == []


def test_the_checker_catches_the_old_empty_instance_dimension() -> None:
    old = {
        "_aws": {
            "Timestamp": 1,
            "CloudWatchMetrics": [
                {"Namespace": "N", "Dimensions": [["ClusterName", "InstanceId"]], "Metrics": [{"Name": "M"}]}
            ],
        },
        "ClusterName": "c",
        "InstanceId": "",
        "M": 1.0,
    }

    assert violations(old) == [
        "CloudWatchMetrics[0].Dimensions[0]: dimension 'InstanceId' has an empty or over-long value ''"
    ]
    assert violations({**old, "InstanceId": None}) != []
    del old["InstanceId"]
    assert violations(old) != []


def test_run_skips_lines_that_are_not_reports() -> None:
    out = io.StringIO()

    skipped = neuron_emf.run(
        [json.dumps(REPORT), "not json", "[1, 2]", ""], cluster_name="c", identity={}, out=out, clock=lambda: 1.0
    )

    assert skipped == 2
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert all(json.loads(line)["_aws"]["Timestamp"] == 1000 for line in lines)


class _TaskMetadata(http.server.BaseHTTPRequestHandler):
    """The ECS agent's task metadata endpoint, v4, as far as the exporter reads it."""

    status = 200

    def do_GET(self) -> None:
        body = json.dumps({"Cluster": "bert-cluster", "TaskARN": TASK_ARN, "ServiceName": "bert-service"}).encode()
        if self.path != "/v4/container-id/task" or self.status != 200:
            self.send_error(self.status if self.status != 200 else 404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def metadata_endpoint() -> Iterator[tuple[str, type[_TaskMetadata]]]:
    handler = type("Handler", (_TaskMetadata,), {"status": 200})
    with serving(handler) as port:
        yield f"http://127.0.0.1:{port}/v4/container-id", handler


def run_exporter(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXPORTER)],
        input=json.dumps(REPORTS_AS_SEEN_IN_THE_SIDECAR["instance_info with an error"]) + "\n",
        capture_output=True,
        text=True,
        timeout=30,
        env={"METRICS_NAMESPACE": metrics.NAMESPACE, **env},
        check=False,
    )


def test_the_sidecar_takes_its_identity_from_the_task_metadata_endpoint(
    metadata_endpoint: tuple[str, type[_TaskMetadata]],
) -> None:
    uri, _ = metadata_endpoint

    result = run_exporter({"CLUSTER_NAME": "bert-cluster", "ECS_CONTAINER_METADATA_URI_V4": uri})

    assert result.returncode == 0, result.stderr
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(documents) == 3
    assert all(violations(document) == [] for document in documents)
    assert {document["_aws"]["CloudWatchMetrics"][0]["Namespace"] for document in documents} == {metrics.NAMESPACE}
    assert {(document["ServiceName"], document["TaskId"]) for document in documents} == {
        ("bert-service", "0123456789abcdef0123456789abcdef")
    }


@pytest.mark.parametrize("failure", ["endpoint errors", "endpoint unreachable", "not in ECS"])
def test_without_task_metadata_the_sidecar_still_publishes_valid_metrics(
    metadata_endpoint: tuple[str, type[_TaskMetadata]], failure: str
) -> None:
    uri, handler = metadata_endpoint
    handler.status = 500
    env = {"CLUSTER_NAME": "bert-cluster"}
    if failure == "endpoint errors":
        env["ECS_CONTAINER_METADATA_URI_V4"] = uri
    elif failure == "endpoint unreachable":
        env["ECS_CONTAINER_METADATA_URI_V4"] = "http://127.0.0.1:9/v4/none"

    result = run_exporter(env)

    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0
    assert len(documents) == 3
    assert all(violations(document) == [] for document in documents)
    assert all("ServiceName" not in document and "TaskId" not in document for document in documents)


def test_without_a_cluster_name_the_sidecar_stops_with_one_line() -> None:
    result = run_exporter({})

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "neuron_emf: CLUSTER_NAME is not set: the task definition must name the cluster"
    ]
