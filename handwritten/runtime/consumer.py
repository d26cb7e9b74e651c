"""Consumer-group runner: at-least-once delivery, exactly-once effects.

For each record of the service's topics: decode it, open a database transaction,
skip it if the inbox has seen its event id, else call the handler, commit the
transaction, and only then commit the Kafka offset. A crash anywhere replays the
record; the inbox mark, committed with the effects, makes the replay a no-op.

Poison records (not a valid event of the registry) go to the dead-letter topic
(``events.deadletter``): the raw key, value and headers (base64) with the error, the
consumer group and the source topic, partition, offset and timestamp. Only once the
broker acked the dead letter is the record's offset committed, so a poison record
is never lost; while the dead-letter topic cannot be written the runner retries
with backoff without moving past it. A handler that keeps failing is retried with
backoff a few times, then the runner stops with ``HandlerFailedError`` without
committing past that record, so it is handled (not lost) once the cause is fixed.
A handler may ask for work after its transaction commits (``after_commit``, e.g. a
cache invalidation).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from typing import Any, Protocol

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Counter

from generated import catalog
from generated.events.registry import EVENTS_DEADLETTER, Event
from generated.models.events import DeadLetterHeader, EventDeadLetteredPayload
from handwritten.runtime.backoff import Backoff
from handwritten.runtime.consumer_metrics import HANDLER_DURATION, LagReporter
from handwritten.runtime.context import correlation_id
from handwritten.runtime.events import InvalidEventError
from handwritten.runtime.inbox import first_time
from handwritten.runtime.kafka import KafkaEventProducer, decode_record, event_consumer
from handwritten.runtime.logging import get_logger
from handwritten.runtime.metrics import REGISTRY
from handwritten.runtime.tracing import bound_ids
from handwritten.runtime.tracing.messaging import processing

log = get_logger(__name__)

CONSUMED_EVENTS = Counter(
    "consumer_events",
    "Consumed records by outcome: handled, duplicate, poison or failed.",
    ["group", "topic", "outcome"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "consumer_dead_letters",
    "Poison records published to the dead-letter topic (acked by the broker).",
    ["group", "topic"],
    registry=REGISTRY,
)
#: Longest error text kept in a dead letter (the payload's limit).
_MAX_ERROR = 2000

#: Applies one event inside the open transaction on ``connection``; raising rolls it
#: back. E.g. ``lambda conn, event: dispatch(OrdersHandlers(conn), event)``.
Handler = Callable[[asyncpg.Connection, Event[Any]], Awaitable[None]]


_AFTER_COMMIT: ContextVar[list[Callable[[], Awaitable[None]]] | None] = ContextVar(
    "consumer_after_commit", default=None
)


def after_commit(callback: Callable[[], Awaitable[None]]) -> None:
    """From a handler: run ``callback`` once the handler's transaction has committed
    (e.g. invalidate a cache); dropped if it rolls back. Failures are logged."""
    pending = _AFTER_COMMIT.get()
    if pending is None:
        raise RuntimeError("after_commit is for handlers run by a ConsumerRunner")
    pending.append(callback)


class DeadLetters(Protocol):
    """Where poison records go; ``publish`` returns once the dead letter is durable."""

    async def publish(self, payload: EventDeadLetteredPayload) -> None: ...

    async def close(self) -> None: ...


class KafkaDeadLetters:
    """Publishes dead letters on ``events.deadletter`` with an idempotent producer
    (``acks=all``), started on the first poison record."""

    def __init__(self, bootstrap_servers: str, *, service: str) -> None:
        self._bootstrap_servers = bootstrap_servers
        self._service = service
        self._producer: KafkaEventProducer | None = None

    async def publish(self, payload: EventDeadLetteredPayload) -> None:
        if self._producer is None:
            producer = KafkaEventProducer(self._bootstrap_servers, service=self._service)
            try:
                await producer.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            self._producer = producer
        try:
            await self._producer.send(EVENTS_DEADLETTER, payload)
        except BaseException:
            await self.close()  # a fresh producer for the next try
            raise

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()


def dead_letter_producer(group_id: str, topics: Iterable[str]) -> str | None:
    """The catalog service a runner works for, as the producer of its dead letters.

    The service whose consumer group is ``group_id``; else the one consuming exactly
    ``topics``; else the only one consuming all of them (tests and replicas may use
    other group ids). ``None`` when that does not single one out.
    """
    for name, service in catalog.SERVICES.items():
        if service.consumer_group == group_id:
            return name
    wanted = set(topics)
    exact = [n for n, s in catalog.SERVICES.items() if set(s.consumes) == wanted]
    if len(exact) == 1:
        return exact[0]
    covering = [n for n, s in catalog.SERVICES.items() if wanted <= set(s.consumes)]
    return covering[0] if len(covering) == 1 else None


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def dead_letter(
    record: ConsumerRecord[bytes, bytes], *, group_id: str, error: str
) -> EventDeadLetteredPayload:
    """The dead letter of ``record``: raw bytes (base64), the error, where it came from."""
    timestamp = None
    if record.timestamp is not None and record.timestamp >= 0:
        timestamp = dt.datetime.fromtimestamp(record.timestamp / 1000, dt.UTC)
    return EventDeadLetteredPayload(
        dead_letter_id=uuid.uuid4(),
        consumer_group=group_id,
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        source_timestamp=timestamp,
        key=_b64(record.key),
        value=_b64(record.value),
        headers=[DeadLetterHeader(name=name, value=_b64(value)) for name, value in record.headers],
        error=(error or "invalid event")[:_MAX_ERROR],
        dead_lettered_at=dt.datetime.now(dt.UTC),
    )


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
    Poison records go to ``dead_letters`` (default: ``events.deadletter`` on the
    same brokers, produced as ``service``; see ``dead_letter_producer`` for the
    default). The lag of its partitions (``consumer_lag_records``) is refreshed
    when the assignment changes and every ``lag_interval`` seconds.
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
        service: str | None = None,
        dead_letters: DeadLetters | None = None,
        lag_interval: float = 10.0,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts is at least 1")
        self._pool = pool
        self._bootstrap_servers = bootstrap_servers
        self.group_id = group_id
        self._topics = tuple(sorted(set(topics)))
        if dead_letters is None:
            producer = service or dead_letter_producer(group_id, self._topics)
            if producer is None:
                raise ValueError(
                    f"cannot tell which service consumer group {group_id!r} works for:"
                    " pass service= (the producer of its dead letters)"
                )
            dead_letters = KafkaDeadLetters(bootstrap_servers, service=producer)
        self._dead_letters = dead_letters
        self._handler = handler
        self.consumer_name = consumer_name or group_id
        self._client_id = client_id or group_id
        self._max_attempts = max_attempts
        self._backoff = backoff or Backoff(initial=0.2, maximum=5.0)
        self._poll_timeout_ms = int(poll_timeout * 1000)
        self._stopping = asyncio.Event()
        self._pending: dict[TopicPartition, int] = {}
        self._lag = LagReporter(group_id, interval=lag_interval)

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
                await self._lag.maybe_report(consumer)
        except _StoppedError:
            pass
        finally:
            # Commit what was handled (never the failed record), then leave the group.
            with contextlib.suppress(KafkaError):
                await self._commit(consumer)
            self._lag.clear()
            await consumer.stop()
            await self._dead_letters.close()

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        # A CONSUMER span, child of the producer's: the flow stays one trace.
        with processing(
            record.topic,
            record.key,
            record.headers,
            group=self.group_id,
            partition=record.partition,
            offset=record.offset,
        ):
            try:
                event = decode_record(record)
            except InvalidEventError as exc:
                CONSUMED_EVENTS.labels(self.group_id, record.topic, "poison").inc()
                await self._dead_letter(record, str(exc))
                return
            token = correlation_id.set(event.headers.correlation_id)
            try:
                with bound_ids(
                    order_id=getattr(event.payload, "order_id", None),
                    saga_id=getattr(event.payload, "saga_id", None),
                ):
                    await self._handle(record, event)
            finally:
                correlation_id.reset(token)

    async def _handle(self, record: ConsumerRecord[bytes, bytes], event: Event[Any]) -> None:
        for attempt in range(1, self._max_attempts + 1):
            callbacks: list[Callable[[], Awaitable[None]]] = []
            token = _AFTER_COMMIT.set(callbacks)
            started = time.perf_counter()
            try:
                async with self._pool.acquire() as connection, connection.transaction():
                    fresh = await first_time(connection, self.consumer_name, event.headers.event_id)
                    if fresh:
                        await self._handler(connection, event)
            except Exception as exc:
                self._observe_attempt(record, started)
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
            finally:
                _AFTER_COMMIT.reset(token)
            self._observe_attempt(record, started)
            outcome = "handled" if fresh else "duplicate"
            CONSUMED_EVENTS.labels(self.group_id, record.topic, outcome).inc()
            # One line per consumed event, as one per HTTP request or RPC.
            log.info(
                "event consumed",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                event_type=event.headers.event_type.value,
                event_id=str(event.headers.event_id),
                outcome=outcome,
                attempt=attempt,
            )
            for callback in callbacks:
                try:
                    await callback()
                except Exception as exc:
                    log.warning("after-commit callback failed", error=repr(exc))
            return

    def _observe_attempt(self, record: ConsumerRecord[bytes, bytes], started: float) -> None:
        HANDLER_DURATION.labels(self.group_id, record.topic).observe(time.perf_counter() - started)

    async def _dead_letter(self, record: ConsumerRecord[bytes, bytes], error: str) -> None:
        """Publish ``record`` to the dead-letter topic; retried until acked or stopped.

        Returns only once the broker has the dead letter, so the caller may then mark
        the offset for commit; on stop ``_StoppedError`` leaves it uncommitted (the
        record comes back, and is dead-lettered again, after a restart).
        """
        letter = dead_letter(record, group_id=self.group_id, error=error)
        context = {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "dead_letter_id": str(letter.dead_letter_id),
        }
        attempt = 0
        while True:
            try:
                await self._dead_letters.publish(letter)
            except Exception as exc:
                log.warning(
                    "dead-letter publish failed; retrying",
                    error=repr(exc),
                    attempt=attempt,
                    **context,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._backoff.delay(attempt))
                if self._stopping.is_set():
                    raise _StoppedError from exc
                attempt += 1
                continue
            DEAD_LETTERS.labels(self.group_id, record.topic).inc()
            log.error("poison record dead-lettered", reason=error, **context)
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
