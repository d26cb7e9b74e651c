"""The event store: append with optimistic concurrency, load, and read everything.

Each aggregate's events carry gapless sequence numbers 1, 2, 3…; ``append`` writes
at ``expected_version + 1…`` and the UNIQUE (aggregate_id, sequence_number)
constraint turns a concurrent writer's insert of the same slot into a
``ConcurrencyError`` (never an overwrite). Stored data is JSON; upcasters bring old
schema versions to the current one on load.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from handwritten.runtime.db import migrate
from handwritten.runtime.eventstore.aggregate import DomainEvent
from handwritten.runtime.eventstore.upcasting import Upcasters
from handwritten.runtime.tracing import span

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
COMPONENT = "eventstore"
_UNIQUE_SEQUENCE = "events_aggregate_sequence_unique"


class ConcurrencyError(RuntimeError):
    """Another writer appended to the aggregate since ``expected_version`` was read."""

    def __init__(self, aggregate_id: uuid.UUID, expected_version: int) -> None:
        super().__init__(f"aggregate {aggregate_id} is no longer at version {expected_version}")
        self.aggregate_id = aggregate_id
        self.expected_version = expected_version


@dataclass(frozen=True)
class EventMetadata:
    """Who/what/when of a stored event (the ``metadata`` column)."""

    event_id: uuid.UUID
    correlation_id: str | None
    causation_id: str | None
    traceparent: str | None
    schema_version: int
    occurred_at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": str(self.event_id),
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "traceparent": self.traceparent,
            "schema_version": self.schema_version,
            "occurred_at": self.occurred_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EventMetadata:
        return cls(
            event_id=uuid.UUID(data["event_id"]),
            correlation_id=data.get("correlation_id"),
            causation_id=data.get("causation_id"),
            traceparent=data.get("traceparent"),
            schema_version=int(data.get("schema_version", 1)),
            occurred_at=dt.datetime.fromisoformat(data["occurred_at"]),
        )


@dataclass(frozen=True)
class NewEvent:
    """An event to append: the domain fact plus its metadata."""

    event_type: str
    data: dict[str, Any]
    schema_version: int = 1
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    correlation_id: str | None = None
    causation_id: str | None = None
    traceparent: str | None = None
    occurred_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def metadata(self) -> EventMetadata:
        return EventMetadata(
            event_id=self.event_id,
            correlation_id=self.correlation_id,
            causation_id=self.causation_id,
            traceparent=self.traceparent,
            schema_version=self.schema_version,
            occurred_at=self.occurred_at,
        )


@dataclass(frozen=True)
class StoredEvent:
    """An event as read back (``data`` already upcast to ``schema_version``)."""

    id: int
    aggregate_id: uuid.UUID
    aggregate_type: str
    sequence_number: int
    event_type: str
    data: dict[str, Any]
    schema_version: int
    metadata: EventMetadata
    occurred_at: dt.datetime

    @property
    def domain(self) -> DomainEvent:
        """The pure fact, as ``apply`` functions take it."""
        return DomainEvent(self.event_type, self.data, self.schema_version)


async def migrate_event_store(connection: asyncpg.Connection) -> list[str]:
    """Create or update the ``events`` and ``snapshots`` tables in this database."""
    return await migrate(connection, MIGRATIONS, component=COMPONENT)


async def append(
    connection: asyncpg.Connection,
    aggregate_type: str,
    aggregate_id: uuid.UUID,
    expected_version: int,
    new_events: Sequence[NewEvent],
) -> list[StoredEvent]:
    """Append ``new_events`` after ``expected_version`` (0 for a new aggregate).

    Raises ``ConcurrencyError`` when the aggregate is not at ``expected_version``:
    another writer took the next slot (unique violation), or that version does not
    exist (appending after it would leave a gap). The insert is one statement, so it
    is atomic even outside a transaction; inside the caller's transaction the error
    leaves that transaction aborted, and the caller rolls it back (or a savepoint).
    """
    if expected_version < 0:
        raise ValueError("expected_version is 0 or more")
    if not new_events:
        return []
    with span(
        "eventstore append",
        attributes={
            "aggregate.type": aggregate_type,
            "aggregate.id": str(aggregate_id),
            "eventstore.expected_version": expected_version,
            "eventstore.event_count": len(new_events),
        },
    ):
        return await _append(connection, aggregate_type, aggregate_id, expected_version, new_events)


async def _append(
    connection: asyncpg.Connection,
    aggregate_type: str,
    aggregate_id: uuid.UUID,
    expected_version: int,
    new_events: Sequence[NewEvent],
) -> list[StoredEvent]:
    try:
        rows = await connection.fetch(
            """
            INSERT INTO events (aggregate_id, aggregate_type, sequence_number, event_type,
                                event_data, metadata, occurred_at)
            SELECT $1, $2, $3 + e.position, e.event_type, e.event_data::jsonb,
                   e.metadata::jsonb, e.occurred_at
            FROM unnest($4::text[], $5::text[], $6::text[], $7::timestamptz[])
                 WITH ORDINALITY AS e(event_type, event_data, metadata, occurred_at, position)
            -- Writing after a version that does not exist would leave a gap.
            WHERE $3 = 0 OR EXISTS (
                SELECT 1 FROM events WHERE aggregate_id = $1 AND sequence_number = $3
            )
            ORDER BY e.position
            RETURNING id, sequence_number
            """,
            aggregate_id,
            aggregate_type,
            expected_version,
            [event.event_type for event in new_events],
            [_json(event.data) for event in new_events],
            [_json(event.metadata.to_json()) for event in new_events],
            [event.occurred_at for event in new_events],
        )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name != _UNIQUE_SEQUENCE:
            raise
        raise ConcurrencyError(aggregate_id, expected_version) from exc
    if not rows:
        raise ConcurrencyError(aggregate_id, expected_version)
    ids = {row["sequence_number"]: row["id"] for row in rows}
    return [
        StoredEvent(
            id=ids[expected_version + position],
            aggregate_id=aggregate_id,
            aggregate_type=aggregate_type,
            sequence_number=expected_version + position,
            event_type=event.event_type,
            data=json.loads(_json(event.data)),
            schema_version=event.schema_version,
            metadata=event.metadata,
            occurred_at=event.occurred_at,
        )
        for position, event in enumerate(new_events, start=1)
    ]


async def load(
    connection: asyncpg.Connection,
    aggregate_id: uuid.UUID,
    after_sequence: int = 0,
    *,
    upcasters: Upcasters | None = None,
) -> list[StoredEvent]:
    """The events of ``aggregate_id`` after ``after_sequence``, in sequence order."""
    with span(
        "eventstore load",
        attributes={"aggregate.id": str(aggregate_id), "eventstore.after": after_sequence},
    ) as current:
        rows = await connection.fetch(
            "SELECT id, aggregate_id, aggregate_type, sequence_number, event_type,"
            " event_data::text AS event_data, metadata::text AS metadata, occurred_at"
            " FROM events"
            " WHERE aggregate_id = $1 AND sequence_number > $2 ORDER BY sequence_number",
            aggregate_id,
            after_sequence,
        )
        current.set_attribute("eventstore.event_count", len(rows))
        return [_stored(row, upcasters) for row in rows]


async def current_version(connection: asyncpg.Connection, aggregate_id: uuid.UUID) -> int:
    """The last sequence number of ``aggregate_id`` (0 when it has no events)."""
    version: int = await connection.fetchval(
        "SELECT coalesce(max(sequence_number), 0) FROM events WHERE aggregate_id = $1",
        aggregate_id,
    )
    return version


async def all_events(
    connection: asyncpg.Connection,
    after_id: int = 0,
    limit: int = 500,
    *,
    upcasters: Upcasters | None = None,
) -> list[StoredEvent]:
    """Up to ``limit`` events of every aggregate with ``id > after_id``, in id order.

    Meant for rebuilding projections page by page (pass the last id seen). Ids come
    from a sequence and are allocated before commit, so while writers are active a
    lower id can become visible after a higher one: a live tailer must not treat the
    last id seen as a watermark (rebuild with writers stopped, or re-read a margin).
    """
    rows = await connection.fetch(
        "SELECT id, aggregate_id, aggregate_type, sequence_number, event_type,"
        " event_data::text AS event_data, metadata::text AS metadata, occurred_at"
        " FROM events WHERE id > $1 ORDER BY id LIMIT $2",
        after_id,
        limit,
    )
    return [_stored(row, upcasters) for row in rows]


def _json(value: dict[str, Any]) -> str:
    # Sent as text and cast in SQL, so a jsonb codec set on the caller's pool cannot
    # double-encode it; no default=: data that is not plain JSON fails before the write.
    return json.dumps(value, separators=(",", ":"))


def _stored(row: asyncpg.Record, upcasters: Upcasters | None) -> StoredEvent:
    metadata = EventMetadata.from_json(json.loads(row["metadata"]))
    data: dict[str, Any] = json.loads(row["event_data"])
    version = metadata.schema_version
    if upcasters is not None:
        version, data = upcasters.upcast(row["event_type"], version, data)
    return StoredEvent(
        id=row["id"],
        aggregate_id=row["aggregate_id"],
        aggregate_type=row["aggregate_type"],
        sequence_number=row["sequence_number"],
        event_type=row["event_type"],
        data=data,
        schema_version=version,
        metadata=metadata,
        occurred_at=row["occurred_at"],
    )
