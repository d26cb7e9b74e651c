"""The invariant checker of the chaos scenarios (DESIGN §5), run throughout and at the end.

While the load and the faults run, ``InvariantChecker`` samples, about once a second,
what must hold at EVERY moment, straight from the services' databases (never through
a proxy):

- stock: per product, available >= 0, reserved = the RESERVED reservation lines, and
  available + reserved + sold (COMMITTED lines) = the initial stock (no oversell,
  nothing created or lost);
- a confirmed order has a SUCCEEDED payment and COMMITTED reservations;
- no saga older than the bound without being terminal (one seen FAILED, the engine's
  alert for a compensation that keeps failing, is counted: it must still end).

After the load, ``settle`` waits for every saga and ``final_check`` verifies:

- every saga terminal (COMPLETED or COMPENSATED) within the bound, agreeing with its
  order (COMPLETED ⇔ CONFIRMED or beyond, COMPENSATED ⇔ CANCELED), with an allowed
  cancel reason for its payment token;
- no double charge: a confirmed order has exactly its total SUCCEEDED; a canceled one
  has no money kept (no payment, FAILED, REFUNDED or VOIDED);
- the orders on the scenario's products are exactly the ones the gateway returned
  (no duplicate or phantom order under retries), and sold stock = confirmed units;
- one shipment per confirmed order, none for a canceled one;
- events: each order's history is gap-free with each fact once; every outbox row of
  the order (orders, inventory, payment, shipping) is published, and the event ids on
  Kafka are exactly those rows (no lost event, none from nowhere). The relay is at
  least once: the same event id published twice is counted (consumers deduplicate
  on it) and is a violation only if the two copies differ. A fact (orders.*,
  shipping.scheduled) under two event ids is a duplicated event;
- every service's consumer group catches up with its topics.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from generated import catalog
from generated.events.registry import EVENTS
from tests.chaos.load import LoadResult, PlacedOrder, Shop
from tests.e2e.saga_support import LOCAL_DIR, POSTGRES

REPORT_DIR = LOCAL_DIR / "reports" / "chaos"
DATABASES = ("orders", "inventory", "payment", "shipping")
ORDER_TOPICS = sorted(spec.topic for spec in EVENTS if spec.key_field == "orderId")
#: Order history facts and the topic each one is published on (the others publish none).
FACT_TOPIC = {
    "OrderCreated": "orders.created",
    "OrderConfirmed": "orders.confirmed",
    "OrderCanceled": "orders.canceled",
    "OrderShipped": "orders.shipped",
    "OrderDelivered": "orders.delivered",
}
FACT_TOPICS = set(FACT_TOPIC.values())
#: Facts that happen at most once per order, whatever the retries and redeliveries.
ONCE_PER_ORDER = {*FACT_TOPIC, "OrderShipmentScheduled"}
UNIQUE_TOPICS = {*FACT_TOPIC.values(), "shipping.scheduled"}
CONFIRMED_OR_BEYOND = {"CONFIRMED", "SHIPPED", "DELIVERED"}
NO_MONEY_KEPT = {"FAILED", "REFUNDED", "VOIDED"}
TERMINAL = {"COMPLETED", "COMPENSATED"}
#: Cancel reasons each payment token may end with when no fault says otherwise.
CANCEL_REASONS = {
    "tok_visa": {"OUT_OF_STOCK"},
    "tok_chargeDeclined": {"OUT_OF_STOCK", "PAYMENT_FAILED"},
    "tok_timeout": {"OUT_OF_STOCK", "PAYMENT_TIMEOUT"},
}


@dataclass(frozen=True)
class Violation:
    """One broken invariant: which, about what, and when (seconds into the scenario)."""

    invariant: str
    subject: str
    detail: str
    seconds: float


@dataclass
class Expectations:
    """What a scenario allows beyond the defaults: extra cancel reasons per token, and
    the visa orders that its fault makes fail (e.g. the payment failure rate)."""

    cancel_reasons: dict[str, set[str]] = field(default_factory=dict)
    visa_fails: Callable[[str], bool] | None = None

    def allowed(self, order: PlacedOrder) -> set[str]:
        allowed = set(CANCEL_REASONS[order.token]) | self.cancel_reasons.get(order.token, set())
        if order.token == "tok_visa" and self.visa_fails and self.visa_fails(order.order_id):
            allowed.add("PAYMENT_FAILED")
        return allowed


#: Commands wait in the outbox while the broker is away: when it takes longer to come
#: back than the saga's 30 s payment timeout, an order times out (and any charge is
#: refunded) by design, whatever its card.
BROKER_MAY_OUTLAST_THE_PAYMENT_TIMEOUT = Expectations(
    cancel_reasons={token: {"PAYMENT_TIMEOUT"} for token in ("tok_visa", "tok_chargeDeclined")}
)


class InvariantChecker:
    """Samples the invariants during a scenario and checks them all at the end."""

    def __init__(
        self,
        scenario: str,
        shop: Shop,
        *,
        kafka_bootstrap: str,
        saga_bound_seconds: float,
        expectations: Expectations | None = None,
        sample_interval: float = 1.0,
    ) -> None:
        self.scenario = scenario
        self.shop = shop
        self.saga_bound = saga_bound_seconds
        self.expectations = expectations or Expectations()
        self._kafka = kafka_bootstrap
        self._interval = sample_interval
        self._started_wall = time.time()
        self._started = time.monotonic()
        self.orders: dict[str, PlacedOrder] = {}
        self.violations: list[Violation] = []
        self._reported: set[tuple[str, str]] = set()
        self.samples = 0
        self.sample_errors: Counter[str] = Counter()
        #: Sagas seen FAILED (a compensation stuck for a while) at some sample.
        self.failed_seen: set[str] = set()
        self.facts: dict[str, Any] = {}
        self._connections: dict[str, asyncpg.Connection] = {}
        self._stop = asyncio.Event()
        self._sampler: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> InvariantChecker:
        self._sampler = asyncio.create_task(self._sample_loop())
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.stop_sampling()
        for connection in self._connections.values():
            with contextlib.suppress(Exception):
                await connection.close()
        self._connections.clear()

    async def stop_sampling(self) -> None:
        self._stop.set()
        if self._sampler is not None:
            await self._sampler
            self._sampler = None

    def track(self, order: PlacedOrder) -> None:
        """An order the load got a 201 for: from now on it is checked."""
        self.orders[order.order_id] = order

    def violate(self, invariant: str, subject: str, detail: str) -> None:
        """Record a violation (once per invariant and subject)."""
        if (invariant, subject) in self._reported:
            return
        self._reported.add((invariant, subject))
        seconds = round(time.monotonic() - self._started, 2)
        self.violations.append(Violation(invariant, subject, detail, seconds))

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    # ------------------------------------------------------------------ database access

    async def _fetch(self, database: str, sql: str, *args: Any) -> list[asyncpg.Record]:
        for attempt in (1, 2):
            connection = self._connections.get(database)
            try:
                if connection is None or connection.is_closed():
                    connection = await asyncpg.connect(POSTGRES.format(db=database), timeout=10)
                    self._connections[database] = connection
                rows: list[asyncpg.Record] = await connection.fetch(sql, *args, timeout=30)
                return rows
            except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError):
                self._connections.pop(database, None)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _uuids(self) -> list[uuid.UUID]:
        return [uuid.UUID(order_id) for order_id in self.orders]

    # ------------------------------------------------------------------ always true

    async def _sample_loop(self) -> None:
        while not self._stop.is_set():
            try:
                await self.sample()
            except Exception as exc:  # the checker's own trouble is reported, not hidden
                self.sample_errors[type(exc).__name__] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval)

    async def sample(self) -> None:
        """Check once what must hold at every moment (see the module docstring)."""
        self.samples += 1
        await self._check_stock_conservation()
        if not self.orders:
            return
        await self._check_sagas_in_flight()
        await self._check_confirmed_orders_are_paid()

    async def _stock_rows(self) -> list[asyncpg.Record]:
        return await self._fetch(
            "inventory",
            """
            SELECT p.product_id::text AS product, p.available_quantity AS available,
                   p.reserved_quantity AS reserved,
                   coalesce(sum(r.quantity) FILTER (WHERE r.status = 'RESERVED'), 0) AS held,
                   coalesce(sum(r.quantity) FILTER (WHERE r.status = 'COMMITTED'), 0) AS sold
            FROM products p LEFT JOIN inventory_reservations r USING (product_id)
            WHERE p.product_id = ANY($1::uuid[])
            GROUP BY p.product_id
            """,
            [uuid.UUID(p) for p in self.shop.products],
        )

    async def _check_stock_conservation(self) -> None:
        for row in await self._stock_rows():
            product, initial = row["product"], self.shop.products[row["product"]]
            if row["available"] < 0:
                self.violate("no oversell", product, f"available {row['available']} < 0")
            if row["reserved"] != row["held"]:
                self.violate(
                    "reserved = RESERVED lines",
                    product,
                    f"reserved_quantity {row['reserved']} but RESERVED lines hold {row['held']}",
                )
            total = row["available"] + row["reserved"] + row["sold"]
            if total != initial:
                self.violate(
                    "stock conservation",
                    product,
                    f"available {row['available']} + reserved {row['reserved']}"
                    f" + sold {row['sold']} = {total}, initial stock {initial}",
                )

    async def _check_sagas_in_flight(self) -> None:
        for row in await self._sagas():
            if row["state"] == "FAILED":
                # The engine's alert that a compensation keeps failing; it goes on
                # retrying, so only a saga still not terminal at the bound is a violation.
                self.failed_seen.add(row["order_id"])
            if row["state"] not in TERMINAL and row["seconds"] > self.saga_bound:
                self.violate(
                    "saga within bound",
                    row["order_id"],
                    f"{row['state']} after {row['seconds']:.1f} s (bound {self.saga_bound} s)",
                )

    async def _sagas(self) -> list[asyncpg.Record]:
        return await self._fetch(
            "orders",
            """
            SELECT correlation_key AS order_id, state, outcome_detail,
                   extract(epoch FROM coalesce(finished_at, now()) - created_at)::float8
                       AS seconds
            FROM saga_instances
            WHERE saga_type = 'create_order' AND correlation_key = ANY($1::text[])
            """,
            list(self.orders),
        )

    async def _check_confirmed_orders_are_paid(self) -> None:
        # Orders first, then payments and reservations: both precede the confirmation,
        # so whatever was confirmed when read must already show them.
        confirmed = [
            row["order_id"]
            for row in await self._fetch(
                "orders",
                "SELECT order_id FROM orders_view WHERE order_id = ANY($1::uuid[])"
                " AND status = ANY($2::text[])",
                self._uuids(),
                sorted(CONFIRMED_OR_BEYOND),
            )
        ]
        if not confirmed:
            return
        payments = {
            str(row["order_id"]): row["status"]
            for row in await self._fetch(
                "payment",
                "SELECT order_id, status FROM payments WHERE order_id = ANY($1::uuid[])",
                confirmed,
            )
        }
        lines = defaultdict(set)
        for row in await self._fetch(
            "inventory",
            "SELECT order_id, status FROM inventory_reservations WHERE order_id = ANY($1::uuid[])",
            confirmed,
        ):
            lines[str(row["order_id"])].add(row["status"])
        for order_uuid in confirmed:
            order_id = str(order_uuid)
            if payments.get(order_id) != "SUCCEEDED":
                self.violate(
                    "confirmed ⇒ paid", order_id, f"confirmed, payment {payments.get(order_id)}"
                )
            if lines[order_id] != {"COMMITTED"}:
                self.violate(
                    "confirmed ⇒ stock sold",
                    order_id,
                    f"confirmed, reservation lines {sorted(lines[order_id])}",
                )

    # ------------------------------------------------------------------ the end

    async def settle(self, *, seconds: float) -> None:
        """Wait (bounded) until every tracked saga is terminal; the rest are violations."""
        deadline = time.monotonic() + seconds
        while True:
            open_ = [r for r in await self._sagas() if r["state"] not in TERMINAL]
            missing = set(self.orders) - {r["order_id"] for r in await self._sagas()}
            if not open_ and not missing:
                return
            if time.monotonic() > deadline:
                for row in open_:
                    self.violate("saga terminal", row["order_id"], f"still {row['state']}")
                for order_id in missing:
                    self.violate("saga started", order_id, "the order has no saga")
                return
            await asyncio.sleep(1.0)

    async def final_check(self, load: LoadResult, *, settle_seconds: float) -> None:
        """Everything in the module docstring, after the load is over."""
        await self.stop_sampling()
        timings: dict[str, float] = {}
        self.facts["final_check_seconds"] = timings

        async def timed(name: str, check: Awaitable[None]) -> None:
            started = time.monotonic()
            await check
            timings[name] = round(time.monotonic() - started, 2)

        await timed("sample", self.sample())
        await timed("settle", self.settle(seconds=settle_seconds))
        for problem in load.gave_up:
            self.violate("every request answered", problem.split(":")[0], problem)
        await timed("outcomes", self._check_outcomes())
        await timed("stray_orders", self._check_no_stray_orders())
        await timed("stock", self._check_final_stock())
        await timed("shipments", self._check_shipments(seconds=45))
        await timed("events", self._check_events(seconds=60))
        await timed("consumers", self._check_consumers_caught_up(seconds=90))

    async def _check_outcomes(self) -> None:
        sagas = {row["order_id"]: row for row in await self._sagas()}
        self.facts["saga_seconds"] = sorted(
            round(row["seconds"], 2) for row in sagas.values() if row["state"] in TERMINAL
        )
        views = {
            str(row["order_id"]): row
            for row in await self._fetch(
                "orders",
                "SELECT order_id, user_id::text AS user_id, status, cancel_reason, total_amount,"
                " items::text AS items FROM orders_view WHERE order_id = ANY($1::uuid[])",
                self._uuids(),
            )
        }
        payments = {
            str(row["order_id"]): row
            for row in await self._fetch(
                "payment",
                "SELECT order_id, status, amount FROM payments WHERE order_id = ANY($1::uuid[])",
                self._uuids(),
            )
        }
        reservations: dict[str, dict[str, tuple[int, str]]] = defaultdict(dict)
        for row in await self._fetch(
            "inventory",
            "SELECT order_id, product_id::text AS product, quantity, status"
            " FROM inventory_reservations WHERE order_id = ANY($1::uuid[])",
            self._uuids(),
        ):
            reservations[str(row["order_id"])][row["product"]] = (row["quantity"], row["status"])
        outcomes: Counter[str] = Counter()
        causes: Counter[str] = Counter()
        for order_id, order in self.orders.items():
            view = views.get(order_id)
            saga = sagas.get(order_id)
            if view is None:
                self.violate("order stored", order_id, "a 201 order is missing from orders_view")
                continue
            outcomes[view["status"] if view["status"] != "CANCELED" else view["cancel_reason"]] += 1
            if view["status"] == "CANCELED" and saga is not None:
                causes[(saga["outcome_detail"] or "").split(":")[0]] += 1
            self._check_order(order, view, saga, payments.get(order_id), reservations[order_id])
        self.facts["outcomes"] = dict(sorted(outcomes.items()))
        self.facts["cancel_causes"] = dict(sorted(causes.items()))

    def _check_order(
        self,
        order: PlacedOrder,
        view: asyncpg.Record,
        saga: asyncpg.Record | None,
        payment: asyncpg.Record | None,
        lines: dict[str, tuple[int, str]],
    ) -> None:
        order_id, status = order.order_id, view["status"]
        requested = {line.product_id: line.quantity for line in order.lines}
        stored = {item["productId"]: item["quantity"] for item in json.loads(view["items"])}
        if stored != requested or view["user_id"] != order.user_id:
            self.violate("order as requested", order_id, f"{stored} of {view['user_id']}")
        if saga is not None and saga["state"] in TERMINAL:
            if saga["seconds"] > self.saga_bound:
                self.violate(
                    "saga within bound",
                    order_id,
                    f"{saga['state']} after {saga['seconds']:.1f} s (bound {self.saga_bound} s)",
                )
            agrees = (saga["state"] == "COMPLETED") == (status in CONFIRMED_OR_BEYOND)
            if not agrees or status not in CONFIRMED_OR_BEYOND | {"CANCELED"}:
                self.violate("saga ⇔ order", order_id, f"saga {saga['state']}, order {status}")
        paid = None if payment is None else payment["status"]
        if status in CONFIRMED_OR_BEYOND:
            if paid != "SUCCEEDED" or payment is None:
                self.violate("no double charge", order_id, f"confirmed with payment {paid}")
            elif payment["amount"] != Decimal(view["total_amount"]):
                self.violate(
                    "charged the total",
                    order_id,
                    f"charged {payment['amount']}, order total {view['total_amount']}",
                )
            if {p: line[0] for p, line in lines.items()} != requested or any(
                line[1] != "COMMITTED" for line in lines.values()
            ):
                self.violate("confirmed ⇒ stock sold", order_id, f"reservations {lines}")
        elif status == "CANCELED":
            if paid is not None and paid not in NO_MONEY_KEPT:
                self.violate("no money kept when canceled", order_id, f"payment {paid}")
            if any(line[1] in ("RESERVED", "COMMITTED") for line in lines.values()):
                self.violate("canceled ⇒ stock back", order_id, f"reservations {lines}")
            detail = (saga["outcome_detail"] or "") if saga is not None else ""
            if detail.startswith("INTERNAL"):
                # An error nobody classified (a bug, or a transient fault answered as
                # one) must not pass for the business outcome it was mapped to.
                self.violate("canceled for a real reason", order_id, f"{status}: {detail}")
            allowed = self.expectations.allowed(order)
            if view["cancel_reason"] not in allowed:
                self.violate(
                    "expected outcome",
                    order_id,
                    f"{order.token} order canceled {view['cancel_reason']}"
                    f" (allowed: {sorted(allowed)})",
                )
        if (
            order.token == "tok_visa"
            and self.expectations.visa_fails is not None
            and self.expectations.visa_fails(order_id)
            and status in CONFIRMED_OR_BEYOND
        ):
            self.violate("expected outcome", order_id, "the fault should have failed its payment")

    async def _check_no_stray_orders(self) -> None:
        rows = await self._fetch(
            "orders",
            "SELECT order_id::text AS order_id FROM orders_view WHERE EXISTS ("
            " SELECT 1 FROM jsonb_array_elements(items) item"
            " WHERE item->>'productId' = ANY($1::text[]))",
            list(self.shop.products),
        )
        stray = {row["order_id"] for row in rows} - set(self.orders)
        for order_id in sorted(stray):
            self.violate(
                "one order per request", order_id, "an order nobody got a 201 for (duplicate?)"
            )

    async def _check_final_stock(self) -> None:
        confirmed_units: Counter[str] = Counter()
        for row in await self._fetch(
            "orders",
            "SELECT items::text AS items FROM orders_view WHERE order_id = ANY($1::uuid[])"
            " AND status = ANY($2::text[])",
            self._uuids(),
            sorted(CONFIRMED_OR_BEYOND),
        ):
            for item in json.loads(row["items"]):
                confirmed_units[item["productId"]] += int(item["quantity"])
        sold: dict[str, int] = {}
        for row in await self._stock_rows():
            product = row["product"]
            sold[product] = int(row["sold"])
            if row["reserved"] != 0:
                self.violate("nothing left reserved", product, f"reserved {row['reserved']}")
            if row["sold"] != confirmed_units[product]:
                self.violate(
                    "sold = confirmed",
                    product,
                    f"sold {row['sold']}, confirmed orders hold {confirmed_units[product]}",
                )
            if row["sold"] > self.shop.products[product]:
                self.violate(
                    "no oversell", product, f"sold {row['sold']} of {self.shop.products[product]}"
                )
        self.facts["stock"] = {
            product: {"initial": initial, "sold": sold.get(product)}
            for product, initial in self.shop.products.items()
        }

    async def _check_shipments(self, *, seconds: float) -> None:
        statuses = {
            str(row["order_id"]): row["status"]
            for row in await self._fetch(
                "orders",
                "SELECT order_id, status FROM orders_view WHERE order_id = ANY($1::uuid[])",
                self._uuids(),
            )
        }
        deadline = time.monotonic() + seconds
        while True:
            counts: Counter[str] = Counter(
                str(row["order_id"])
                for row in await self._fetch(
                    "shipping",
                    "SELECT order_id FROM shipments WHERE order_id = ANY($1::uuid[])",
                    self._uuids(),
                )
            )
            missing = [
                o for o, s in statuses.items() if s in CONFIRMED_OR_BEYOND and counts[o] != 1
            ]
            if not missing or time.monotonic() > deadline:
                break
            await asyncio.sleep(1.0)
        for order_id in missing:
            self.violate("one shipment per confirmed order", order_id, f"{counts[order_id]}")
        for order_id, status in statuses.items():
            if status == "CANCELED" and counts[order_id]:
                self.violate("no shipment when canceled", order_id, f"{counts[order_id]}")

    # ------------------------------------------------------------------ events

    async def _outbox(self, database: str, keys: list[str]) -> list[asyncpg.Record]:
        return await self._fetch(
            database,
            "SELECT event_id::text AS event_id, topic, key, published_at IS NOT NULL AS published,"
            " value FROM outbox WHERE key = ANY($1::text[])",
            keys,
        )

    async def _check_events(self, *, seconds: float) -> None:
        keys = list(self.orders)
        # 1. the event store and the orders outbox, in one snapshot of the orders database
        history, orders_outbox = await self._orders_snapshot(keys)
        for order_id in keys:
            self._check_history(order_id, history.get(order_id, []), orders_outbox)
        # 2. every outbox row of these orders published (the relays drain their backlog)
        deadline = time.monotonic() + seconds
        while True:
            outbox = {db: await self._outbox(db, keys) for db in DATABASES}
            pending = [
                (db, r["event_id"])
                for db, rows in outbox.items()
                for r in rows
                if not r["published"]
            ]
            if not pending or time.monotonic() > deadline:
                break
            await asyncio.sleep(1.0)
        for database, event_id in pending:
            self.violate("no lost events", event_id, f"{database} outbox row never published")
        published = {
            r["event_id"]: (db, r) for db, rows in outbox.items() for r in rows if r["published"]
        }
        # 3. Kafka: exactly the published rows (read to the end offsets taken now)
        seen = await self._kafka_records(set(keys))
        for event_id, (database, row) in published.items():
            if event_id not in seen:
                self.violate("no lost events", event_id, f"{database} {row['topic']} not on Kafka")
        unknown = set(seen) - set(published)
        if unknown:
            rows = {
                r["event_id"]
                for db in DATABASES
                for r in await self._fetch(
                    db,
                    "SELECT event_id::text AS event_id FROM outbox"
                    " WHERE event_id = ANY($1::uuid[])",
                    sorted(unknown),
                )
            }
            for event_id in sorted(unknown - rows):
                topic, key, _ = seen[event_id][0]
                self.violate("no event from nowhere", event_id, f"{topic} key {key}")
        redelivered = 0
        facts: dict[tuple[str, str], set[str]] = defaultdict(set)
        for event_id, copies in seen.items():
            topic, key, value = copies[0]
            facts[(key, topic)].add(event_id)
            if len(copies) > 1:
                redelivered += 1
                if any(copy[2] != value for copy in copies):
                    self.violate("redelivery is identical", event_id, f"{topic} copies differ")
        for (key, topic), event_ids in facts.items():
            if topic in UNIQUE_TOPICS and len(event_ids) > 1:
                self.violate("no duplicated events", key, f"{topic} under {sorted(event_ids)}")
        self.facts["events"] = {
            "outbox_rows": sum(len(rows) for rows in outbox.values()),
            "kafka_event_ids": len(seen),
            "kafka_redelivered_event_ids": redelivered,
        }

    async def _orders_snapshot(
        self, keys: list[str]
    ) -> tuple[dict[str, list[tuple[int, str]]], dict[str, Counter[str]]]:
        connection = await asyncpg.connect(POSTGRES.format(db="orders"), timeout=10)
        try:
            async with connection.transaction(isolation="repeatable_read", readonly=True):
                events = await connection.fetch(
                    "SELECT aggregate_id::text AS order_id, sequence_number, event_type"
                    " FROM events WHERE aggregate_id = ANY($1::uuid[])"
                    " ORDER BY aggregate_id, sequence_number",
                    [uuid.UUID(k) for k in keys],
                )
                rows = await connection.fetch(
                    "SELECT key, topic FROM outbox WHERE key = ANY($1::text[])", keys
                )
        finally:
            await connection.close()
        history: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for row in events:
            history[row["order_id"]].append((row["sequence_number"], row["event_type"]))
        outbox: dict[str, Counter[str]] = defaultdict(Counter)
        for row in rows:
            outbox[row["key"]][row["topic"]] += 1
        return history, outbox

    def _check_history(
        self, order_id: str, history: list[tuple[int, str]], outbox: dict[str, Counter[str]]
    ) -> None:
        sequences = [sequence for sequence, _ in history]
        types = [event_type for _, event_type in history]
        if sequences != list(range(1, len(history) + 1)) or types[:1] != ["OrderCreated"]:
            self.violate("gap-free history", order_id, f"{history}")
        counts = Counter(types)
        for event_type in ONCE_PER_ORDER:
            if counts[event_type] > 1:
                self.violate(
                    "no duplicated events", order_id, f"{event_type} x{counts[event_type]}"
                )
        if counts["OrderConfirmed"] and counts["OrderCanceled"]:
            self.violate("one outcome", order_id, "both confirmed and canceled")
        expected = Counter({FACT_TOPIC[t]: n for t, n in counts.items() if t in FACT_TOPIC})
        # The saga's commands (payments.*) share the outbox: compare the facts only.
        facts = Counter({t: n for t, n in outbox.get(order_id, {}).items() if t in FACT_TOPICS})
        if facts != expected:
            self.violate(
                "event store = outbox",
                order_id,
                f"history publishes {dict(expected)}, outbox has {dict(facts)}",
            )

    async def _kafka_records(self, keys: set[str]) -> dict[str, list[tuple[str, str, bytes]]]:
        """event id → [(topic, key, value)] of every record keyed by one of ``keys``."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._kafka,
            enable_auto_commit=False,
            isolation_level="read_committed",
            client_id=f"chaos-checker-{uuid.uuid4().hex[:8]}",
        )
        await consumer.start()
        seen: dict[str, list[tuple[str, str, bytes]]] = defaultdict(list)
        try:
            partitions = [
                TopicPartition(topic, partition)
                for topic in ORDER_TOPICS
                for partition in sorted(await _partitions(consumer, topic))
            ]
            consumer.assign(partitions)
            since = int((self._started_wall - 120) * 1000)
            starts = await consumer.offsets_for_times(dict.fromkeys(partitions, since))
            ends = await consumer.end_offsets(partitions)
            for tp in partitions:
                found = starts.get(tp)
                consumer.seek(tp, found.offset if found is not None else ends[tp])
            deadline = time.monotonic() + 120
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                if time.monotonic() > deadline:
                    raise AssertionError("reading the order topics took over 120 s")
                batch = await consumer.getmany(timeout_ms=500, max_records=5000)
                for records in batch.values():
                    for record in records:
                        key = (record.key or b"").decode()
                        if key not in keys:
                            continue
                        event_id = dict(record.headers).get("event-id", b"").decode()
                        seen[event_id].append((record.topic, key, record.value or b""))
        finally:
            await consumer.stop()
        return seen

    async def _check_consumers_caught_up(self, *, seconds: float) -> None:
        groups = {
            str(service.consumer_group): sorted(service.consumes)
            for service in catalog.SERVICES.values()
            if service.consumer_group and service.consumes
        }
        admin = AIOKafkaAdminClient(bootstrap_servers=self._kafka)
        consumer = AIOKafkaConsumer(bootstrap_servers=self._kafka, enable_auto_commit=False)
        await admin.start()
        await consumer.start()
        try:
            ends: dict[str, dict[TopicPartition, int]] = {}
            for group, topics in groups.items():
                partitions = [
                    TopicPartition(t, p) for t in topics for p in await _partitions(consumer, t)
                ]
                ends[group] = await consumer.end_offsets(partitions)
            deadline = time.monotonic() + seconds
            behind: dict[str, int] = {}
            while True:
                behind = {}
                for group, targets in ends.items():
                    committed = await admin.list_consumer_group_offsets(group)
                    lag = sum(
                        max(0, end - (committed[tp].offset if tp in committed else 0))
                        for tp, end in targets.items()
                    )
                    if lag:
                        behind[group] = lag
                if not behind or time.monotonic() > deadline:
                    break
                await asyncio.sleep(1.0)
            for group, lag in behind.items():
                self.violate("consumers catch up", group, f"{lag} records behind after {seconds} s")
        finally:
            await consumer.stop()
            await admin.close()

    # ------------------------------------------------------------------ the report

    def summary(self, load: LoadResult, *, requested: int, fault: dict[str, Any]) -> dict[str, Any]:
        saga_seconds: list[float] = self.facts.get("saga_seconds", [])
        outcomes: dict[str, int] = self.facts.get("outcomes", {})
        confirmed = sum(n for status, n in outcomes.items() if status in CONFIRMED_OR_BEYOND)
        return {
            "scenario": self.scenario,
            "started_at": datetime.fromtimestamp(self._started_wall, UTC).isoformat(),
            "duration_seconds": round(self.elapsed, 1),
            "fault": fault,
            "orders": {
                "requested": requested,
                "started": len(load.placed),
                "rejected_out_of_stock": load.out_of_stock,
                "gave_up": len(load.gave_up),
                "confirmed": confirmed,
                "canceled": sum(outcomes.values()) - confirmed,
                "by_outcome": outcomes,
                "cancel_causes": self.facts.get("cancel_causes", {}),
                "tokens": dict(Counter(order.token for order in load.placed)),
            },
            "sagas": {
                "terminal": len(saga_seconds),
                "bound_seconds": self.saga_bound,
                "max_seconds": max(saga_seconds, default=0.0),
                "seen_failed_then_recovered": len(self.failed_seen),
                "median_seconds": statistics.median(saga_seconds) if saga_seconds else 0.0,
            },
            "requests": {
                "retries_by_cause": dict(load.retried_because),
                "max_attempts": max((o.attempts for o in load.placed), default=0),
                "reads": dict(load.reads),
            },
            "stock": self.facts.get("stock", {}),
            "events": self.facts.get("events", {}),
            "checker": {
                "samples": self.samples,
                "sample_errors": dict(self.sample_errors),
                "final_check_seconds": self.facts.get("final_check_seconds", {}),
            },
            "violation_count": len(self.violations),
            "violations": [asdict(v) for v in self.violations],
        }


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> Iterable[int]:
    partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        await consumer._client.force_metadata_update()  # no public one
        partitions = consumer.partitions_for_topic(topic)
    if not partitions:
        raise AssertionError(f"topic {topic} has no partitions")
    return set(partitions)


def write_report(summary: dict[str, Any]) -> Path:
    """Print the summary and write it to .local/reports/chaos/<scenario>-<time>.json."""
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = REPORT_DIR / f"{summary['scenario']}-{stamp}-{os.getpid()}.json"
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    orders = summary["orders"]
    print(
        f"\n[chaos] {summary['scenario']}: orders started {orders['started']}"
        f" (out of stock at the door {orders['rejected_out_of_stock']}),"
        f" confirmed {orders['confirmed']}, canceled {orders['canceled']} {orders['by_outcome']};"
        f" max saga {summary['sagas']['max_seconds']} s;"
        f" violations {summary['violation_count']}; report {path}"
    )
    return path
