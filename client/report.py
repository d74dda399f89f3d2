"""Shows a run: a table for people, one JSON line for machines, and a plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from client.load import LoadResult
from client.stats import Summary


def render_table(console: Console, summary: Summary, settings: dict[str, Any], cost: dict[str, Any] | None) -> None:
    mode = (
        f"rate {settings['rate']}/s (open loop)" if settings.get("rate") else f"concurrency {settings['concurrency']}"
    )
    title = f"{settings['protocol']} {settings['target']}  model {settings['model']}  batch {settings['batch']}  {mode}"
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
    if cost and cost.get("per_million_inferences_usd") is not None:
        table.add_row(
            "cost per million inferences",
            f"${cost['per_million_inferences_usd']:.4f} at ${cost['hourly_price_usd']}/h ({cost['source']})",
        )
    if summary.interrupted:
        table.caption = "interrupted: figures cover the requests measured until then"
    console.print(table)


def json_line(summary: Summary, settings: dict[str, Any], cost: dict[str, Any] | None) -> str:
    document = summary.as_dict()
    document["settings"] = settings
    document["cost"] = cost
    return json.dumps(document, sort_keys=True)


def plot(result: LoadResult, summary: Summary, path: Path) -> None:
    """Latency histogram (log scale) and latency over time, with p50 and p99 marked."""
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
