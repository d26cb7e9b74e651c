"""The BFF breakers export their state, transitions and rejections (circuit_breaker_*)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pybreaker
import pytest

from handwritten.bff.adapters.breaker import Breaker, CircuitOpenError
from handwritten.runtime.breaker_metrics import STATE_VALUES, record_transition, state_value
from handwritten.runtime.metrics import REGISTRY

RESET_SECONDS = 0.2


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=2)
    yield pool
    pool.shutdown(wait=True)


def state(breaker: str) -> float | None:
    return REGISTRY.get_sample_value(
        "circuit_breaker_state", {"service": "bff", "breaker": breaker}
    )


def transitions(breaker: str, old: str, new: str) -> float:
    labels = {"service": "bff", "breaker": breaker, "from_state": old, "to_state": new}
    return REGISTRY.get_sample_value("circuit_breaker_transitions_total", labels) or 0.0


def rejections(breaker: str) -> float:
    labels = {"service": "bff", "breaker": breaker}
    return REGISTRY.get_sample_value("circuit_breaker_rejections_total", labels) or 0.0


async def fail() -> None:
    raise ConnectionRefusedError("refused")


async def ok() -> str:
    return "fine"


async def test_state_gauge_and_transitions_follow_the_breaker(
    executor: ThreadPoolExecutor,
) -> None:
    name = f"downstream-{uuid.uuid4().hex[:8]}"  # series of this test only
    guard = Breaker(
        name,
        pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED),
        fail_max=2,
        reset_timeout_seconds=RESET_SECONDS,
        executor=executor,
    )
    assert state(name) == 0  # exported from the start, before any call

    for _ in range(2):
        with pytest.raises(ConnectionRefusedError):
            await guard.call(fail)
    assert state(name) == 1
    assert transitions(name, "closed", "open") == 1

    with pytest.raises(CircuitOpenError):
        await guard.call(ok)
    assert rejections(name) == 1

    deadline = time.monotonic() + 10
    while True:  # the reset timeout elapses: the next call is the half-open trial
        try:
            assert await guard.call(ok) == "fine"
            break
        except CircuitOpenError:
            assert time.monotonic() < deadline, "the breaker never let a trial call through"
            await asyncio.sleep(RESET_SECONDS / 4)
    assert state(name) == 0
    assert transitions(name, "open", "half-open") == 1
    assert transitions(name, "half-open", "closed") == 1


def test_a_breaker_opened_elsewhere_starts_open(executor: ThreadPoolExecutor) -> None:
    name = f"downstream-{uuid.uuid4().hex[:8]}"
    Breaker(
        name,
        pybreaker.CircuitMemoryStorage(pybreaker.STATE_OPEN),
        fail_max=2,
        reset_timeout_seconds=60,
        executor=executor,
    )
    assert state(name) == 1


def test_state_values() -> None:
    assert STATE_VALUES == {"closed": 0, "open": 1, "half-open": 2}
    with pytest.raises(ValueError, match="unknown circuit breaker state"):
        state_value("ajar")
    name = f"downstream-{uuid.uuid4().hex[:8]}"
    record_transition("bff", name, None, "half-open")  # first sight: no transition counted
    assert state(name) == 2
    assert transitions(name, "closed", "half-open") == 0
