"""Inbox: deduplication of consumed events by event id, in the handler's transaction.

Kafka delivers at least once and the outbox relay may publish an event twice, so
every consumer asks ``first_time`` inside the transaction that applies the event's
effects: the mark and the effects commit together, and a redelivery (even one
handled concurrently by another replica, which waits on the row lock) sees the mark
and skips.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import asyncpg

from handwritten.runtime.db import migrate

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
COMPONENT = "inbox"

__all__ = ["COMPONENT", "MIGRATIONS", "first_time", "migrate_inbox", "purge_processed"]


async def migrate_inbox(connection: asyncpg.Connection) -> list[str]:
    """Create or update the ``processed_events`` table in this database."""
    return await migrate(connection, MIGRATIONS, component=COMPONENT)


async def first_time(connection: asyncpg.Connection, consumer: str, event_id: uuid.UUID) -> bool:
    """Mark ``event_id`` as handled by ``consumer``; ``False`` if it already was.

    Must run inside the handler's transaction (refused otherwise): on its own the
    mark would commit even when the effects fail, and the event would be lost.
    """
    if not connection.is_in_transaction():
        raise RuntimeError("first_time runs inside the transaction that applies the event")
    inserted = await connection.fetchval(
        "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2)"
        " ON CONFLICT DO NOTHING RETURNING true",
        consumer,
        event_id,
    )
    return inserted is True


async def purge_processed(connection: asyncpg.Connection, older_than: dt.timedelta) -> int:
    """Delete marks older than ``older_than``; returns how many.

    Only safe beyond the longest possible redelivery (topic retention plus relay
    backlog): a duplicate arriving after its mark is gone would be applied again.
    """
    status: str = await connection.execute(
        "DELETE FROM processed_events WHERE processed_at < now() - $1::interval", older_than
    )
    return int(status.split()[-1])
