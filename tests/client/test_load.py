"""Load generation: closed loop keeps C requests in flight; open loop keeps its schedule."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from client.load import LoadPlan, LoadRunner
from client.stats import summarize
from client.transport import RequestFailed


class FakeTransport:
    """A server in a test: fixed service time, one request at a time if serial, optional stall."""

    def __init__(self, service_time: float = 0.0, *, serial: bool = False, stall: float = 0.0) -> None:
        self.service_time = service_time
        self.stall = stall
        self.calls = 0
        self._lock = asyncio.Lock() if serial else None

    async def predict(self) -> None:
        self.calls += 1
        if self._lock is None:
            await asyncio.sleep(self.service_time)
            return
        async with self._lock:
            if self.stall and self.calls == 1:
                await asyncio.sleep(self.stall)
            await asyncio.sleep(self.service_time)

    async def model_status(self) -> list[tuple[int, str]]:
        return [(1, "AVAILABLE")]

    async def close(self) -> None:
        pass


class FailingTransport(FakeTransport):
    async def predict(self) -> None:
        self.calls += 1
        if self.calls % 3 == 0:
            raise RequestFailed("UNAVAILABLE", "down")


def run(transport: FakeTransport, plan: LoadPlan) -> LoadRunner:
    runner = LoadRunner(transport, plan)
    asyncio.run(runner.run())
    return runner


def test_plan_needs_exactly_one_amount_and_one_shape() -> None:
    with pytest.raises(ValueError, match="requests and duration"):
        LoadPlan(requests=1, duration=1.0, concurrency=1)
    with pytest.raises(ValueError, match="concurrency and rate"):
        LoadPlan(requests=1, concurrency=1, rate=5.0)


def test_closed_loop_sends_exactly_n_with_c_in_flight_and_excludes_warmup() -> None:
    transport = FakeTransport(service_time=0.005)

    runner = run(transport, LoadPlan(requests=40, concurrency=4, warmup=6))

    assert len(runner.result.samples) == 40
    assert transport.calls == 46  # warm-up requests went out but were not measured
    assert runner.result.max_in_flight == 4
    assert all(sample.scheduled == sample.sent for sample in runner.result.samples)


def test_closed_loop_throughput_approaches_concurrency_over_service_time() -> None:
    runner = run(FakeTransport(service_time=0.02), LoadPlan(requests=100, concurrency=5))

    summary = summarize(runner.result, batch=1)
    assert 0.7 * 250 <= summary.throughput_rps <= 250 * 1.01  # limit: 5 / 20 ms


def test_open_loop_schedules_requests_at_the_rate_whatever_the_server_does() -> None:
    runner = run(FakeTransport(service_time=0.05), LoadPlan(requests=30, rate=200.0))

    scheduled = sorted(sample.scheduled for sample in runner.result.samples)
    gaps = [later - earlier for earlier, later in itertools.pairwise(scheduled)]
    assert gaps == pytest.approx([0.005] * 29)
    # 50 ms service at one arrival per 5 ms keeps ~10 requests in flight
    assert runner.result.max_in_flight >= 8


def test_open_loop_exposes_a_stall_that_closed_loop_hides() -> None:
    # GIVEN a serial server (10 ms per request) that stalls 300 ms on its first request
    closed = run(FakeTransport(0.01, serial=True, stall=0.3), LoadPlan(requests=40, concurrency=1))
    open_ = run(FakeTransport(0.01, serial=True, stall=0.3), LoadPlan(requests=40, rate=50.0))

    closed_summary = summarize(closed.result, batch=1)
    open_summary = summarize(open_.result, batch=1)
    # THEN closed loop reports one slow request among fast ones (coordinated omission) ...
    assert closed_summary.latency_ms["p50"] < 20
    # ... while open loop counts the queue the stall built: many requests waited for it
    assert open_summary.latency_ms["p50"] > 20
    assert sum(sample.latency > 0.1 for sample in open_.result.samples) >= 10


def test_duration_mode_stops_issuing_at_the_deadline() -> None:
    runner = run(FakeTransport(service_time=0.01), LoadPlan(duration=0.3, concurrency=2))

    summary = summarize(runner.result, batch=1)
    assert 0.3 <= summary.duration_s < 0.45
    # at most 2 callers x 0.3 s / 10 ms (+ the two in flight at the deadline); fewer on a busy machine
    assert 5 <= summary.requests <= 62


def test_failures_are_samples_with_their_code() -> None:
    runner = run(FailingTransport(), LoadPlan(requests=30, concurrency=3))

    summary = summarize(runner.result, batch=1)
    assert summary.requests == 30
    assert summary.errors_by_code == {"UNAVAILABLE": 10}
    assert runner.result.error_details == {"UNAVAILABLE": "down"}


def test_stop_keeps_what_was_measured() -> None:
    async def stop_soon() -> LoadRunner:
        runner = LoadRunner(FakeTransport(service_time=0.01), LoadPlan(duration=30.0, concurrency=2))
        task = asyncio.create_task(runner.run())
        await asyncio.sleep(0.2)
        runner.stop()
        task.cancel()
        await task
        return runner

    runner = asyncio.run(stop_soon())

    assert runner.result.interrupted
    assert 5 <= len(runner.result.samples) <= 60  # ~40 in 0.2 s; fewer on a busy machine
    assert runner.result.finished - runner.result.started < 1.0
