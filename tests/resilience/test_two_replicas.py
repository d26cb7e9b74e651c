"""Two replicas of orders and of payment: no double processing, no stuck saga.

A second orders process and a second payment process join the running stack (same
databases, same Kafka consumer groups, other ports), as a second pod of each would in
Kubernetes. Orders are placed through the gateway; both replicas then compete for the
work: saga transitions (FOR UPDATE SKIP LOCKED), the outbox relay (one active per
database, advisory lock), the partitions of the consumer groups (commands and replies,
deduplicated by the inbox). Then, for every order: its saga is terminal and ran each
step once, it was charged (or declined) once, and every event was published once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from generated import catalog
from tests.e2e.conftest import Account, register_and_login
from tests.e2e.saga_support import (
    CONFIRMED_OR_BEYOND,
    LOCAL_DIR,
    POSTGRES,
    TERMINAL_SAGA_STATES,
    get_order,
    new_product,
    place_order,
    poll,
    stock,
)
from tests.resilience.replicas import (
    Replica,
    gauge,
    log_lines,
    log_size,
    service_log,
    start_replica,
)

ORDERS = 20
ACCOUNTS = 5
VISA, DECLINED = "tok_visa", "tok_chargeDeclined"
SETTLE_SECONDS = 180
#: Charge outcomes that mean "the gateway was asked to charge" (not a repeat or a no-op).
CHARGED = {"succeeded", "declined", "gateway_error", "invalid_payment_method", "no_answer"}
TOPICS = (
    "orders.created",
    "orders.confirmed",
    "orders.canceled",
    "inventory.reserved",
    "inventory.released",
    "payments.requested",
    "payments.processed",
    "payments.failed",
    "payments.refund_requested",
    "payments.refunded",
)
#: The events each order's saga produces, by payment token (topic → how many).
EXPECTED_EVENTS = {
    VISA: {
        "orders.created": 1,
        "inventory.reserved": 1,
        "payments.requested": 1,
        "payments.processed": 1,
        "orders.confirmed": 1,
    },
    DECLINED: {
        "orders.created": 1,
        "inventory.reserved": 1,
        "payments.requested": 1,
        "payments.failed": 1,
        "inventory.released": 1,
        "orders.canceled": 1,
    },
}


def _assigned(replica: Replica, group: str, since: int) -> bool:
    """Whether the replica's consumer got partitions of ``group`` (aiokafka logs it)."""
    return any(
        "Setting newly assigned partitions" in str(line.get("event"))
        and group in str(line.get("event"))
        and "TopicPartition" in str(line.get("event"))
        for line in log_lines(replica.log_file, since=since)
    )


@pytest.fixture
async def replicas() -> AsyncIterator[dict[str, Replica]]:
    """A second orders and a second payment process, ready and in their groups."""
    started: dict[str, Replica] = {}
    offsets: dict[str, int] = {}
    try:
        for service in ("orders", "payment"):
            offsets[service] = log_size(LOCAL_DIR / "logs" / f"{service}-2.log")
            started[service] = start_replica(service)
        for service, replica in started.items():

            async def ready(replica: Replica = replica) -> bool:
                assert replica.process.poll() is None, f"{replica.service}-2 exited"
                return await asyncio.to_thread(replica.ready)

            await poll(ready, seconds=120, what=f"{service}-2 to be ready", interval=0.5)
        for service, replica in started.items():
            group = f"{service}-service"

            async def joined(replica: Replica = replica, group: str = group) -> bool:
                since = offsets[replica.service]
                return await asyncio.to_thread(_assigned, replica, group, since)

            await poll(joined, seconds=90, what=f"{service}-2 to get partitions", interval=0.5)
        yield started
    finally:
        for replica in started.values():
            await asyncio.to_thread(replica.stop)


async def _sagas(order_ids: list[str]) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(POSTGRES.format(db="orders"))
    try:
        return list(
            await connection.fetch(
                "SELECT saga_id, correlation_key, state, outcome_reason, transition_failures"
                " FROM saga_instances WHERE correlation_key = ANY($1::text[])",
                order_ids,
            )
        )
    finally:
        await connection.close()


async def _steps(saga_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[asyncpg.Record]]:
    connection = await asyncpg.connect(POSTGRES.format(db="orders"))
    try:
        rows = await connection.fetch(
            "SELECT saga_id, step_name, status, attempts, compensation, compensation_attempts,"
            " stuck, last_error FROM saga_step_executions WHERE saga_id = ANY($1::uuid[])"
            " ORDER BY saga_id, step_index",
            list(saga_ids),
        )
    finally:
        await connection.close()
    steps: dict[uuid.UUID, list[asyncpg.Record]] = {}
    for row in rows:
        steps.setdefault(row["saga_id"], []).append(row)
    return steps


async def _payments(order_ids: list[str]) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(POSTGRES.format(db="payment"))
    try:
        return list(
            await connection.fetch(
                "SELECT order_id::text AS order_id, status, request_event_id::text AS request"
                " FROM payments WHERE order_id = ANY($1::uuid[])",
                [uuid.UUID(o) for o in order_ids],
            )
        )
    finally:
        await connection.close()


class _Topics:
    """The records of ``TOPICS`` keyed by our orders, read from the beginning and then
    followed (no consumer group: partitions are assigned directly)."""

    def __init__(self, bootstrap: str, order_ids: set[str]) -> None:
        self._order_ids = order_ids
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        self.records: list[ConsumerRecord[bytes, bytes]] = []

    async def __aenter__(self) -> _Topics:
        await self._consumer.start()
        partitions = [
            TopicPartition(topic.name, partition)
            for topic in catalog.TOPICS
            if topic.name in TOPICS
            for partition in range(topic.partitions)
        ]
        assert len({tp.topic for tp in partitions}) == len(TOPICS)
        self._consumer.assign(partitions)
        await self._consumer.seek_to_beginning(*partitions)
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._consumer.stop()

    async def read(self) -> None:
        """Read every record up to the current ends."""
        assigned = list(self._consumer.assignment())
        ends = await self._consumer.end_offsets(assigned)
        while any([await self._consumer.position(tp) < end for tp, end in ends.items()]):
            batch = await self._consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batch.values():
                self.records.extend(
                    r for r in records if (r.key or b"").decode() in self._order_ids
                )

    def per_order(self) -> dict[str, Counter[str]]:
        counts: dict[str, Counter[str]] = {order_id: Counter() for order_id in self._order_ids}
        for record in self.records:
            counts[(record.key or b"").decode()][record.topic] += 1
        return counts


def _event_id(record: ConsumerRecord[bytes, bytes]) -> str:
    return next(value.decode() for name, value in record.headers if name == "event-id")


async def _place(
    gateway: httpx.AsyncClient, accounts: list[Account], product: str
) -> dict[str, tuple[Account, str]]:
    """ORDERS orders, tokens alternating, each account placing its share in sequence."""

    async def one_account(index: int, account: Account) -> list[tuple[str, Account, str]]:
        placed = []
        for number in range(index, ORDERS, len(accounts)):
            token = VISA if number % 2 == 0 else DECLINED
            placed.append((await place_order(gateway, account, product, token), account, token))
        return placed

    batches = await asyncio.gather(*(one_account(i, a) for i, a in enumerate(accounts)))
    return {order_id: (account, token) for batch in batches for order_id, account, token in batch}


async def test_two_replicas_of_orders_and_payment_process_each_order_once(
    gateway: httpx.AsyncClient,
    admin: Account,
    replicas: dict[str, Replica],
    kafka_bootstrap: str,
) -> None:
    logs = {
        service: {
            "replica-1": (service_log(service), log_size(service_log(service))),
            "replica-2": (replicas[service].log_file, log_size(replicas[service].log_file)),
        }
        for service in ("orders", "payment")
    }
    initial = ORDERS
    product = await new_product(gateway, admin, stock=initial)
    accounts = [await register_and_login(gateway) for _ in range(ACCOUNTS)]
    orders = await _place(gateway, accounts, product)
    order_ids = sorted(orders)
    assert len(order_ids) == ORDERS

    # Every saga ends: read from the orders database (not rate limited).
    async def all_terminal() -> bool:
        rows = await _sagas(order_ids)
        return len(rows) == ORDERS and all(r["state"] in TERMINAL_SAGA_STATES for r in rows)

    try:
        await poll(all_terminal, seconds=SETTLE_SECONDS, what="every saga to end")
    except AssertionError as error:
        stuck = [dict(r) for r in await _sagas(order_ids) if r["state"] not in TERMINAL_SAGA_STATES]
        raise AssertionError(f"{error}; not terminal: {stuck}") from None

    # Each saga: the expected end, every step run at most once, nothing stuck.
    sagas = {r["correlation_key"]: r for r in await _sagas(order_ids)}
    steps = await _steps(r["saga_id"] for r in sagas.values())
    for order_id, (_, token) in orders.items():
        saga = sagas[order_id]
        context = (order_id, token, dict(saga), [dict(s) for s in steps[saga["saga_id"]]])
        assert saga["transition_failures"] == 0, context
        run = {s["step_name"]: s for s in steps[saga["saga_id"]]}
        assert not any(s["stuck"] for s in run.values()), context
        assert all(s["attempts"] <= 1 and s["compensation_attempts"] <= 1 for s in run.values()), (
            context
        )
        if token == VISA:
            assert saga["state"] == "COMPLETED", context
            assert {n: (s["status"], s["attempts"]) for n, s in run.items()} == {
                "reserve_inventory": ("SUCCEEDED", 1),
                "process_payment": ("SUCCEEDED", 1),
                "commit_reservation": ("SUCCEEDED", 1),
                "confirm_order": ("SUCCEEDED", 1),
            }, context
            assert all(s["compensation"] is None for s in run.values()), context
        else:
            assert (saga["state"], saga["outcome_reason"]) == ("COMPENSATED", "PAYMENT_FAILED")
            assert {n: (s["status"], s["attempts"]) for n, s in run.items()} == {
                "reserve_inventory": ("SUCCEEDED", 1),
                "process_payment": ("FAILED", 1),
                "commit_reservation": ("SKIPPED", 0),
                "confirm_order": ("SKIPPED", 0),
            }, context
            reserve = run["reserve_inventory"]
            assert (reserve["compensation"], reserve["compensation_attempts"]) == ("DONE", 1)

    # Each event published once per topic; each order's saga produced exactly its events.
    async with _Topics(kafka_bootstrap, set(order_ids)) as topics:

        async def all_published() -> bool:
            await topics.read()
            counts = topics.per_order()
            return all(
                counts[o][topic] >= n
                for o, (_, token) in orders.items()
                for topic, n in EXPECTED_EVENTS[token].items()
            )

        await poll(all_published, seconds=60, what="every event to reach Kafka")
        await topics.read()
    published = Counter((r.topic, _event_id(r)) for r in topics.records)
    assert [key for key, n in published.items() if n > 1] == []
    for order_id, counted in topics.per_order().items():
        token = orders[order_id][1]
        assert dict(counted) == EXPECTED_EVENTS[token], (order_id, token, dict(counted))

    # One payment per order, created by the one payments.requested; charged once.
    requested = {
        (r.key or b"").decode(): _event_id(r)
        for r in topics.records
        if r.topic == "payments.requested"
    }
    payments = {p["order_id"]: p for p in await _payments(order_ids)}
    assert sorted(payments) == order_ids
    for order_id, (_, token) in orders.items():
        expected = "SUCCEEDED" if token == VISA else "FAILED"
        assert payments[order_id]["status"] == expected, (order_id, dict(payments[order_id]))
        assert payments[order_id]["request"] == requested[order_id]
    charges: Counter[str] = Counter()
    charged_by: dict[str, set[str]] = {}
    for name, (path, offset) in logs["payment"].items():
        for line in log_lines(path, since=offset):
            if (
                line.get("event") == "payment requested"
                and line.get("order_id") in orders
                and line.get("outcome") in CHARGED
            ):
                charges[str(line["order_id"])] += 1
                charged_by.setdefault(name, set()).add(str(line["order_id"]))
    assert charges == dict.fromkeys(order_ids, 1), charges

    # The work was shared: each replica of each service did some of it.
    worked_by: dict[str, set[str]] = {}
    for name, (path, offset) in logs["orders"].items():
        for line in log_lines(path, since=offset):
            if line.get("event") == "saga step ended" and line.get("key") in orders:
                worked_by.setdefault(name, set()).add(str(line["key"]))
    assert set(worked_by) == {"replica-1", "replica-2"}, worked_by
    assert set(charged_by) == {"replica-1", "replica-2"}, charged_by

    # One active outbox relay per database, whatever the number of replicas.
    for service in ("orders", "payment"):
        port = catalog.SERVICES[service].http_port
        async with httpx.AsyncClient(timeout=5) as client:
            first = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        second = await asyncio.to_thread(replicas[service].metrics)
        active = [gauge(text, "outbox_relay_active", service=service) for text in (first, second)]
        assert sorted(active) == [0.0, 1.0], (service, active)

    # Stock: every confirmed order sold one unit, every declined one gave it back.
    sold = sum(1 for _, token in orders.values() if token == VISA)

    async def consistent() -> bool:
        return await stock(gateway, product) == (initial - sold, 0)

    await poll(consistent, seconds=30, what="stock to match the confirmed orders")
    # And the API agrees with the tables (a sample per account: the rate limit is per user).
    for account in accounts:
        order_id = next(o for o, (a, _) in orders.items() if a is account)
        body: dict[str, Any] = await get_order(gateway, account, order_id)
        settled = CONFIRMED_OR_BEYOND if orders[order_id][1] == VISA else {"CANCELED"}
        assert body["status"] in settled, body
