"""Outbox relay throughput vs a raw aiokafka producer, same broker, same messages.

N committed outbox rows (real ``orders.created`` records: ~600 bytes of JSON and the
eight event headers, N/2 keys with two events each) in a scratch schema are drained
by an ``OutboxRelay`` with the services' settings (batches of 200, first row per key
per round, marked published after the broker's ack) to a scratch topic. The same N
records go through a raw ``AIOKafkaProducer`` with the same producer settings
(idempotent, acks=all, linger 5 ms), all sent at once, to another scratch topic.
Both clocks include starting the producer; both topics are then checked to hold N
records.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from bench.context import Context, wait_until
from bench.kafka import message_count, scratch_topics
from bench.postgres import ScratchDatabase, scratch_database
from bench.results import SuiteResult, Table, per_second, times
from bench.stack import kafka_bootstrap
from bench.stats import rate, ratio
from generated.events.registry import ORDERS_CREATED
from handwritten.runtime.events import EventRecord, new_headers
from handwritten.runtime.outbox import OutboxRelay, insert_record, migrate_outbox

TITLE = "Outbox relay vs a raw aiokafka producer"
SCHEMA = "outbox_bench"


def records(topic: str, count: int) -> list[tuple[uuid.UUID, EventRecord]]:
    """``count`` orders.created records for ``topic``, two per key, keys interleaved."""
    keys = [uuid.uuid4() for _ in range(max(1, count // 2))]
    result = []
    for number in range(count):
        key = keys[number % len(keys)]
        headers = new_headers(ORDERS_CREATED, producer="orders", correlation_id=str(uuid.uuid4()))
        value = {
            "orderId": str(key),
            "userId": "0a741169-97b0-45de-b32e-2d3f81439efd",
            "items": [
                {
                    "productId": "22d30145-21fa-4d36-aadb-9a581aa3780a",
                    "productName": "Mechanical keyboard",
                    "quantity": 1 + number % 3,
                    "unitPrice": "349.90",
                }
            ],
            "totalAmount": "699.80",
            "currency": "BRL",
            "shippingAddress": {
                "street": "Av. Paulista, 1000",
                "city": "São Paulo",
                "state": "SP",
                "zipCode": "01310-100",
            },
            "createdAt": "2026-11-28T12:00:00Z",
        }
        wire = headers.model_dump(mode="json", by_alias=True, exclude_none=True)
        record = EventRecord(
            topic=topic,
            key=str(key).encode(),
            value=json.dumps(value, separators=(",", ":")).encode(),
            headers=tuple((name, str(v).encode()) for name, v in sorted(wire.items())),
        )
        result.append((headers.event_id, record))
    return result


async def fill_outbox(
    connection: asyncpg.Connection, rows: list[tuple[uuid.UUID, EventRecord]]
) -> None:
    for start in range(0, len(rows), 500):
        async with connection.transaction():
            for event_id, record in rows[start : start + 500]:
                await insert_record(connection, event_id, record)


async def relay_drain(database: ScratchDatabase, count: int) -> dict[str, Any]:
    """Start a relay on the filled outbox; time until every row is published."""
    watcher = await database.connect(schema=SCHEMA)
    relay = OutboxRelay(
        lambda: database.connect(schema=SCHEMA),
        bootstrap_servers=kafka_bootstrap(),
        service="bench",
        poll_interval=0.2,
    )
    started = time.perf_counter()
    task = asyncio.create_task(relay.run())

    async def drained() -> bool:
        left: int = await watcher.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        return left == 0

    try:
        done = await wait_until(drained, seconds=300, interval=0.05)
        elapsed = time.perf_counter() - started
    finally:
        relay.stop()
        await asyncio.wait_for(task, 30)
        await watcher.close()
    if not done:
        raise RuntimeError("the relay did not drain the outbox within 300 s")
    return {
        "messages": count,
        "seconds": round(elapsed, 3),
        "messages_per_second": rate(count, elapsed),
    }


async def raw_produce(rows: list[tuple[uuid.UUID, EventRecord]]) -> dict[str, Any]:
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap(),
        client_id="bench-raw-producer",
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
    )
    started = time.perf_counter()
    await producer.start()
    try:
        acks = [
            await producer.send(
                record.topic, value=record.value, key=record.key, headers=list(record.headers)
            )
            for _, record in rows
        ]
        await asyncio.gather(*acks)
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    return {
        "messages": len(rows),
        "seconds": round(elapsed, 3),
        "messages_per_second": rate(len(rows), elapsed),
    }


async def run(ctx: Context) -> SuiteResult:
    count = ctx.count(10_000, 2_000)
    async with (
        scratch_topics("outbox", "raw") as (relay_topic, raw_topic),
        scratch_database() as database,
    ):
        connection = await database.connect()
        await connection.execute(f"CREATE SCHEMA {SCHEMA}")
        await connection.close()
        connection = await database.connect(schema=SCHEMA)
        try:
            await migrate_outbox(connection)
            ctx.log(f"outbox: committing {count} rows")
            await fill_outbox(connection, records(relay_topic, count))
        finally:
            await connection.close()
        ctx.log("outbox: relay draining")
        relay = await relay_drain(database, count)
        ctx.log("outbox: raw producer")
        raw = await raw_produce(records(raw_topic, count))
        landed = {"relay": await message_count(relay_topic), "raw": await message_count(raw_topic)}
    if landed != {"relay": count, "raw": count}:
        raise RuntimeError(f"expected {count} records on each topic, found {landed}")
    share = ratio(relay["messages_per_second"], raw["messages_per_second"])
    return SuiteResult(
        suite="outbox",
        title=TITLE,
        parameters={
            "messages": count,
            "keys": count // 2,
            "relay_batch_size": 200,
            "producer": "idempotent, acks=all, linger_ms=5",
            "partitions": 3,
            "quick": ctx.quick,
        },
        results={"relay": relay, "raw_producer": raw, "records_on_topics": landed},
        tables=[
            Table(
                f"{count:,} messages of ~600 bytes to a 3-partition topic",
                ["path", "messages/s", "seconds", "relay ÷ raw"],
                [
                    [
                        "outbox relay (PostgreSQL → Kafka, marked)",
                        per_second(relay["messages_per_second"]),
                        f"{relay['seconds']}",
                        times(share),
                    ],
                    [
                        "raw aiokafka producer",
                        per_second(raw["messages_per_second"]),
                        f"{raw['seconds']}",
                        "",
                    ],
                ],
            )
        ],
        notes=[
            "The relay's price for no lost events and per-key order: one SELECT and one"
            " UPDATE per round, at most one row per key per round, and waiting for each"
            " round's acks before the next.",
        ],
    )
