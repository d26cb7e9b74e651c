"""The transactional outbox against real PostgreSQL and Kafka: no lost events, per-key
order, at-least-once with consumer dedupe, one active relay per database."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Callable, Sequence

import asyncpg
import pytest
from aiokafka import ConsumerRecord

from generated.events.registry import ORDERS_CREATED
from generated.models.events import OrderCreatedPayload
from handwritten.runtime.inbox import first_time
from handwritten.runtime.kafka import decode_record
from handwritten.runtime.outbox import OutboxRelay, OutboxSender
from tests.integration.eventstore.database import URL, Schema
from tests.integration.outbox.conftest import (
    Relays,
    commit_events,
    eventually,
    expected_per_key,
    per_key_event_ids,
    read_topic_to_end,
    unpublished,
)
from tests.samples import order_created_data


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_committed_events_reach_kafka_once_each_in_per_key_order(
    db: Schema, relays: Relays, kafka_bootstrap: str
) -> None:
    keys = [uuid.uuid4() for _ in range(3)]
    relay = relays.start(kafka_bootstrap)
    written = await commit_events(db, keys, per_key=4)
    await eventually(lambda: _none_left(db, keys), what="all rows published")

    records = await read_topic_to_end(kafka_bootstrap, keys)
    assert per_key_event_ids(records) == expected_per_key(written)  # once each, in order
    assert relay.published >= len(written)
    decoded = decode_record(records[0])  # what was relayed is a valid event
    assert decoded.spec is ORDERS_CREATED and str(decoded.payload.order_id) in map(str, keys)


async def test_notify_wakes_the_relay_without_waiting_for_the_poll(
    db: Schema, relays: Relays, kafka_bootstrap: str
) -> None:
    relay = relays.start(kafka_bootstrap, poll_interval=600)
    first, second = uuid.uuid4(), uuid.uuid4()
    await commit_events(db, [first], per_key=1)
    await eventually(lambda: _none_left(db, [first]), what="first row published")
    # The relay now sleeps up to 10 minutes unless the insert trigger's NOTIFY wakes it.
    await commit_events(db, [second], per_key=1)
    await eventually(lambda: _none_left(db, [second]), what="NOTIFY-driven publish", deadline=10)
    assert relay.active


async def test_rows_wait_while_kafka_is_unreachable_and_drain_in_order_later(
    db: Schema, relays: Relays, kafka_bootstrap: str
) -> None:
    keys = [uuid.uuid4() for _ in range(2)]
    written = await commit_events(db, keys, per_key=3)
    dead = relays.start(f"127.0.0.1:{closed_port()}")

    async def retried_twice() -> bool:
        return dead.kafka_failures >= 2

    await eventually(retried_twice, what="relay retrying an unreachable broker")
    assert dead.active and dead.published == 0
    assert await unpublished(db, keys) == len(written)  # nothing lost, nothing marked
    await relays.stop(dead)

    healthy = relays.start(kafka_bootstrap)
    await eventually(lambda: _none_left(db, keys), what="backlog drained")
    records = await read_topic_to_end(kafka_bootstrap, keys)
    assert per_key_event_ids(records) == expected_per_key(written)
    assert healthy.published >= len(written)


class SimulatedCrash(Exception):
    """The process dies after the broker acked but before the rows were marked."""


class CrashBeforeMark(OutboxRelay):
    async def mark_published(self, connection: asyncpg.Connection, ids: Sequence[int]) -> None:
        raise SimulatedCrash(f"crashed before marking {list(ids)}")


async def test_a_crash_between_publish_and_mark_republishes_and_consumers_dedupe(
    db: Schema, relays: Relays, kafka_bootstrap: str
) -> None:
    keys = [uuid.uuid4() for _ in range(2)]
    written = await commit_events(db, keys, per_key=2)
    crashing = relays.start(kafka_bootstrap, CrashBeforeMark)
    with pytest.raises(SimulatedCrash):
        await asyncio.wait_for(relays.task(crashing), 30)
    assert await unpublished(db, keys) == len(written)

    relays.start(kafka_bootstrap)  # the restarted process
    await eventually(lambda: _none_left(db, keys), what="republished after restart")
    records = await read_topic_to_end(kafka_bootstrap, keys)
    seen = per_key_event_ids(records)
    expected = expected_per_key(written)
    # The crashed round sent the first event of each key; the restart sent it again.
    for key, event_ids in expected.items():
        assert seen[key] == [event_ids[0], *event_ids], seen

    applied = await _apply_once(db, records)
    assert applied == [event_id for _, event_id in sorted(written, key=_position(records))]
    assert sorted(applied) == sorted(event_id for _, event_id in written)


async def test_only_one_of_two_relays_on_a_database_publishes(
    db: Schema, relays: Relays, kafka_bootstrap: str
) -> None:
    first = relays.start(kafka_bootstrap)
    second = relays.start(kafka_bootstrap)

    async def one_active() -> bool:
        return first.active != second.active

    await eventually(one_active, what="one relay taking the lock")
    active, standby = (first, second) if first.active else (second, first)
    keys = [uuid.uuid4() for _ in range(3)]
    written = await commit_events(db, keys, per_key=2)
    await eventually(lambda: _none_left(db, keys), what="rows published")
    assert active.published >= len(written)
    assert standby.published == 0 and not standby.active

    # When the active relay goes away, its lock is released and the standby takes over.
    await relays.stop(active)

    async def standby_took_over() -> bool:
        return standby.active

    await eventually(standby_took_over, what="the standby taking over")
    more = [uuid.uuid4() for _ in range(2)]
    later = await commit_events(db, more, per_key=2)
    await eventually(lambda: _none_left(db, more), what="rows published by the standby")
    assert standby.published == len(later)
    records = await read_topic_to_end(kafka_bootstrap, [*keys, *more])
    assert per_key_event_ids(records) == expected_per_key([*written, *later])


async def test_the_relay_reconnects_when_its_database_session_is_killed(
    db: Schema, relays: Relays, kafka_bootstrap: str
) -> None:
    name = f"relay-{uuid.uuid4().hex[:12]}"

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(
            URL, server_settings={"search_path": db.name, "application_name": name}
        )

    relay = relays.start(kafka_bootstrap, connect=connect)
    before = [uuid.uuid4()]
    await commit_events(db, before, per_key=1)
    await eventually(lambda: _none_left(db, before), what="published before the kill")
    killed = await db.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
        name,
    )
    assert killed == 1
    after = [uuid.uuid4() for _ in range(2)]
    written = await commit_events(db, after, per_key=2)
    await eventually(lambda: _none_left(db, after), what="published after reconnecting")
    assert relay.active
    records = await read_topic_to_end(kafka_bootstrap, after)
    assert per_key_event_ids(records) == expected_per_key(written)


async def test_outbox_rows_live_and_die_with_the_callers_transaction(db: Schema) -> None:
    connection = await db.connect()
    rolled_back = OrderCreatedPayload.model_validate(order_created_data())
    committed = OrderCreatedPayload.model_validate(order_created_data())
    try:
        with pytest.raises(RuntimeError, match="inside the transaction"):
            await OutboxSender(connection, "orders").send(ORDERS_CREATED, committed)
        with pytest.raises(ZeroDivisionError):
            async with connection.transaction():
                await OutboxSender(connection, "orders").send(ORDERS_CREATED, rolled_back)
                _ = 1 / 0  # the state change fails after the event was added
        async with connection.transaction():
            await OutboxSender(connection, "orders").send(ORDERS_CREATED, committed)
        counts = await connection.fetch(
            "SELECT key, count(*) AS n FROM outbox WHERE key = ANY($1::text[]) GROUP BY key",
            [str(rolled_back.order_id), str(committed.order_id)],
        )
        assert {row["key"]: row["n"] for row in counts} == {str(committed.order_id): 1}
    finally:
        await connection.close()


# ------------------------------------------------------------------ helpers


async def _none_left(db: Schema, keys: Sequence[uuid.UUID]) -> bool:
    return await unpublished(db, keys) == 0


async def _apply_once(db: Schema, records: Sequence[ConsumerRecord[bytes, bytes]]) -> list[str]:
    """A consumer that dedupes with the inbox: returns the event ids it applied, in order."""
    connection = await db.connect()
    consumer = f"test-consumer-{uuid.uuid4()}"
    try:
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS applied (consumer text, event_id uuid, seq serial)"
        )
        for record in records:
            event = decode_record(record)
            async with connection.transaction():
                if await first_time(connection, consumer, event.headers.event_id):
                    await connection.execute(
                        "INSERT INTO applied (consumer, event_id) VALUES ($1, $2)",
                        consumer,
                        event.headers.event_id,
                    )
        rows = await connection.fetch(
            "SELECT event_id FROM applied WHERE consumer = $1 ORDER BY seq", consumer
        )
        return [str(row["event_id"]) for row in rows]
    finally:
        await connection.close()


def _position(
    records: Sequence[ConsumerRecord[bytes, bytes]],
) -> Callable[[tuple[str, str]], int]:
    """Sort key: where an event id first appears in ``records``."""
    first: dict[str, int] = {}
    for index, record in enumerate(records):
        first.setdefault(dict(record.headers)["event-id"].decode(), index)
    return lambda item: first[item[1]]
