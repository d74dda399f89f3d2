"""Shows a run: a table for people, one JSON line for machines, and a plot, all from one :class:`RunReport`."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from client.load import LoadResult
from client.stats import Summary


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """What was measured and how: the run's plan, as the report states it."""

    target: str
    protocol: str
    api: str
    """``tfserving`` or ``kserve``."""
    model: str
    batch: int
    seq_len: int
    warmup: int
    requests: int | None
    duration: float | None
    concurrency: int | None
    rate: float | None
    timeout: float
    inputs: str
    """``zeros`` or ``text``."""


@dataclass(frozen=True, kw_only=True)
class Cost:
    """What a million inferences cost at ``hourly_price_usd`` for one instance (``None``: nothing succeeded)."""

    hourly_price_usd: float
    source: str
    per_million_inferences_usd: float | None


@dataclass(frozen=True, kw_only=True)
class RunReport:
    """One run, whole: its settings, the figures, the cost, and every sample (for the plot)."""

    settings: RunSettings
    summary: Summary
    cost: Cost | None
    result: LoadResult


def render_table(console: Console, report: RunReport) -> None:
    settings, summary, cost = report.settings, report.summary, report.cost
    mode = f"rate {settings.rate}/s (open loop)" if settings.rate else f"concurrency {settings.concurrency}"
    title = f"{settings.protocol} {settings.target}  model {settings.model}  batch {settings.batch}  {mode}"
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("requests completed", str(summary.requests))
    table.add_row("errors", str(summary.errors))
    for code, count in summary.errors_by_code.items():
        table.add_row(f"  {code}", str(count))
    table.add_row("duration", f"{summary.duration_s:.2f} s")
    table.add_row("throughput", f"{summary.throughput_rps:.1f} req/s ({summary.inferences_per_s:.1f} inferences/s)")
    for key in ("avg", "p50", "p90", "p99", "max"):
        if key in summary.latency_ms:
            table.add_row(f"latency {key}", f"{summary.latency_ms[key]:.2f} ms")
    if cost and cost.per_million_inferences_usd is not None:
        table.add_row(
            "cost per million inferences",
            f"${cost.per_million_inferences_usd:.4f} at ${cost.hourly_price_usd}/h ({cost.source})",
        )
    if summary.interrupted:
        table.caption = "interrupted: figures cover the requests measured until then"
    console.print(table)


def json_line(report: RunReport) -> str:
    document = report.summary.as_dict()
    document["settings"] = dataclasses.asdict(report.settings)
    document["cost"] = dataclasses.asdict(report.cost) if report.cost else None
    return json.dumps(document, sort_keys=True)


def read_json_line(printed: str) -> dict[str, Any]:
    """The report of :func:`json_line`, from the standard output of a ``--json`` run (its last line)."""
    document: dict[str, Any] = json.loads(printed.strip().splitlines()[-1])
    return document


def plot(report: RunReport, path: Path) -> None:
    """Latency histogram (log scale) and latency over time, with p50 and p99 marked."""
    result, summary = report.result, report.summary
    import matplotlib  # noqa: PLC0415  (only --plot needs it)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415
    from matplotlib.ticker import FuncFormatter  # noqa: PLC0415

    plain = FuncFormatter(lambda value, _: f"{value:g}")

    ok = [sample for sample in result.samples if sample.error is None]
    latencies = np.array([sample.latency * 1000.0 for sample in ok])
    figure, (histogram, timeline) = plt.subplots(1, 2, figsize=(13, 4.8))
    if len(latencies):
        low, high = max(latencies.min(), 1e-3), max(latencies.max(), 1e-3 * 1.01)
        bins = np.logspace(np.log10(low), np.log10(high * 1.0001), 60)
        histogram.hist(latencies, bins=bins, color="#4472c4")
        histogram.set_xscale("log")
        times = np.array([sample.scheduled - result.started for sample in ok])
        timeline.scatter(times, latencies, s=4, alpha=0.5, color="#4472c4")
        timeline.set_yscale("log")
        for log_axis in (histogram.xaxis, timeline.yaxis):
            log_axis.set_major_formatter(plain)
            log_axis.set_minor_formatter(plain)
        for axis, vertical in ((histogram, True), (timeline, False)):
            for key, colour in (("p50", "#2e8b57"), ("p99", "#c0392b")):
                value = summary.latency_ms[key]
                label = f"{key} {value:.1f} ms"
                if vertical:
                    axis.axvline(value, color=colour, linestyle="--", label=label)
                else:
                    axis.axhline(value, color=colour, linestyle="--", label=label)
            axis.legend()
    histogram.set_title("Latency distribution")
    histogram.set_xlabel("latency (ms, log scale)")
    histogram.set_ylabel("requests")
    timeline.set_title("Latency over time")
    timeline.set_xlabel("seconds since start")
    timeline.set_ylabel("latency (ms, log scale)")
    figure.suptitle(
        f"{summary.requests} requests, {summary.throughput_rps:.1f} req/s, {summary.errors} errors", fontsize=11
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
