"""``rebuild``: empty the analytics tables and replay every topic from its beginning.

The replay reads without a consumer group (partitions assigned by hand, from the
earliest offset up to the end offsets seen once the tables are empty) and applies
the events exactly like the live consumer, so it ends with the numbers the live
consumer would have reached. The service's own consumer group is left alone: what
it consumes afterwards was either replayed too (a no-op the second time) or is newer
than the replay. The end offsets are taken after the reset, so an event a running
consumer applied just before the reset is replayed rather than lost.

Poison records are skipped and counted: dead-lettering them is the live
consumer's job, which it does (once) for its own group.

The replay is only as complete as the topics: records deleted by retention are gone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from handwritten.analytics.entrypoints.consumer import decode_batch
from handwritten.analytics.service_layer.ingest import ingest
from handwritten.analytics.service_layer.ports import AnalyticsStore
from handwritten.runtime.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class RebuildResult:
    records: int
    applied: int
    duplicates: int
    poison: int


async def _partitions(bootstrap_servers: str, topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of ``topics``, as the brokers have them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="analytics-rebuild")
    await admin.start()
    try:
        described = await admin.describe_topics(sorted(set(topics)))
    finally:
        await admin.close()
    found: list[TopicPartition] = []
    for topic in described:
        if topic["error_code"] != 0 or not topic["partitions"]:
            raise RuntimeError(
                f"cannot read topic {topic['topic']!r} (error {topic['error_code']})"
            )
        found.extend(
            TopicPartition(topic["topic"], partition["partition"])
            for partition in sorted(topic["partitions"], key=lambda p: p["partition"])
        )
    return found


async def rebuild(
    store: AnalyticsStore,
    *,
    bootstrap_servers: str,
    topics: Iterable[str],
    batch_size: int = 500,
    poll_timeout: float = 0.5,
) -> RebuildResult:
    """Reset ``store`` and apply every record of ``topics`` from the beginning."""
    partitions = await _partitions(bootstrap_servers, topics)
    await store.reset()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        client_id="analytics-rebuild",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    records = applied = duplicates = poison = 0
    try:
        consumer.assign(partitions)
        end = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        remaining = set(partitions)
        while True:
            remaining = {tp for tp in remaining if await consumer.position(tp) < end[tp]}
            if not remaining:
                break
            batches = await consumer.getmany(
                *remaining, timeout_ms=int(poll_timeout * 1000), max_records=batch_size
            )
            batch = [record for chunk in batches.values() for record in chunk]
            events, bad = decode_batch(batch)
            result = await ingest(store, events)
            records += len(batch)
            applied += result.applied
            duplicates += result.duplicates
            poison += len(bad)
            for record, error in bad:
                log.warning(
                    "poison record skipped by the rebuild",
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    reason=error,
                )
    finally:
        await consumer.stop()
    log.info(
        "analytics rebuilt",
        records=records,
        applied=applied,
        duplicates=duplicates,
        poison=poison,
    )
    return RebuildResult(records, applied, duplicates, poison)
