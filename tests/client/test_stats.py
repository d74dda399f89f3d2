"""Percentiles, throughput and cost: the arithmetic behind every figure the client prints."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from client.load import LoadResult, Sample
from client.stats import cost_per_million, percentile, summarize


def test_percentiles_interpolate_between_ranks() -> None:
    latencies = [float(value) for value in range(1, 101)]  # 1 .. 100 ms

    assert percentile(latencies, 50) == pytest.approx(50.5)
    assert percentile(latencies, 90) == pytest.approx(90.1)
    assert percentile(latencies, 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0


def test_summary_counts_errors_but_times_only_successes() -> None:
    # GIVEN 8 successes of 10..80 ms and 2 failures, over a 2-second measured phase
    samples = [Sample(scheduled=0.0, sent=0.0, done=(i + 1) / 100) for i in range(8)]
    samples += [Sample(0.0, 0.0, 5.0, "UNAVAILABLE"), Sample(0.0, 0.0, 0.001, "HTTP 503")]
    result = LoadResult(samples=samples, started=10.0, finished=12.0)

    summary = summarize(result, batch=4)

    assert (summary.requests, summary.errors) == (10, 2)
    assert summary.errors_by_code == {"HTTP 503": 1, "UNAVAILABLE": 1}
    assert summary.throughput_rps == pytest.approx(4.0)  # 8 successes / 2 s
    assert summary.inferences_per_s == pytest.approx(16.0)  # batch of 4
    assert summary.latency_ms["avg"] == pytest.approx(45.0)
    assert summary.latency_ms["max"] == pytest.approx(80.0)
    assert summary.latency_ms["p50"] == pytest.approx(45.0)


def test_open_loop_latency_counts_from_the_intended_send_time() -> None:
    late = Sample(scheduled=1.0, sent=1.3, done=1.31)  # sent 300 ms late, served in 10 ms

    assert late.latency == pytest.approx(0.31)


def test_no_success_means_no_latency_figures() -> None:
    summary = summarize(LoadResult(samples=[Sample(0, 0, 1, "TIMEOUT")], started=0, finished=1), batch=1)

    assert summary.latency_ms == {}
    assert summary.throughput_rps == 0


def test_cost_per_million_inferences() -> None:
    # $0.228 per hour at 1,000 inferences/s: 3.6 M inferences an hour
    assert cost_per_million(0.228, 1000.0) == pytest.approx(0.228 / 3.6)
    assert cost_per_million(0.228, 0.0) is None


def test_a_long_failure_detail_is_one_line_cut_between_words() -> None:
    from client.transport import one_line  # noqa: PLC0415

    detail = "Received http2 header with status: 502\n  upstream connect error or disconnect/reset before headers"

    shortened = one_line(detail, 60)

    assert shortened == "Received http2 header with status: 502 upstream connect…"
    assert len(shortened) <= 60
    assert "\n" not in shortened
    assert one_line("short one", 60) == "short one"
    assert one_line("x" * 100, 10) == "x" * 9 + "…"  # one word longer than the limit: cut, nothing else fits


@given(
    text=st.text(alphabet=st.sampled_from([chr(code) for code in range(32, 127)] + ["\n"]), max_size=400),
    limit=st.integers(5, 200),
)
def test_one_line_never_cuts_a_word_it_could_keep(text: str, limit: int) -> None:
    from client.transport import one_line  # noqa: PLC0415

    shortened = one_line(text, limit)
    words = text.split()

    assert len(shortened) <= limit
    assert "\n" not in shortened
    if shortened.endswith("…") and " " in shortened:
        kept = shortened[:-1].split()
        assert kept == words[: len(kept)]  # whole words, in order
