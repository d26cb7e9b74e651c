"""Runtime metrics read from real infrastructure: database pool usage (PostgreSQL) and
consumer lag (Kafka)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from handwritten.runtime.consumer_metrics import LagReporter, partition_lag
from handwritten.runtime.db import create_pool
from handwritten.runtime.db_metrics import register_pool
from handwritten.runtime.metrics import REGISTRY
from tests.integration.eventstore.database import URL

DEADLINE = 30.0


async def eventually(condition: Callable[[], Awaitable[bool]], *, what: str) -> None:
    until = time.monotonic() + DEADLINE
    while not await condition():
        if time.monotonic() > until:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.05)


# ------------------------------------------------------------------ database pool


def pool_gauge(service: str, state: str) -> float | None:
    return REGISTRY.get_sample_value("db_pool_connections", {"service": service, "state": state})


async def test_pool_usage_is_exported_until_the_pool_closes() -> None:
    service = f"pool-{uuid.uuid4().hex[:8]}"
    pool = await create_pool(URL, min_size=2, max_size=3)
    register_pool(pool, service=service)
    try:
        assert pool_gauge(service, "idle") == 2
        assert pool_gauge(service, "in_use") == 0
        assert REGISTRY.get_sample_value("db_pool_max_connections", {"service": service}) == 3
        async with pool.acquire() as first, pool.acquire() as second:
            assert await first.fetchval("SELECT 1") == await second.fetchval("SELECT 1")
            assert pool_gauge(service, "in_use") == 2
            assert pool_gauge(service, "idle") == 0
        assert pool_gauge(service, "in_use") == 0
    finally:
        await pool.close()
    assert pool_gauge(service, "idle") is None
    assert pool_gauge(service, "in_use") is None


# ------------------------------------------------------------------ consumer lag


@pytest.fixture
async def topic(kafka_bootstrap: str) -> AsyncIterator[str]:
    """A one-partition topic of this test's own, deleted afterwards."""
    name = f"test.lag.{uuid.uuid4().hex[:10]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])
        yield name
        await admin.delete_topics([name])
    finally:
        await admin.close()


def lag(group: str, topic: str) -> float | None:
    labels = {"group": group, "topic": topic, "partition": "0"}
    return REGISTRY.get_sample_value("consumer_lag_records", labels)


async def test_lag_is_end_minus_committed_and_leaves_with_the_partition(
    kafka_bootstrap: str, topic: str
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for value in range(5):
            await producer.send_and_wait(topic, str(value).encode(), partition=0)
    finally:
        await producer.stop()

    group = f"test-lag-{uuid.uuid4().hex[:8]}"
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    reporter = LagReporter(group, interval=0)  # every call reports
    try:

        async def assigned() -> bool:
            await consumer.getmany(timeout_ms=100, max_records=1)
            return bool(consumer.assignment())

        await eventually(assigned, what="the partition to be assigned")
        await reporter.maybe_report(consumer)
        assert lag(group, topic) == 5  # nothing committed: the group starts from 0

        await consumer.commit({TopicPartition(topic, 0): 2})
        await reporter.maybe_report(consumer)
        assert lag(group, topic) == 3

        reporter.clear()
        assert lag(group, topic) is None
    finally:
        await consumer.stop()


def test_partition_lag_never_goes_negative() -> None:
    assert partition_lag(10, 4) == 6
    assert partition_lag(10, 10) == 0
    # A committed offset past a (stale) end offset is no negative lag.
    assert partition_lag(10, 12) == 0
