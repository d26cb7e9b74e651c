"""Open-model and closed-loop drivers: call counts, outcomes, errors."""

from __future__ import annotations

import asyncio
import random

import pytest

from bench.drivers import arrival_times, closed_loop, fixed_rate, repeat


def test_evenly_spaced_arrivals() -> None:
    assert arrival_times(4.0, 1.0, poisson=False) == [0.0, 0.25, 0.5, 0.75]


def test_poisson_arrivals_are_seeded_and_within_the_run() -> None:
    first = arrival_times(50.0, 10.0, poisson=True, rng=random.Random(3))
    again = arrival_times(50.0, 10.0, poisson=True, rng=random.Random(3))
    assert first == again
    assert first == sorted(first)
    assert all(0.0 <= t < 10.0 for t in first)
    assert 400 < len(first) < 600  # 500 expected; the seed makes it fixed


@pytest.mark.parametrize(("rate", "duration"), [(0.0, 1.0), (1.0, 0.0)])
def test_arrivals_need_a_positive_rate_and_duration(rate: float, duration: float) -> None:
    with pytest.raises(ValueError):
        arrival_times(rate, duration, poisson=False)


async def test_fixed_rate_starts_every_scheduled_call_and_records_outcomes() -> None:
    async def operation(number: int) -> str:
        if number % 5 == 4:
            raise ConnectionError("refused")
        return "201"

    run = await fixed_rate(operation, rate=50.0, duration=0.2)
    assert len(run.samples) == 10
    assert run.outcomes() == {"201": 8, "error:ConnectionError": 2}
    assert run.count(["201"]) == 8
    assert len(run.latencies(["201"])) == 8
    assert all(sample.latency >= 0 for sample in run.samples)
    assert run.dropped == 0


async def test_fixed_rate_drops_arrivals_beyond_max_in_flight() -> None:
    release = asyncio.Event()

    async def stuck(_: int) -> str:
        await release.wait()
        return "ok"

    async def let_go() -> None:
        await asyncio.sleep(1.0)  # well after the last arrival (0.18 s), even on a busy machine
        release.set()

    releaser = asyncio.create_task(let_go())
    run = await fixed_rate(stuck, rate=50.0, duration=0.2, max_in_flight=3)
    await releaser
    assert len(run.samples) == 3
    assert run.dropped == 7


async def test_closed_loop_keeps_each_worker_busy_until_the_deadline() -> None:
    in_flight = 0
    most = 0

    async def operation(_: int) -> str:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return "ok"

    run = await closed_loop(operation, concurrency=4, duration=0.1)
    assert most == 4
    assert run.outcomes().keys() == {"ok"}
    assert len(run.samples) >= 4


async def test_repeat_runs_exactly_n_calls_in_order() -> None:
    seen: list[int] = []

    async def operation(number: int) -> str:
        seen.append(number)
        return "ok"

    run = await repeat(operation, iterations=5)
    assert seen == [0, 1, 2, 3, 4]
    assert len(run.samples) == 5


async def test_closed_loop_needs_a_worker() -> None:
    async def operation(_: int) -> str:
        return "ok"

    with pytest.raises(ValueError):
        await closed_loop(operation, concurrency=0, duration=0.1)
