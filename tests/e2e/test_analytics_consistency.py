"""Sales by day through the gateway on the running stack: exact after a known set of
orders, unchanged by re-published duplicates, identical after a rebuild.

Other suites place orders on the same stack at the same time, so each check compares
two *settled* readings of ``GET /api/analytics/sales-by-day`` and holds the change
against what the Kafka topics say happened in between (``analytics_support``): the
report must move exactly as the revenue rule applied to the topics moves, and the
test's own orders must contribute exactly what was ordered — three confirmed orders
worth 3704.71, the declined one nothing (fewer only if a fault-injecting suite fails
a payment meanwhile: the expectation follows the orders service's outcome).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

import httpx
import pytest

from generated import catalog
from tests.e2e.analytics_support import (
    DayTotals,
    Reading,
    SalesLog,
    difference,
    last_offsets,
    records_of_orders,
    settled_order,
    settled_reading,
    sum_days,
)
from tests.e2e.bff_support import new_products, scrape, total
from tests.e2e.conftest import REPO_ROOT, Account, register_and_login
from tests.e2e.saga_support import (
    ADDRESS,
    CONFIRMED_OR_BEYOND,
    is_ready,
    poll,
    republish,
    restart,
    stop,
    wait_consumed,
)

ANALYTICS_TOPICS = catalog.SERVICES["analytics"].consumes
PRICES = (Decimal("1234.57"), Decimal("0.10"))
#: (lines as (product index, quantity), payment token) of the known orders.
ORDERS = (
    ([(0, 1)], "tok_visa"),  # 1234.57
    ([(0, 2), (1, 3)], "tok_visa"),  # 2469.14 + 0.30
    ([(1, 7)], "tok_visa"),  # 0.70
    ([(0, 1)], "tok_chargeDeclined"),  # canceled: never a sale
)
#: What the known orders add to the report when every paid order is confirmed.
ALL_CONFIRMED = DayTotals(3, Decimal("3704.71"))


@dataclass(frozen=True)
class KnownOrders:
    """The test's orders and settled readings from just before and after them."""

    order_ids: frozenset[str]
    #: What the test's orders add to the report: the confirmed ones, to the cent.
    expected: DayTotals
    days: tuple[dt.date, ...]
    before: Reading
    after: Reading

    def ours(self, order_id: UUID) -> bool:
        return str(order_id) in self.order_ids


@pytest.fixture(scope="module")
async def sales_log(kafka_bootstrap: str) -> AsyncIterator[SalesLog]:
    log = SalesLog(kafka_bootstrap)
    await log.start()
    yield log
    await log.stop()


@pytest.fixture(scope="module")
async def known(gateway: httpx.AsyncClient, admin: Account, sales_log: SalesLog) -> KnownOrders:
    today = dt.datetime.now(dt.UTC).date()
    # Tomorrow too: an order confirmed after midnight counts there.
    days = (today, today + dt.timedelta(days=1))
    products = [p["productId"] for p in await new_products(gateway, admin, map(str, PRICES))]
    account = await register_and_login(gateway)
    before = await settled_reading(gateway, admin, sales_log, days)

    amounts: dict[str, Decimal] = {}
    for lines, token in ORDERS:
        response = await gateway.post(
            "/api/orders",
            json={
                "items": [{"productId": products[i], "quantity": q} for i, q in lines],
                "shippingAddress": ADDRESS,
                "paymentMethod": {"token": token},
            },
            headers=account.bearer,
        )
        assert response.status_code == 201, response.text
        amount = sum((PRICES[i] * q for i, q in lines), Decimal(0))
        assert Decimal(response.json()["totalAmount"]) == amount, response.text
        amounts[response.json()["orderId"]] = amount

    # The expectation follows from the orders service's own outcome: a paid order
    # counts once confirmed. (Always all three, unless a fault-injecting suite runs
    # at the same time and fails a payment.)
    outcomes = {o: await settled_order(gateway, account, o) for o in amounts}
    declined = list(amounts)[-1]
    assert outcomes[declined]["status"] == "CANCELED", outcomes[declined]
    confirmed = {o for o, order in outcomes.items() if order["status"] in CONFIRMED_OR_BEYOND}
    expected = DayTotals(len(confirmed), sum((amounts[o] for o in confirmed), Decimal(0)))
    if len(confirmed) == len(ORDERS) - 1:
        assert expected == ALL_CONFIRMED

    # CONFIRMED in the orders service comes before its outbox has published the event.
    after: Reading | None = None

    async def published() -> bool:
        nonlocal after
        after = await settled_reading(gateway, admin, sales_log, days)
        return {UUID(o) for o in confirmed} <= sales_log.confirmed(after.offsets)

    await poll(published, seconds=60, what="the OrderConfirmed events of the known orders")
    assert after is not None
    return KnownOrders(frozenset(amounts), expected, days, before, after)


def assert_moved_as_the_topics_say(
    log: SalesLog, known: KnownOrders, before: Reading, after: Reading
) -> None:
    """The report's change between two settled readings is the model's change."""
    reported = difference(after.sales, before.sales, known.days)
    modelled = difference(log.model(after.offsets), log.model(before.offsets), known.days)
    others = difference(
        log.model(after.offsets, orders=lambda o: not known.ours(o)),
        log.model(before.offsets, orders=lambda o: not known.ours(o)),
        known.days,
    )
    assert reported == modelled, (
        f"the report moved by {reported}, the topics say {modelled} "
        f"(of which other suites' orders: {others})"
    )


async def test_sales_by_day_counts_the_known_orders_exactly(
    sales_log: SalesLog, known: KnownOrders
) -> None:
    ours = sales_log.model(known.after.offsets, orders=known.ours)
    assert sum_days(ours) == known.expected, ours
    assert sum_days(sales_log.model(known.before.offsets, orders=known.ours)) == DayTotals()
    assert_moved_as_the_topics_say(sales_log, known, known.before, known.after)


async def analytics_duplicates() -> float:
    return total(await scrape("analytics"), "analytics_consumed_events_total", outcome="duplicate")


async def test_replaying_the_orders_events_changes_nothing(
    gateway: httpx.AsyncClient,
    admin: Account,
    kafka_bootstrap: str,
    sales_log: SalesLog,
    known: KnownOrders,
) -> None:
    records = await records_of_orders(kafka_bootstrap, ANALYTICS_TOPICS, known.order_ids)
    topics = {(r.key.decode(), r.topic) for r in records}
    for order_id in known.order_ids:
        assert (order_id, "orders.created") in topics, (order_id, sorted(topics))
    confirmed = {o for o, topic in topics if topic == "orders.confirmed"}
    assert len(confirmed) == known.expected.orders, sorted(topics)
    # Everything about these orders is applied already, on every topic (not only the
    # sales ones), so each copy below must be recognised as a duplicate.
    await wait_consumed(kafka_bootstrap, last_offsets(records), ["analytics"])
    before = await settled_reading(gateway, admin, sales_log, known.days)
    duplicates_before = await analytics_duplicates()

    # The very same records again: same keys, values and headers (event ids).
    produced = await republish(kafka_bootstrap, records)
    await wait_consumed(kafka_bootstrap, produced, ["analytics"])

    after = await settled_reading(gateway, admin, sales_log, known.days)
    assert await analytics_duplicates() - duplicates_before >= len(records)
    assert sum_days(sales_log.model(after.offsets, orders=known.ours)) == known.expected
    assert_moved_as_the_topics_say(sales_log, known, before, after)


REBUILT = re.compile(
    r"analytics rebuilt from (\d+) records: (\d+) applied, (\d+) duplicates, (\d+) poison"
)


async def test_a_rebuild_from_the_topics_gives_the_same_numbers(
    gateway: httpx.AsyncClient, admin: Account, sales_log: SalesLog, known: KnownOrders
) -> None:
    before = await settled_reading(gateway, admin, sales_log, known.days)
    try:
        # Embedded chdb: one process owns the store, so the service stops first.
        await asyncio.to_thread(stop, "analytics")
        rebuild = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "handwritten.analytics",
            "rebuild",
            cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(rebuild.communicate(), timeout=240)
        text = output.decode(errors="replace")
        assert rebuild.returncode == 0, text
        counts = REBUILT.search(text)
        assert counts is not None, text
        records, applied = int(counts[1]), int(counts[2])
        assert records >= applied > 0, text
    finally:
        if not await asyncio.to_thread(is_ready, "analytics"):
            await restart("analytics")

    after = await settled_reading(gateway, admin, sales_log, known.days)
    assert sum_days(sales_log.model(after.offsets, orders=known.ours)) == known.expected
    assert_moved_as_the_topics_say(sales_log, known, before, after)
