"""Triton's Prometheus metrics through the sidecar: scraped, turned into per-interval figures, published as EMF.

Triton's text is written here as Triton writes it (user guide, "Metrics": counters per model and
version, failures also per reason, the pending-request gauge); the figures are checked against
arithmetic on the counters, and every document the sidecar prints against the EMF specification.
"""

from __future__ import annotations

import http.server
import json
import math
import subprocess
import sys
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.neuron_monitor.runtime import metric_names as metrics
from components.neuron_monitor.runtime import neuron_emf, triton_emf
from tests.conftest import ROOT
from tests.emf_spec import violations
from tests.loopback import serving
from tests.paths import MONITOR_RUNTIME

SIDECAR = MONITOR_RUNTIME

COUNTERS = (
    "nv_inference_request_success",
    "nv_inference_count",
    "nv_inference_exec_count",
    "nv_inference_request_duration_us",
    "nv_inference_queue_duration_us",
    "nv_inference_compute_infer_duration_us",
)


def triton_text(
    values: Mapping[str, float], *, failures: Mapping[str, float] | None = None, model: str = "bert"
) -> str:
    """``/metrics`` as Triton serves it, for one model, version 1."""
    lines = []
    for name in COUNTERS:
        if name in values:
            lines += [
                f"# HELP {name} {name}",
                f"# TYPE {name} counter",
                f'{name}{{model="{model}",version="1"}} {values[name]}',
            ]
    if failures:
        lines += ["# HELP nv_inference_request_failure failures", "# TYPE nv_inference_request_failure counter"]
        lines += [
            f'nv_inference_request_failure{{model="{model}",reason="{reason}",version="1"}} {count}'
            for reason, count in failures.items()
        ]
    if "pending" in values:
        lines += [
            "# HELP nv_inference_pending_request_count pending",
            "# TYPE nv_inference_pending_request_count gauge",
            f'nv_inference_pending_request_count{{model="{model}",version="1"}} {values["pending"]}',
        ]
    # Triton's CPU metrics sit beside them and are not read.
    lines += ["# HELP nv_cpu_utilization cpu", "# TYPE nv_cpu_utilization gauge", "nv_cpu_utilization 0.5"]
    return "\n".join(lines) + "\n"


FIRST = {
    "nv_inference_request_success": 100,
    "nv_inference_count": 400,
    "nv_inference_exec_count": 50,
    "nv_inference_request_duration_us": 900_000,
    "nv_inference_queue_duration_us": 100_000,
    "nv_inference_compute_infer_duration_us": 600_000,
    "pending": 2,
}
SECOND = {
    "nv_inference_request_success": 140,
    "nv_inference_count": 560,
    "nv_inference_exec_count": 60,
    "nv_inference_request_duration_us": 1_300_000,
    "nv_inference_queue_duration_us": 180_000,
    "nv_inference_compute_infer_duration_us": 800_000,
    "pending": 7,
}


class Scripted:
    """Triton's metrics endpoint as the sidecar sees it: each scrape gets the next text, or fails."""

    def __init__(self, *texts: str | None) -> None:
        self.texts = list(texts)

    def __call__(self, _url: str) -> str:
        text = self.texts.pop(0)
        if text is None:
            raise ConnectionRefusedError("connection refused")
        return text


def test_the_first_scrape_sets_the_baseline_and_the_next_gives_the_intervals_figures() -> None:
    scrape = triton_emf.TritonScrape(
        "http://model-server:8002/metrics",
        fetch=Scripted(
            triton_text(FIRST, failures={"BACKEND": 1}), triton_text(SECOND, failures={"BACKEND": 3, "REJECTED": 2})
        ),
    )

    assert scrape() == {metrics.PENDING_REQUESTS: (2.0, "Count")}
    assert scrape() == {
        metrics.PENDING_REQUESTS: (7.0, "Count"),
        metrics.INFERENCE_REQUESTS: (40.0, "Count"),
        metrics.INFERENCE_FAILURES: (4.0, "Count"),  # every reason, 1 -> 5
        metrics.INFERENCES: (160.0, "Count"),
        metrics.BATCH_EXECUTIONS: (10.0, "Count"),
        # microseconds in the interval / successful requests in it, in ms
        metrics.REQUEST_TIME: (400_000 / 40 / 1000, "Milliseconds"),
        metrics.QUEUE_TIME: (80_000 / 40 / 1000, "Milliseconds"),
        metrics.COMPUTE_TIME: (200_000 / 40 / 1000, "Milliseconds"),
    }


def test_a_restarted_triton_counts_from_zero_instead_of_going_negative() -> None:
    restarted = {**FIRST, "nv_inference_request_success": 8, "nv_inference_queue_duration_us": 4_000}
    scrape = triton_emf.TritonScrape("u", fetch=Scripted(triton_text(SECOND), triton_text(restarted)))

    scrape()
    figures = scrape()

    assert figures[metrics.INFERENCE_REQUESTS] == (8.0, "Count")
    assert figures[metrics.QUEUE_TIME] == (4_000 / 8 / 1000, "Milliseconds")
    assert all(value >= 0 for value, _ in figures.values())


def test_an_idle_interval_has_counts_of_zero_and_no_mean_time() -> None:
    scrape = triton_emf.TritonScrape("u", fetch=Scripted(triton_text(FIRST), triton_text(FIRST)))

    scrape()
    figures = scrape()

    assert figures[metrics.INFERENCE_REQUESTS] == (0.0, "Count")
    assert metrics.QUEUE_TIME not in figures  # no request: no mean, rather than a division by zero


def test_an_unreachable_server_gives_no_figures_and_the_next_scrape_starts_afresh(
    capsys: pytest.CaptureFixture[str],
) -> None:
    scrape = triton_emf.TritonScrape(
        "http://model-server:8002/metrics", fetch=Scripted(triton_text(FIRST), None, None, None, triton_text(SECOND))
    )

    scrape()
    assert [scrape(), scrape(), scrape()] == [{}, {}, {}]
    # said once per outage, not at every report while a model loads
    assert capsys.readouterr().err.count("http://model-server:8002/metrics unavailable") == 1
    # no interval spans the outage
    assert set(scrape()) == {metrics.PENDING_REQUESTS}


def test_only_the_named_models_samples_are_read() -> None:
    text = (
        "# TYPE nv_inference_request_success counter\n"
        'nv_inference_request_success{model="bert",version="1"} 100\n'
        'nv_inference_request_success{model="other",version="1"} 7\n'
        'nv_inference_request_success{model="bert",version="2"} 5\n'
        "# TYPE nv_cpu_utilization gauge\n"
        "nv_cpu_utilization 0.5\n"
    )

    assert triton_emf.totals(text, "bert") == {"nv_inference_request_success": 105}  # both versions
    assert triton_emf.totals(text) == {"nv_inference_request_success": 112}  # the server's one model, by default


counter_values = st.fixed_dictionaries(
    {name: st.integers(min_value=0, max_value=10**12) for name in COUNTERS},
    optional={"pending": st.integers(min_value=0, max_value=10**4)},
)


@given(scrapes=st.lists(counter_values, min_size=1, max_size=6), identity=st.sampled_from([{}, {"ServiceName": "s"}]))
def test_any_sequence_of_scrapes_gives_valid_emf_with_no_negative_count(
    scrapes: list[dict[str, int]], identity: dict[str, str]
) -> None:
    scrape = triton_emf.TritonScrape("u", fetch=Scripted(*(triton_text(values) for values in scrapes)))
    for _ in scrapes:
        figures = scrape()
        for value, unit in figures.values():
            assert math.isfinite(value)
            assert value >= 0
            assert unit in {"Count", "Milliseconds"}
        for document in neuron_emf.metric_documents(
            {}, cluster_name="bert-cluster", identity=identity, now_ms=1_700_000_000_000, server_figures=figures
        ):
            assert violations(document) == []


# --- the sidecar's process, Triton served on loopback ---------------------------------------------


class _TritonMetrics(http.server.BaseHTTPRequestHandler):
    texts: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        if self.path != "/metrics" or not self.texts:
            self.send_error(404)
            return
        body = self.texts.pop(0).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def triton_metrics() -> Iterator[str]:
    handler = type("Handler", (_TritonMetrics,), {"texts": [triton_text(FIRST), triton_text(SECOND)]})
    with serving(handler) as port:
        yield f"http://127.0.0.1:{port}/metrics"


def run_sidecar(env: dict[str, str], reports: int) -> list[dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, str(SIDECAR / "neuron_emf.py")],
        input="{}\n" * reports,
        capture_output=True,
        text=True,
        timeout=30,
        env={"CLUSTER_NAME": "bert-cluster", **env},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_the_sidecar_publishes_tritons_figures_once_per_neuron_monitor_report(triton_metrics: str) -> None:
    documents = run_sidecar({"TRITON_METRICS_URL": triton_metrics}, reports=2)

    assert all(violations(document) == [] for document in documents)
    assert [document.get(metrics.PENDING_REQUESTS) for document in documents] == [2, 7]
    assert documents[1][metrics.INFERENCE_REQUESTS] == 40
    assert documents[1][metrics.QUEUE_TIME] == pytest.approx(2.0)
    assert documents[1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["ClusterName"]]


def test_without_a_triton_url_the_sidecar_publishes_no_server_figures() -> None:
    assert run_sidecar({}, reports=2) == []


def test_a_real_tritons_metrics_give_every_figure_the_sidecar_publishes() -> None:
    # captured from pytriton's tritonserver 2.51 serving this project's model (make triton-check reproduces it)
    text = (ROOT / "tests" / "data" / "triton-2.51-metrics.txt").read_text()

    read = triton_emf.totals(text, "bert")

    assert set(read) == {*triton_emf.COUNTS, *triton_emf.DURATIONS, *triton_emf.GAUGES}
    later = {name: value * 2 for name, value in read.items()}
    figures = triton_emf.figures(read, later)
    assert figures[metrics.INFERENCE_REQUESTS] == (read["nv_inference_request_success"], "Count")
    assert figures[metrics.QUEUE_TIME][0] == pytest.approx(
        read["nv_inference_queue_duration_us"] / read["nv_inference_request_success"] / 1000
    )
