"""Consumer-group runner: at-least-once delivery, exactly-once effects.

For each record of the service's topics: decode it, open a database transaction,
skip it if the inbox has seen its event id, else call the handler, commit the
transaction, and only then commit the Kafka offset. A crash anywhere replays the
record; the inbox mark, committed with the effects, makes the replay a no-op.

Poison records (not a valid event of the registry) are logged at error level with
their topic, partition and offset and skipped; a dead-letter topic will take them
in a later issue. A handler that keeps failing is retried with backoff a few times,
then the runner stops with ``HandlerFailedError`` without committing past that
record, so it is handled (not lost) once the cause is fixed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Counter

from generated.events.registry import Event
from handwritten.runtime.backoff import Backoff
from handwritten.runtime.context import correlation_id
from handwritten.runtime.events import InvalidEventError
from handwritten.runtime.inbox import first_time
from handwritten.runtime.kafka import decode_record, event_consumer
from handwritten.runtime.logging import get_logger
from handwritten.runtime.metrics import REGISTRY

log = get_logger(__name__)

CONSUMED_EVENTS = Counter(
    "consumer_events",
    "Consumed records by outcome: handled, duplicate, poison or failed.",
    ["group", "topic", "outcome"],
    registry=REGISTRY,
)

#: Applies one event inside the open transaction on ``connection``; raising rolls it
#: back. E.g. ``lambda conn, event: dispatch(OrdersHandlers(conn), event)``.
Handler = Callable[[asyncpg.Connection, Event[Any]], Awaitable[None]]


class HandlerFailedError(RuntimeError):
    """A handler kept failing on one record; the runner stopped before it."""

    def __init__(self, record: ConsumerRecord[bytes, bytes], attempts: int) -> None:
        super().__init__(
            f"handler failed {attempts} times on {record.topic}[{record.partition}]"
            f"@{record.offset}; stopped without committing past it"
        )
        self.topic = record.topic
        self.partition = record.partition
        self.offset = record.offset


class _StoppedError(Exception):
    """Internal: stop was requested while a record was being retried."""


class ConsumerRunner:
    """Runs ``handler`` for every event of ``topics`` in consumer group ``group_id``.

    ``consumer_name`` names the inbox rows (default: the group id, so replicas of
    one service share dedupe marks). ``run()`` returns after ``stop()`` and raises
    ``HandlerFailedError`` when a handler fails ``max_attempts`` times in a row.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        bootstrap_servers: str,
        group_id: str,
        topics: Iterable[str],
        handler: Handler,
        consumer_name: str | None = None,
        client_id: str | None = None,
        max_attempts: int = 5,
        backoff: Backoff | None = None,
        poll_timeout: float = 0.5,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts is at least 1")
        self._pool = pool
        self._bootstrap_servers = bootstrap_servers
        self.group_id = group_id
        self._topics = tuple(sorted(set(topics)))
        self._handler = handler
        self.consumer_name = consumer_name or group_id
        self._client_id = client_id or group_id
        self._max_attempts = max_attempts
        self._backoff = backoff or Backoff(initial=0.2, maximum=5.0)
        self._poll_timeout_ms = int(poll_timeout * 1000)
        self._stopping = asyncio.Event()
        self._pending: dict[TopicPartition, int] = {}

    def stop(self) -> None:
        """Finish the record in hand, commit what is done, and return from ``run``."""
        self._stopping.set()

    async def run(self) -> None:
        """Consume until ``stop()`` (or raise ``HandlerFailedError``)."""
        consumer = event_consumer(
            self._bootstrap_servers,
            group_id=self.group_id,
            topics=self._topics,
            client_id=self._client_id,
        )
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()
            raise
        try:
            while not self._stopping.is_set():
                batches = await consumer.getmany(timeout_ms=self._poll_timeout_ms)
                for partition, records in batches.items():
                    for record in records:
                        if self._stopping.is_set():
                            break
                        await self._process(record)
                        self._pending[partition] = record.offset + 1
                await self._commit(consumer)
        except _StoppedError:
            pass
        finally:
            # Commit what was handled (never the failed record), then leave the group.
            with contextlib.suppress(KafkaError):
                await self._commit(consumer)
            await consumer.stop()

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            event = decode_record(record)
        except InvalidEventError as exc:
            CONSUMED_EVENTS.labels(self.group_id, record.topic, "poison").inc()
            log.error(
                "poison record skipped",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                reason=str(exc),
            )
            return
        token = correlation_id.set(event.headers.correlation_id)
        try:
            await self._handle(record, event)
        finally:
            correlation_id.reset(token)

    async def _handle(self, record: ConsumerRecord[bytes, bytes], event: Event[Any]) -> None:
        for attempt in range(1, self._max_attempts + 1):
            try:
                async with self._pool.acquire() as connection, connection.transaction():
                    fresh = await first_time(connection, self.consumer_name, event.headers.event_id)
                    if fresh:
                        await self._handler(connection, event)
            except Exception as exc:
                context = {
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "event_id": str(event.headers.event_id),
                    "attempt": attempt,
                }
                if attempt == self._max_attempts:
                    CONSUMED_EVENTS.labels(self.group_id, record.topic, "failed").inc()
                    log.error("handler failed; stopping the consumer", exc_info=exc, **context)
                    raise HandlerFailedError(record, attempt) from exc
                log.warning("handler failed; retrying", error=repr(exc), **context)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._backoff.delay(attempt - 1))
                if self._stopping.is_set():
                    raise _StoppedError from exc
                continue
            outcome = "handled" if fresh else "duplicate"
            CONSUMED_EVENTS.labels(self.group_id, record.topic, outcome).inc()
            return

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        if not self._pending:
            return
        offsets, self._pending = self._pending, {}
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            # Typically a rebalance moved the partition away: its new owner gets the
            # records again and the inbox turns them into no-ops.
            log.warning("offset commit failed; records will be redelivered", error=repr(exc))
