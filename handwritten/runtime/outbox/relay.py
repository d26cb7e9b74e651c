"""The outbox relay: publishes committed outbox rows to Kafka, then marks them.

Guarantees and how they are kept:

- **No lost events.** A row is marked published only after the broker acked it
  (idempotent producer, ``acks=all``). While Kafka is down the rows stay and the
  relay retries with capped backoff; the backlog drains when the broker returns.
- **At least once, not exactly once.** A crash (or a lost connection) between the
  ack and the mark publishes those rows again on restart: consumers deduplicate
  on the ``event-id`` header (see ``handwritten.runtime.inbox``).
- **Per-key order.** Rows are taken in id (commit-ish) order, and a round sends at
  most the *first* unpublished row of each message key; the next row of that key
  goes out only in a later round, after this one was acked and marked. So a retry
  can never put an older event of an aggregate after a newer one.
- **One active relay per outbox table.** Replicas compete for a PostgreSQL
  session advisory lock keyed by the schema; the holder publishes, the others wait
  on standby, and the lock is freed when the holder's session ends (crash
  included), so a standby takes over.
- **Low latency.** An insert trigger NOTIFYs at commit; the relay LISTENs and
  also polls every ``poll_interval`` in case a notification is missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Gauge

from handwritten.runtime.backoff import Backoff
from handwritten.runtime.events import EventRecord
from handwritten.runtime.kafka import KafkaEventProducer
from handwritten.runtime.logging import get_logger
from handwritten.runtime.metrics import REGISTRY
from handwritten.runtime.outbox.sender import CHANNEL

log = get_logger(__name__)

OUTBOX_BACKLOG = Gauge(
    "outbox_backlog_events",
    "Outbox rows not yet published (reported by the active relay).",
    ["service"],
    registry=REGISTRY,
)
OUTBOX_OLDEST_AGE = Gauge(
    "outbox_oldest_unpublished_age_seconds",
    "Age of the oldest unpublished outbox row, 0 when none (reported by the active relay).",
    ["service"],
    registry=REGISTRY,
)
OUTBOX_PUBLISHED = Counter(
    "outbox_published_events",
    "Outbox rows published to Kafka and acked by the broker.",
    ["service"],
    registry=REGISTRY,
)
OUTBOX_RELAY_ACTIVE = Gauge(
    "outbox_relay_active",
    "1 while this process holds the relay lock and publishes, else 0.",
    ["service"],
    registry=REGISTRY,
)

#: Errors that mean "the database connection is gone or unusable": reconnect.
_DATABASE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)

Connect = Callable[[], Awaitable[asyncpg.Connection]]


@dataclass(frozen=True)
class OutboxRow:
    """One unpublished outbox row, ready to send."""

    id: int
    record: EventRecord


def first_per_key(rows: Sequence[OutboxRow]) -> list[OutboxRow]:
    """The earliest row of each message key, in id order (one round's batch)."""
    seen: set[bytes] = set()
    batch: list[OutboxRow] = []
    for row in rows:
        if row.record.key not in seen:
            seen.add(row.record.key)
            batch.append(row)
    return batch


class OutboxRelay:
    """Publishes one database's outbox to Kafka (see the module docstring).

    ``connect`` opens a dedicated connection to the service database (with the
    ``search_path`` of the outbox table); the relay holds it for the advisory lock
    and LISTEN, and reconnects with backoff if it breaks. Run it as a background
    task next to the service: ``task = asyncio.create_task(relay.run())`` and on
    shutdown ``relay.stop()`` then ``await task``.
    """

    def __init__(
        self,
        connect: Connect,
        *,
        bootstrap_servers: str,
        service: str,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        lock_retry_interval: float = 2.0,
        backoff: Backoff | None = None,
        retention: dt.timedelta | None = dt.timedelta(days=7),
        purge_interval: float = 3600.0,
    ) -> None:
        self._connect = connect
        self._bootstrap_servers = bootstrap_servers
        self.service = service
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._lock_retry_interval = lock_retry_interval
        self._backoff = backoff or Backoff(initial=0.1, maximum=5.0)
        self._retention = retention
        self._purge_interval = purge_interval
        self._producer: KafkaEventProducer | None = None
        self._stopping = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._active = False
        self._database_failures = 0
        #: Rows this instance published (acked and marked).
        self.published = 0
        #: Failed attempts to reach or publish to Kafka since this instance started.
        self.kafka_failures = 0

    @property
    def active(self) -> bool:
        """Whether this instance currently holds the relay lock."""
        return self._active

    def stop(self) -> None:
        """Ask ``run`` to return after the round in flight (cancel the task to abort it)."""
        self._stopping.set()
        self._wakeup.set()

    async def run(self) -> None:
        """Relay until ``stop()``; survives database and Kafka outages.

        Any other exception (a bug) propagates: the relay stops loudly rather than
        skipping rows.
        """
        # A standby reports 0 from the start (not only after losing the lock), so the
        # active count over the replicas of a service is the sum of their gauges.
        self._set_active(False)
        while not self._stopping.is_set():
            try:
                connection = await self._connect()
            except _DATABASE_ERRORS as exc:
                log.warning("outbox relay cannot reach the database", error=repr(exc))
                await self._database_backoff()
                continue
            try:
                await self._serve(connection)
            except _DATABASE_ERRORS as exc:
                log.warning("outbox relay lost the database", error=repr(exc))
                await self._database_backoff()
            finally:
                self._set_active(False)
                await self._close_producer()
                # Closing the session also releases the advisory lock.
                with contextlib.suppress(Exception):
                    await connection.close(timeout=5)

    async def mark_published(self, connection: asyncpg.Connection, ids: Sequence[int]) -> None:
        """Record that rows ``ids`` were acked by the broker."""
        await connection.execute(
            "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])", list(ids)
        )

    # ---------------------------------------------------------------- internals

    async def _serve(self, connection: asyncpg.Connection) -> None:
        schema: str = await connection.fetchval("SELECT current_schema()")
        lock_key: int = await connection.fetchval(
            "SELECT hashtextextended($1, 0)", f"microcommerce.outbox-relay:{schema}"
        )
        while not await connection.fetchval("SELECT pg_try_advisory_lock($1)", lock_key):
            if self._stopping.is_set():
                return
            await self._pause(self._lock_retry_interval)
        if self._stopping.is_set():
            return
        self._set_active(True)
        self._database_failures = 0
        log.info("outbox relay active", schema=schema)

        def notified(_: Any, __: int, ___: str, payload: str) -> None:
            if payload == schema:
                self._wakeup.set()

        await connection.add_listener(CHANNEL, notified)
        kafka_failures = 0
        next_purge = time.monotonic()
        while not self._stopping.is_set():
            # Cleared before reading, so a commit during the round wakes the next wait.
            self._wakeup.clear()
            try:
                more = await self._round(connection)
                kafka_failures = 0
            except (KafkaError, TimeoutError) as exc:
                self.kafka_failures += 1
                log.warning("outbox relay cannot publish; rows are kept", error=repr(exc))
                await self._close_producer()
                await self._pause(self._backoff.delay(kafka_failures))
                kafka_failures += 1
                continue
            if self._retention is not None and time.monotonic() >= next_purge:
                await connection.execute(
                    "DELETE FROM outbox WHERE published_at < now() - $1::interval",
                    self._retention,
                )
                next_purge = time.monotonic() + self._purge_interval
            if not more:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._poll_interval)

    async def _round(self, connection: asyncpg.Connection) -> bool:
        """Publish one batch; whether more rows may be waiting."""
        rows = [
            OutboxRow(
                id=row["id"],
                record=EventRecord(
                    topic=row["topic"],
                    key=row["key"].encode(),
                    value=row["value"],
                    headers=tuple(
                        (name, value.encode())
                        for name, value in sorted(json.loads(row["headers"]).items())
                    ),
                ),
            )
            for row in await connection.fetch(
                "SELECT id, topic, key, value, headers::text AS headers FROM outbox"
                " WHERE published_at IS NULL ORDER BY id LIMIT $1",
                self._batch_size,
            )
        ]
        try:
            if not rows:
                return False
            batch = first_per_key(rows)
            producer = await self._ready_producer()
            # Distinct keys only, so sending them concurrently cannot reorder a key.
            results = await asyncio.gather(
                *(producer.send_record(row.record) for row in batch), return_exceptions=True
            )
            acked = [row.id for row, result in zip(batch, results, strict=True) if result is None]
            if acked:
                await self.mark_published(connection, acked)
                self.published += len(acked)
                OUTBOX_PUBLISHED.labels(self.service).inc(len(acked))
            for result in results:
                if isinstance(result, BaseException):
                    # Kafka errors are retried by the caller; anything else is a bug.
                    raise result
            return len(batch) < len(rows) or len(rows) == self._batch_size
        finally:
            await self._report_backlog(connection)

    async def _ready_producer(self) -> KafkaEventProducer:
        if self._producer is None:
            producer = KafkaEventProducer(self._bootstrap_servers, service=self.service)
            try:
                await producer.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def _report_backlog(self, connection: asyncpg.Connection) -> None:
        with contextlib.suppress(*_DATABASE_ERRORS):
            row = await connection.fetchrow(
                "SELECT count(*) AS backlog,"
                " coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS age"
                " FROM outbox WHERE published_at IS NULL"
            )
            OUTBOX_BACKLOG.labels(self.service).set(row["backlog"])
            OUTBOX_OLDEST_AGE.labels(self.service).set(max(0.0, row["age"]))

    def _set_active(self, active: bool) -> None:
        self._active = active
        OUTBOX_RELAY_ACTIVE.labels(self.service).set(1 if active else 0)

    async def _database_backoff(self) -> None:
        await self._pause(self._backoff.delay(self._database_failures))
        self._database_failures += 1

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds`` unless asked to stop (backoff is not shortened by NOTIFY)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
