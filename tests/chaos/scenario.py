"""One chaos scenario: load through the gateway, a fault timeline, the invariant checker.

``run_scenario`` opens the scenario's own products, starts the checker (sampling
throughout), places the orders evenly over the load's duration (and on at that pace
until the fault timeline is over) while ``faults`` runs its timeline concurrently,
then lets every saga settle, runs the final checks
and writes the summary to .local/reports/chaos/. The fault timeline restores what it
broke in its own ``finally``; the fixtures restore the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tests.chaos.invariants import Expectations, InvariantChecker, write_report
from tests.chaos.load import LoadDriver, LoadResult, Shop, open_shop
from tests.e2e.conftest import Account


@dataclass(frozen=True)
class Context:
    """What a fault timeline may use: the load's duration, the shop and the checker."""

    seconds: float
    shop: Shop
    checker: InvariantChecker


#: A fault timeline: break things during the load and repair them (in a ``finally``).
Faults = Callable[[Context], Awaitable[None]]


@dataclass(frozen=True)
class Outcome:
    """What a scenario produced: its summary (as written) and the load's result."""

    summary: dict[str, Any]
    load: LoadResult
    checker: InvariantChecker

    def assert_no_violations(self) -> None:
        violations = self.summary["violations"]
        assert not violations, "invariants broken:\n" + "\n".join(
            f"  {v['seconds']:>7} s  {v['invariant']}: {v['subject']}: {v['detail']}"
            for v in violations
        )
        assert not self.summary["checker"]["sample_errors"], self.summary["checker"]


async def run_scenario(
    name: str,
    *,
    gateway: httpx.AsyncClient,
    admin: Account,
    accounts: list[Account],
    kafka_bootstrap: str,
    tokens: list[str],
    seconds: float,
    faults: Faults,
    fault: dict[str, Any],
    saga_bound_seconds: float,
    expectations: Expectations | None = None,
    reads: bool = False,
    settle_seconds: float | None = None,
    stock_for: int | None = None,
) -> Outcome:
    """Run the scenario (see the module docstring); the caller asserts on the outcome.

    ``stock_for``: how many orders the stock is sized for (default: one per token; a
    timeline that outlasts the load's duration adds orders).
    """
    shop = await open_shop(gateway, admin, accounts, orders=stock_for or len(tokens))
    checker = InvariantChecker(
        name,
        shop,
        kafka_bootstrap=kafka_bootstrap,
        saga_bound_seconds=saga_bound_seconds,
        expectations=expectations,
    )
    async with checker:
        driver = LoadDriver(gateway, shop, on_placed=checker.track)
        stop_reads = asyncio.Event()
        reading = asyncio.create_task(driver.read_loop(stop_reads)) if reads else None
        faults_over = asyncio.Event()
        load = asyncio.create_task(driver.run(tokens, seconds=seconds, until=faults_over))
        try:
            try:
                await faults(Context(seconds, shop, checker))
            finally:
                faults_over.set()
            result = await load
        finally:
            stop_reads.set()
            if reading is not None:
                await reading
            if not load.done():
                load.cancel()
        await checker.final_check(result, settle_seconds=settle_seconds or saga_bound_seconds + 30)
    summary = checker.summary(result, requested=result.requested, fault=fault)
    write_report(summary)
    return Outcome(summary, result, checker)
