"""The outbox side of the generated ``EventSender`` protocol: rows, not Kafka."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import BaseModel

from generated.events.registry import EventSpec
from handwritten.runtime.context import current_correlation_id
from handwritten.runtime.db import migrate
from handwritten.runtime.events import EventRecord, encode, new_headers
from handwritten.runtime.tracing.propagation import (
    TRACEPARENT,
    TRACESTATE,
    current_trace_headers,
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
COMPONENT = "outbox"
#: The LISTEN/NOTIFY channel of the outbox trigger (payload: the table's schema).
CHANNEL = "microcommerce_outbox"


async def migrate_outbox(connection: asyncpg.Connection) -> list[str]:
    """Create or update the ``outbox`` table in this database."""
    return await migrate(connection, MIGRATIONS, component=COMPONENT)


class OutboxSender:
    """Writes events to the outbox inside the caller's open transaction.

    Implements the generated ``EventSender`` protocol, so a service's typed
    ``<Service>EventPublisher`` can be built over it: the events then commit or roll
    back together with the state change, and the ``OutboxRelay`` publishes them.
    Headers come from the current context (correlation id); ``traceparent`` /
    ``tracestate`` are the W3C trace context of the span active when the event is
    recorded (or the ``traceparent`` given), so the relay publishes it, later and
    from another task, as part of the trace of the work that recorded it.
    """

    def __init__(
        self, connection: asyncpg.Connection, service: str, *, traceparent: str | None = None
    ) -> None:
        self._connection = connection
        self._service = service
        self._traceparent = traceparent

    async def send(
        self, spec: EventSpec[Any], payload: Any, *, causation_id: str | None = None
    ) -> None:
        """Add one event to the outbox (``EventSender`` protocol)."""
        await self.add(spec, payload, causation_id=causation_id)

    async def add(
        self, spec: EventSpec[Any], payload: BaseModel, *, causation_id: str | None = None
    ) -> uuid.UUID:
        """Add one event to the outbox and return its event id."""
        trace_headers = current_trace_headers()
        headers = new_headers(
            spec,
            producer=self._service,
            correlation_id=current_correlation_id(),
            causation_id=causation_id,
            traceparent=self._traceparent or trace_headers.get(TRACEPARENT),
            tracestate=None if self._traceparent else trace_headers.get(TRACESTATE),
        )
        await insert_record(self._connection, headers.event_id, encode(spec, payload, headers))
        return headers.event_id


async def insert_record(
    connection: asyncpg.Connection, event_id: uuid.UUID, record: EventRecord
) -> None:
    """Insert an encoded record; refused outside a transaction.

    Outside a transaction the row would commit on its own, and the point of the
    outbox (the event exists if and only if the state change does) would be lost.
    """
    if not connection.is_in_transaction():
        raise RuntimeError("the outbox is written inside the transaction of the state change")
    await connection.execute(
        "INSERT INTO outbox (event_id, topic, key, value, headers)"
        " VALUES ($1, $2, $3, $4, $5::text::jsonb)",
        event_id,
        record.topic,
        record.key.decode(),
        record.value,
        json.dumps({name: value.decode() for name, value in record.headers}),
    )
