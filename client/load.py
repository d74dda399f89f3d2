"""Load generation: closed loop (a fixed number of callers) or open loop (a fixed arrival rate).

Open-loop latency is measured from each request's *intended* send time, so a server that stalls
cannot hide the queue it builds (no coordinated omission): requests that should have gone out
during the stall are late, and their lateness counts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from client.transport import UNREACHABLE_CODES, RequestFailed, Transport, one_line

Clock = Callable[[], float]

# A target that has never answered is given up on after this many unreachable requests in a row,
# instead of being hammered for the whole run (warm-up requests count).
DEAD_TARGET_FAILURES = 20


@dataclass(frozen=True, kw_only=True)
class LoadPlan:
    """How much load, and of which kind. Exactly one of requests/duration, concurrency/rate."""

    requests: int | None = None
    duration: float | None = None
    concurrency: int | None = None
    rate: float | None = None
    warmup: int = 0

    def __post_init__(self) -> None:
        if (self.requests is None) == (self.duration is None):
            raise ValueError("give exactly one of requests and duration")
        if (self.concurrency is None) == (self.rate is None):
            raise ValueError("give exactly one of concurrency and rate")

    @property
    def open_loop(self) -> bool:
        return self.rate is not None


@dataclass(frozen=True)
class Sample:
    """One measured request: when it should have gone, when it went, when it ended, and how."""

    scheduled: float
    sent: float
    done: float
    error: str | None = None

    @property
    def latency(self) -> float:
        return self.done - self.scheduled


@dataclass
class LoadResult:
    samples: list[Sample] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    interrupted: bool = False
    max_in_flight: int = 0
    error_details: dict[str, str] = field(default_factory=dict)
    abandoned: str | None = None
    """Why the run stopped early on its own (a target that never answered), else None."""


class LoadRunner:
    """Runs a :class:`LoadPlan` against a transport; :meth:`stop` ends it early, keeping the samples."""

    def __init__(self, transport: Transport, plan: LoadPlan, *, clock: Clock = time.perf_counter) -> None:
        self._transport = transport
        self._plan = plan
        self._clock = clock
        self._stopping = asyncio.Event()
        self._in_flight = 0
        self._pending: set[asyncio.Task[None]] = set()
        self.result = LoadResult()
        self.issued = 0
        self._answered = False
        self._unreachable_in_a_row = 0

    def stop(self) -> None:
        self._stopping.set()
        self.result.interrupted = True

    async def _one(self, scheduled: float | None, samples: list[Sample] | None) -> None:
        """Sends one request; ``scheduled`` is its open-loop slot, None when sent on demand."""
        self._in_flight += 1
        self.result.max_in_flight = max(self.result.max_in_flight, self._in_flight)
        sent = self._clock()
        scheduled = sent if scheduled is None else scheduled
        error: str | None = None
        try:
            await self._transport.predict()
        except RequestFailed as failure:
            error = failure.code
            self.result.error_details.setdefault(failure.code, one_line(failure.detail, 300))
        finally:
            self._in_flight -= 1
        self._note_reachability(error)
        if samples is not None:
            samples.append(Sample(scheduled, sent, self._clock(), error))

    def _note_reachability(self, error: str | None) -> None:
        if error not in UNREACHABLE_CODES:
            self._answered = True  # a reply, even an error one, means something is listening
            self._unreachable_in_a_row = 0
            return
        self._unreachable_in_a_row += 1
        if not self._answered and self._unreachable_in_a_row >= DEAD_TARGET_FAILURES and not self._stopping.is_set():
            self.result.abandoned = (
                f"the target never answered: {self._unreachable_in_a_row} requests in a row failed with {error} "
                f"({one_line(self.result.error_details.get(error, ''), 120)}); stopped instead of running on"
            )
            self._stopping.set()

    async def _warm_up(self) -> None:
        callers = min(self._plan.warmup, self._plan.concurrency or 8)
        remaining = iter(range(self._plan.warmup))

        async def caller() -> None:
            for _ in remaining:
                if self._stopping.is_set():
                    return
                await self._one(None, None)

        await asyncio.gather(*(caller() for _ in range(callers)))

    def _more(self, index: int, at: float, deadline: float | None) -> bool:
        if self._stopping.is_set():
            return False
        if self._plan.requests is not None:
            return index < self._plan.requests
        return deadline is not None and at < deadline

    async def _closed_loop(self, start: float, deadline: float | None) -> None:
        async def caller() -> None:
            while self._more(self.issued, self._clock(), deadline):
                self.issued += 1
                await self._one(None, self.result.samples)

        await asyncio.gather(*(caller() for _ in range(self._plan.concurrency or 1)))

    async def _open_loop(self, start: float, deadline: float | None) -> None:
        interval = 1.0 / (self._plan.rate or 1.0)
        while self._more(self.issued, start + self.issued * interval, deadline):
            scheduled = start + self.issued * interval
            delay = scheduled - self._clock()
            if delay > 0:
                try:
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)
                    break
                except TimeoutError:
                    pass
            self.issued += 1
            task = asyncio.create_task(self._one(scheduled, self.result.samples))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        if self._pending:
            await asyncio.wait(set(self._pending))

    async def run(self) -> LoadResult:
        """Warms up, then measures; returns whatever was measured, also when stopped or cancelled."""
        try:
            if self._plan.warmup:
                await self._warm_up()
            start = self._clock()
            self.result.started = start
            deadline = start + self._plan.duration if self._plan.duration is not None else None
            if self._plan.open_loop:
                await self._open_loop(start, deadline)
            else:
                await self._closed_loop(start, deadline)
        except asyncio.CancelledError:
            # Ctrl-C: requests still in flight are abandoned, not counted as errors.
            self.result.interrupted = True
            for task in self._pending:
                task.cancel()
        finally:
            self.result.finished = self._clock()
        return self.result
