"""Kafka consumer metrics of the consumer-group runner: lag and handler latency.

- ``consumer_lag_records{group, topic, partition}``: records of a partition assigned
  to this process that the group has not committed yet (end offset minus committed
  offset). Refreshed by the runner when its assignment changes and every
  ``interval`` seconds; a partition that leaves the assignment (rebalance, stop)
  drops its series, so a stopped consumer leaves no stale lag behind.
- ``consumer_handler_duration_seconds{group, topic}``: one attempt at handling a
  record: inbox check, handler and commit of its transaction.

Outcomes (handled, duplicate, poison, failed) are ``consumer_events_total`` in
``handwritten.runtime.consumer``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Gauge, Histogram

from handwritten.runtime.logging import get_logger
from handwritten.runtime.metrics import REGISTRY

log = get_logger(__name__)

CONSUMER_LAG = Gauge(
    "consumer_lag_records",
    "Records not yet committed by the consumer group, per assigned partition.",
    ["group", "topic", "partition"],
    registry=REGISTRY,
)
HANDLER_DURATION = Histogram(
    "consumer_handler_duration_seconds",
    "Time to handle one record (inbox check, handler, transaction commit), per attempt.",
    ["group", "topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)


def partition_lag(end: int, committed: int) -> int:
    """Records between the committed offset and the end of the partition (never < 0)."""
    return max(0, end - committed)


class LagReporter:
    """Keeps ``consumer_lag_records`` of one consumer's assignment up to date."""

    def __init__(self, group_id: str, *, interval: float, timeout: float = 5.0) -> None:
        self.group_id = group_id
        self._interval = interval
        self._timeout = timeout
        self._next_report = 0.0
        self._reported: frozenset[TopicPartition] = frozenset()

    async def maybe_report(self, consumer: AIOKafkaConsumer) -> None:
        """Report if the assignment changed or ``interval`` passed; never raises a
        Kafka error (the metric waits for the next round instead)."""
        assigned = frozenset(consumer.assignment())
        now = time.monotonic()
        if assigned == self._reported and now < self._next_report:
            return
        self._next_report = now + self._interval
        try:
            # Bounded: aiokafka retries offset requests while the broker is away, and
            # the consumer loop (and its stop) must not wait on a metric.
            async with asyncio.timeout(self._timeout):
                ends = await self._end_offsets(consumer, assigned)
                committed = await self._committed_offsets(consumer, assigned)
        except (KafkaError, TimeoutError) as exc:
            log.warning("consumer lag not refreshed", group=self.group_id, error=repr(exc))
            return
        self._set(assigned, ends, committed)

    def clear(self) -> None:
        """Drop every series this reporter set (the consumer stops)."""
        self._forget(self._reported)
        self._reported = frozenset()

    async def _end_offsets(
        self, consumer: AIOKafkaConsumer, assigned: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int]:
        # The high watermark comes with every fetch response: free when known.
        ends: dict[TopicPartition, int] = {}
        unknown = []
        for tp in assigned:
            highwater = consumer.highwater(tp)
            if highwater is None:
                unknown.append(tp)
            else:
                ends[tp] = highwater
        if unknown:
            ends.update(await consumer.end_offsets(unknown))
        return ends

    async def _committed_offsets(
        self, consumer: AIOKafkaConsumer, assigned: Iterable[TopicPartition]
    ) -> dict[TopicPartition, int]:
        committed: dict[TopicPartition, int] = {}
        never = []
        for tp in assigned:
            offset = await consumer.committed(tp)
            if offset is None:
                never.append(tp)
            else:
                committed[tp] = offset
        if never:
            # Nothing committed yet: the group starts from the beginning (earliest).
            committed.update(await consumer.beginning_offsets(never))
        return committed

    def _set(
        self,
        assigned: frozenset[TopicPartition],
        ends: Mapping[TopicPartition, int],
        committed: Mapping[TopicPartition, int],
    ) -> None:
        self._forget(self._reported - assigned)
        for tp in assigned:
            if tp in ends and tp in committed:
                CONSUMER_LAG.labels(self.group_id, tp.topic, str(tp.partition)).set(
                    partition_lag(ends[tp], committed[tp])
                )
        self._reported = assigned

    def _forget(self, partitions: Iterable[TopicPartition]) -> None:
        for tp in partitions:
            # KeyError: never set (its offsets were not known yet).
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(self.group_id, tp.topic, str(tp.partition))
