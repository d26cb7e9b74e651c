"""The ClickHouse store contract, on both adapters, against real ClickHouse (chdb).

Every test runs twice with the same SQL: through ``ChdbClickHouse`` (the embedded
default) and through ``ClickHouseConnect`` — the adapter used with a ClickHouse
server — pointed at the same chdb directory with clickhouse-connect's ``chdb://``
backend (its parameter binding and client API are the ones the HTTP transport
uses). The reports must equal the reference semantics of ``domain.reports``
computed in memory from the same events, however the events are duplicated,
re-published, shuffled and split into batches.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from generated.events.registry import Event
from handwritten.analytics.adapters.clickhouse import (
    ChdbClickHouse,
    ClickHouse,
    ClickHouseConnect,
    ClickHouseError,
)
from handwritten.analytics.adapters.schema import ORDER_ALIASES
from handwritten.analytics.adapters.store import ClickHouseAnalyticsStore
from handwritten.analytics.domain.orders import JOIN_RULES
from handwritten.analytics.domain.projection import project_all
from handwritten.analytics.domain.reports import DateRange, daily_sales, order_funnel
from handwritten.analytics.service_layer.ingest import ingest
from tests.unit.analytics.engine import chdb_path, new_database
from tests.unit.analytics.factory import (
    Item,
    OrderStory,
    items,
    redelivered,
    republished,
    user_registered,
)

DAY = dt.datetime(2031, 9, 1, 8, 0, tzinfo=dt.UTC)
FIRST = DAY.date()


async def open_adapter(kind: str) -> ClickHouse:
    if kind == "chdb":
        return await ChdbClickHouse.open(chdb_path())
    return await ClickHouseConnect.connect(f"chdb://{chdb_path()}")


@pytest.fixture(params=["chdb", "clickhouse-connect"])
async def store(
    request: pytest.FixtureRequest, chdb_engine: ChdbClickHouse
) -> AsyncIterator[ClickHouseAnalyticsStore]:
    clickhouse = await open_adapter(request.param)
    store = ClickHouseAnalyticsStore(clickhouse, database=new_database())
    await store.migrate()
    try:
        yield store
    finally:
        await clickhouse.command(f"DROP DATABASE IF EXISTS {store.database}")
        await store.close()


def journeys(rng: random.Random, count: int) -> tuple[list[Event[Any]], list[OrderStory]]:
    """``count`` orders over three days, each on a random path, plus their users."""
    products = [(uuid.uuid4(), f"Product {n} '{{x:String}}' %s \\ \"q\"") for n in range(5)]
    stories: list[OrderStory] = []
    events: list[Event[Any]] = []
    for _ in range(count):
        placed = DAY + dt.timedelta(days=rng.randint(0, 2), minutes=rng.randint(0, 900))
        story = OrderStory(placed, items(rng, products))
        stories.append(story)
        paths: list[list[Event[Any]]] = [
            story.confirmed_journey(),
            story.delivered_journey(),
            story.canceled_after_confirmation(),
            story.payment_declined(),
            [story.created()],
            [*story.confirmed_journey(), story.refunded()],
        ]
        events.extend(rng.choice(paths))
        if rng.random() < 0.8:
            events.append(
                user_registered(story.user_id, f"u{story.user_id.hex[:8]}@ex.com", placed)
            )
    return events, stories


def noisy(rng: random.Random, events: list[Event[Any]]) -> list[Event[Any]]:
    """``events`` with redeliveries and re-publications, shuffled."""
    copies = [redelivered(e) for e in rng.sample(events, k=len(events) // 2)]
    copies += [republished(e) for e in rng.sample(events, k=len(events) // 3)]
    mixed = events + copies
    rng.shuffle(mixed)
    return mixed


async def ingest_in_batches(
    store: ClickHouseAnalyticsStore, rng: random.Random, events: list[Event[Any]]
) -> None:
    position = 0
    while position < len(events):
        size = rng.randint(1, 40)
        await ingest(store, events[position : position + size])
        position += size


@pytest.mark.parametrize("seed", [1, 2])
async def test_reports_match_the_reference_whatever_the_noise(
    store: ClickHouseAnalyticsStore, seed: int
) -> None:
    rng = random.Random(seed)
    events, stories = journeys(rng, 30)
    # Re-published payment replies must not change anything either: their keys
    # dedupe them, and their facts are the same.
    reference = list(project_all(events).orders.values())
    await ingest_in_batches(store, rng, noisy(rng, events))

    days = DateRange(FIRST, FIRST + dt.timedelta(days=2))
    assert await store.sales_by_day(days) == daily_sales(reference, days)
    assert await store.order_funnel(days) == order_funnel(reference, days)
    stored = await store.orders([story.order_id for story in stories])
    emails = {u.user_id: u.email for u in project_all(events).users.values()}
    assert len(stored) == len(reference)
    for facts in reference:
        assert facts.user_id is not None
        expected = dataclasses.replace(facts, user_email=emails.get(facts.user_id))
        assert stored[facts.order_id] == expected


async def test_order_state_round_trips_every_fact(store: ClickHouseAnalyticsStore) -> None:
    story = OrderStory(DAY, [Item(uuid.uuid4(), "Mug", 3, Decimal("12.34"))])
    events = [*story.delivered_journey(), user_registered(story.user_id, "ana@ex.com", DAY)]
    await ingest(store, events)
    expected = project_all(events).orders[story.order_id]
    [stored] = (await store.orders([story.order_id])).values()
    assert stored == dataclasses.replace(expected, user_email="ana@ex.com")


async def test_emails_reach_orders_whichever_comes_first(store: ClickHouseAnalyticsStore) -> None:
    before = OrderStory(DAY, [Item(uuid.uuid4(), "A", 1, Decimal("1.00"))])
    after = OrderStory(DAY, [Item(uuid.uuid4(), "B", 1, Decimal("1.00"))])
    await ingest(store, [user_registered(before.user_id, "first@ex.com", DAY)])
    await ingest(store, [before.created(), after.created()])
    await ingest(store, [user_registered(after.user_id, "later@ex.com", DAY)])
    stored = await store.orders([before.order_id, after.order_id])
    assert stored[before.order_id].user_email == "first@ex.com"
    assert stored[after.order_id].user_email == "later@ex.com"


async def test_sales_are_exact_decimals(store: ClickHouseAnalyticsStore) -> None:
    prices = ["0.10", "0.20", "99999.99", "0.01"]
    stories = [OrderStory(DAY, [Item(uuid.uuid4(), "X", 1, Decimal(p))]) for p in prices]
    await ingest(store, [e for s in stories for e in s.confirmed_journey()])
    [day] = await store.sales_by_day(DateRange(FIRST, FIRST))
    assert (day.orders, day.revenue) == (4, Decimal("100000.30"))
    assert day.average == Decimal("25000.08")  # 25000.075 → half-even up


async def test_duplicates_are_skipped_before_projecting(store: ClickHouseAnalyticsStore) -> None:
    story = OrderStory(DAY, [Item(uuid.uuid4(), "X", 1, Decimal("5.00"))])
    events = story.confirmed_journey()
    first = await ingest(store, events)
    again = await ingest(store, [redelivered(e) for e in events] + [republished(events[1])])
    assert (first.applied, first.duplicates) == (3, 0)
    assert (again.applied, again.duplicates) == (0, 4)


async def test_top_products_rank_units_then_revenue_then_id(
    store: ClickHouseAnalyticsStore,
) -> None:
    ids = sorted(uuid.uuid4() for _ in range(3))
    a, b, c = (str(i) for i in ids)
    sold = [
        OrderStory(DAY, [Item(ids[2], "C old", 2, Decimal("1.00"))]),
        OrderStory(DAY + dt.timedelta(hours=1), [Item(ids[2], "C new", 1, Decimal("1.00"))]),
        OrderStory(DAY, [Item(ids[1], "B", 3, Decimal("2.00"))]),
        OrderStory(DAY, [Item(ids[0], "A", 3, Decimal("2.00"))]),
    ]
    canceled = OrderStory(DAY, [Item(ids[2], "C", 50, Decimal("1.00"))])
    events = [e for s in sold for e in s.confirmed_journey()]
    await ingest(store, events + canceled.canceled_after_confirmation())
    ranking = await store.top_products(DateRange(FIRST, FIRST), 10)
    # 3 units each: A and B tie on revenue too, so the id decides; C has 3 units for 3.00.
    assert [(p.product_id, p.units_sold, p.order_count, p.revenue) for p in ranking] == [
        (a, 3, 1, Decimal("6")),
        (b, 3, 1, Decimal("6")),
        (c, 3, 2, Decimal("3")),
    ]
    assert ranking[2].product_name == "C new"
    assert len(await store.top_products(DateRange(FIRST, FIRST), 1)) == 1


async def test_delivery_times(store: ClickHouseAnalyticsStore) -> None:
    story = OrderStory(DAY, [Item(uuid.uuid4(), "X", 1, Decimal("5.00"))])
    await ingest(store, story.delivered_journey())
    times = await store.delivery_times(DateRange(FIRST, FIRST))
    assert times.delivered == 1
    assert times.average == dt.timedelta(minutes=120)


async def test_ranges_outside_clickhouse_dates_are_empty(store: ClickHouseAnalyticsStore) -> None:
    ancient = DateRange(dt.date(1, 1, 1), dt.date(1, 12, 31))
    assert await store.sales_by_day(ancient) == []
    assert (await store.order_funnel(ancient)).created == 0
    assert await store.top_products(DateRange(dt.date(9999, 1, 1), dt.date(9999, 1, 2)), 5) == []


async def test_reset_empties_everything(store: ClickHouseAnalyticsStore) -> None:
    story = OrderStory(DAY, [Item(uuid.uuid4(), "X", 1, Decimal("5.00"))])
    await ingest(store, story.confirmed_journey())
    await store.reset()
    assert await store.sales_by_day(DateRange(FIRST, FIRST)) == []
    assert await store.seen([f"event:{story.created().headers.event_id}"]) == set()
    assert (await ingest(store, story.confirmed_journey())).applied == 3


async def test_errors_surface_as_clickhouse_errors(store: ClickHouseAnalyticsStore) -> None:
    with pytest.raises(ClickHouseError):
        await store._ch.query("SELECT * FROM no_such_database.no_such_table")


def test_schema_columns_follow_the_domain_rules() -> None:
    from handwritten.analytics.adapters.schema import tables

    [ddl] = [statement for statement in tables("db") if "orders_analytics (" in statement]
    for name, rule in JOIN_RULES.items():
        assert f"{name} SimpleAggregateFunction({rule}, Nullable(" in ddl
    for name in ORDER_ALIASES:
        assert f"    {name} " in ddl
