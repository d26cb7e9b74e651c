"""Ways to drive an async operation and time each call.

- ``fixed_rate``: an open model. Calls start on a schedule (``rate`` per second, evenly
  spaced or Poisson), whether or not earlier ones finished, as independent clients
  would. Latency runs from the *scheduled* start, so a client-side backlog counts
  against the system instead of being hidden (no coordinated omission).
- ``closed_loop``: ``concurrency`` workers call back to back; this finds saturation
  throughput.
- ``repeat``: one caller, a fixed number of calls (micro-benchmarks).

An operation receives its sequence number and returns an outcome label (an HTTP
status such as ``"201"``, or ``"ok"``); an exception becomes ``"error:<Type>"``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field

Operation = Callable[[int], Awaitable[str]]


@dataclass(frozen=True)
class Sample:
    """One call: when it was due (seconds after the run started), how long it took."""

    started: float
    latency: float
    outcome: str


@dataclass
class Run:
    """The samples of one driven run."""

    samples: list[Sample] = field(default_factory=list)
    elapsed: float = 0.0
    #: Calls not started because ``max_in_flight`` calls were still running.
    dropped: int = 0

    def outcomes(self) -> dict[str, int]:
        return dict(sorted(Counter(sample.outcome for sample in self.samples).items()))

    def latencies(self, outcomes: Collection[str] | None = None) -> list[float]:
        """Latencies of the calls with one of ``outcomes`` (all calls when ``None``)."""
        return [
            sample.latency
            for sample in self.samples
            if outcomes is None or sample.outcome in outcomes
        ]

    def count(self, outcomes: Collection[str]) -> int:
        return sum(1 for sample in self.samples if sample.outcome in outcomes)


async def _timed(operation: Operation, number: int) -> str:
    try:
        return await operation(number)
    except Exception as exc:  # an error is an outcome to count, not a crash of the run
        return f"error:{type(exc).__name__}"


def arrival_times(
    rate: float, duration: float, *, poisson: bool, rng: random.Random | None = None
) -> list[float]:
    """Offsets (seconds from the start) of the calls of an open-model run."""
    if rate <= 0 or duration <= 0:
        raise ValueError("rate and duration must be positive")
    times: list[float] = []
    if not poisson:
        count = int(rate * duration)
        return [index / rate for index in range(count)]
    generator = rng or random.Random()  # noqa: S311 - arrival jitter, not security
    moment = generator.expovariate(rate)
    while moment < duration:
        times.append(moment)
        moment += generator.expovariate(rate)
    return times


async def fixed_rate(
    operation: Operation,
    *,
    rate: float,
    duration: float,
    max_in_flight: int = 1000,
    poisson: bool = False,
    rng: random.Random | None = None,
) -> Run:
    """Start calls at ``rate`` per second for ``duration`` seconds; wait for them all."""
    run = Run()
    tasks: set[asyncio.Task[None]] = set()
    start = time.perf_counter()

    async def call(number: int, due: float) -> None:
        outcome = await _timed(operation, number)
        run.samples.append(Sample(due, time.perf_counter() - start - due, outcome))

    for number, due in enumerate(arrival_times(rate, duration, poisson=poisson, rng=rng)):
        delay = start + due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(tasks) >= max_in_flight:
            run.dropped += 1
            continue
        task = asyncio.create_task(call(number, due))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    run.elapsed = time.perf_counter() - start
    return run


async def closed_loop(operation: Operation, *, concurrency: int, duration: float) -> Run:
    """``concurrency`` workers calling back to back until ``duration`` has passed."""
    if concurrency < 1:
        raise ValueError("concurrency is at least 1")
    run = Run()
    start = time.perf_counter()
    deadline = start + duration
    counter = iter(range(1 << 62))

    async def worker() -> None:
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            outcome = await _timed(operation, next(counter))
            run.samples.append(Sample(began - start, time.perf_counter() - began, outcome))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.elapsed = time.perf_counter() - start
    return run


async def repeat(operation: Operation, *, iterations: int) -> Run:
    """One caller, ``iterations`` calls in a row."""
    run = Run()
    start = time.perf_counter()
    for number in range(iterations):
        began = time.perf_counter()
        outcome = await _timed(operation, number)
        run.samples.append(Sample(began - start, time.perf_counter() - began, outcome))
    run.elapsed = time.perf_counter() - start
    return run
