"""Scratch Kafka topics for benchmarks: created for a run, deleted afterwards."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.stack import kafka_bootstrap


@contextlib.asynccontextmanager
async def scratch_topics(*prefixes: str, partitions: int = 3) -> AsyncIterator[list[str]]:
    """One fresh topic per prefix (``bench.<prefix>.<random>``), deleted on exit."""
    names = [f"bench.{prefix}.{uuid.uuid4().hex[:10]}" for prefix in prefixes]
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap(), client_id="mc-bench")
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
        )
        yield names
    finally:
        with contextlib.suppress(Exception):  # never hide the run's own error
            await admin.delete_topics(names)
        await admin.close()


async def message_count(topic: str) -> int:
    """Records in ``topic`` (sum of its partitions' end offsets; the topic is new)."""
    # Subscribing without a group assigns every partition (and loads their metadata).
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka_bootstrap(), client_id="mc-bench")
    await consumer.start()
    try:
        ends = await consumer.end_offsets(list(consumer.assignment()))
        return sum(ends.values())
    finally:
        await consumer.stop()
