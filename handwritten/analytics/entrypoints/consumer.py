"""Kafka in: every domain event, in batches, offsets committed after ClickHouse.

Analytics has no PostgreSQL, so it does not use the runtime's ``ConsumerRunner``
(whose inbox lives there): ``AnalyticsConsumer`` reads with the runtime's
``event_consumer`` / ``decode_record`` and deduplicates inside ClickHouse (see
``service_layer.ingest``). Per poll: decode the records, apply the valid events in
one batch, dead-letter the poison ones (``events.deadletter``, acked by the broker),
and only then commit the batch's offsets. Any failure leaves the offsets where they
were: the runner stops, the supervisor restarts it after a backoff, and the batch is
read again, which the idempotent store turns into a no-op for what was written.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from opentelemetry import trace
from opentelemetry.trace import Link, Span
from prometheus_client import Counter

from generated.events.registry import Event
from handwritten.analytics.service_layer.ingest import IngestResult
from handwritten.runtime.backoff import Backoff
from handwritten.runtime.consumer import DeadLetters, dead_letter
from handwritten.runtime.consumer_metrics import LagReporter
from handwritten.runtime.context import correlation_id
from handwritten.runtime.events import InvalidEventError
from handwritten.runtime.kafka import decode_record, event_consumer
from handwritten.runtime.logging import get_logger
from handwritten.runtime.metrics import REGISTRY
from handwritten.runtime.tracing import bound_ids, record_error, span
from handwritten.runtime.tracing.messaging import start_processing

log = get_logger(__name__)

ANALYTICS_EVENTS = Counter(
    "analytics_consumed_events",
    "Records consumed by analytics, by outcome: applied, duplicate or poison.",
    ["outcome"],
    registry=REGISTRY,
)

#: Applies a batch of decoded events to the store (e.g. ``ingest`` + cache invalidation).
ApplyBatch = Callable[[Sequence[Event[Any]]], Awaitable[IngestResult]]
Record: TypeAlias = ConsumerRecord[bytes, bytes]


def decode_batch(records: Iterable[Record]) -> tuple[list[Event[Any]], list[tuple[Record, str]]]:
    """The valid events of ``records``, and the poison records with their error."""
    events: list[Event[Any]] = []
    poison: list[tuple[Record, str]] = []
    for record in records:
        try:
            events.append(decode_record(record))
        except InvalidEventError as exc:
            poison.append((record, str(exc)))
    return events, poison


def _decode(record: Record) -> Event[Any] | str:
    """The record's event, or why it is poison."""
    try:
        return decode_record(record)
    except InvalidEventError as exc:
        return str(exc)


def _log_consumed(record: Record, event: Event[Any]) -> None:
    """One line per event written, with its correlation id (and, in the record's
    span, its trace), as every other consumer logs each event it handles."""
    token = correlation_id.set(event.headers.correlation_id)
    try:
        with bound_ids(order_id=getattr(event.payload, "order_id", None)):
            log.info(
                "event consumed",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                event_type=event.headers.event_type.value,
                event_id=str(event.headers.event_id),
            )
    finally:
        correlation_id.reset(token)


class AnalyticsConsumer:
    """Consumes ``topics`` in group ``group_id`` until ``stop()``; raises on failure."""

    def __init__(
        self,
        apply: ApplyBatch,
        *,
        bootstrap_servers: str,
        group_id: str,
        topics: Iterable[str],
        dead_letters: DeadLetters,
        batch_size: int = 500,
        poll_timeout: float = 0.5,
        lag_interval: float = 10.0,
    ) -> None:
        self._apply = apply
        self._bootstrap_servers = bootstrap_servers
        self.group_id = group_id
        self._topics = tuple(sorted(set(topics)))
        self._dead_letters = dead_letters
        self._batch_size = batch_size
        self._poll_timeout_ms = int(poll_timeout * 1000)
        self._stopping = asyncio.Event()
        # consumer_lag_records of this group, as the runtime's ConsumerRunner reports it.
        self._lag = LagReporter(group_id, interval=lag_interval)

    def stop(self) -> None:
        """Finish the batch in hand (write and commit), then return from ``run``."""
        self._stopping.set()

    async def run(self) -> None:
        consumer = event_consumer(
            self._bootstrap_servers,
            group_id=self.group_id,
            topics=self._topics,
            client_id=self.group_id,
        )
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()
            raise
        try:
            while not self._stopping.is_set():
                batches = await consumer.getmany(
                    timeout_ms=self._poll_timeout_ms, max_records=self._batch_size
                )
                if batches:
                    await self._handle(batches)
                    await self._commit(consumer, batches)
                await self._lag.maybe_report(consumer)
        finally:
            self._lag.clear()
            await consumer.stop()
            await self._dead_letters.close()

    async def _handle(self, batches: dict[TopicPartition, list[Record]]) -> None:
        records = [record for records in batches.values() for record in records]
        # One CONSUMER span per record, child of its producer's (so each order's trace
        # shows analytics), open until the batch is written; the batch itself is one
        # span linked to all of them (records of many traces are written together).
        spans = [
            start_processing(
                record.topic,
                record.key,
                record.headers,
                group=self.group_id,
                partition=record.partition,
                offset=record.offset,
            )
            for record in records
        ]
        try:
            await self._ingest(records, spans)
        except BaseException as exc:
            for record_span in spans:
                record_error(exc, record_span)
            raise
        finally:
            for record_span in spans:
                record_span.end()

    async def _ingest(self, records: list[Record], spans: list[Span]) -> None:
        decoded = [_decode(record) for record in records]
        events = [item for item in decoded if not isinstance(item, str)]
        links = [Link(s.get_span_context()) for s in spans if s.get_span_context().is_valid]
        with (
            span("analytics ingest", links=links, attributes={"event.count": len(records)}),
            span("projection update", attributes={"projection.name": "analytics"}),
        ):
            result = await self._apply(events)
        ANALYTICS_EVENTS.labels("applied").inc(result.applied)
        ANALYTICS_EVENTS.labels("duplicate").inc(result.duplicates)
        for record, record_span, item in zip(records, spans, decoded, strict=True):
            with trace.use_span(record_span, end_on_exit=False):
                if isinstance(item, str):
                    await self._dead_letter(record, item)
                else:
                    _log_consumed(record, item)

    async def _dead_letter(self, record: Record, error: str) -> None:
        # Before the commit: a poison record is never skipped without a trace.
        letter = dead_letter(record, group_id=self.group_id, error=error)
        await self._dead_letters.publish(letter)
        ANALYTICS_EVENTS.labels("poison").inc()
        log.error(
            "poison record dead-lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            reason=error,
        )

    async def _commit(
        self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, list[Record]]
    ) -> None:
        offsets = {partition: records[-1].offset + 1 for partition, records in batches.items()}
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            # Typically a rebalance moved a partition away: its new owner reads the
            # batch again, and the store's idempotence absorbs it.
            log.warning("offset commit failed; records will be redelivered", error=repr(exc))


class Runner(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> None: ...


class ConsumerSupervisor:
    """Keeps a consumer going: restarts it (with backoff) when Kafka or ClickHouse
    failed, so the service heals once the cause is gone; nothing was committed past
    what was written, so nothing is skipped."""

    def __init__(self, new_runner: Callable[[], Runner], *, backoff: Backoff) -> None:
        self._new_runner = new_runner
        self._backoff = backoff
        self._stopping = asyncio.Event()
        self._runner: Runner | None = None
        #: Times the runner stopped on an error (observability and tests).
        self.failures = 0

    def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            self._runner.stop()

    async def run(self) -> None:
        while not self._stopping.is_set():
            self._runner = runner = self._new_runner()
            try:
                await runner.run()
            except Exception as exc:
                self.failures += 1
                delay = self._backoff.delay(self.failures - 1)
                log.error("consumer stopped; restarting", delay=round(delay, 2), exc_info=exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
            else:
                self.failures = 0
