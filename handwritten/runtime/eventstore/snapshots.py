"""Snapshots: the latest folded state of an aggregate, to skip replaying its history."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg


@dataclass(frozen=True)
class Snapshot:
    """An aggregate's state as of ``last_sequence_number``, in format ``snapshot_version``."""

    aggregate_id: uuid.UUID
    aggregate_type: str
    snapshot_version: int
    state: dict[str, Any]
    last_sequence_number: int


def snapshot_due(last_snapshot_sequence: int, version: int, every: int) -> bool:
    """Whether to snapshot at ``version`` when the usable snapshot is at ``last_snapshot_sequence``.

    Due once ``every`` events have accumulated since it (0 = no usable snapshot, so an
    unreadable old-format snapshot is replaced as soon as the history is long enough).
    ``every <= 0`` disables snapshots.
    """
    return every > 0 and version - last_snapshot_sequence >= every


async def load_snapshot(connection: asyncpg.Connection, aggregate_id: uuid.UUID) -> Snapshot | None:
    """The stored snapshot of ``aggregate_id`` whatever its format, or ``None``."""
    row = await connection.fetchrow(
        "SELECT aggregate_id, aggregate_type, snapshot_version, state::text AS state,"
        " last_sequence_number FROM snapshots WHERE aggregate_id = $1",
        aggregate_id,
    )
    if row is None:
        return None
    return Snapshot(
        aggregate_id=row["aggregate_id"],
        aggregate_type=row["aggregate_type"],
        snapshot_version=row["snapshot_version"],
        state=json.loads(row["state"]),
        last_sequence_number=row["last_sequence_number"],
    )


async def save_snapshot(connection: asyncpg.Connection, snapshot: Snapshot) -> None:
    """Store ``snapshot`` unless a newer one of the same format is already there.

    A snapshot in another format always replaces the stored one: only the current
    format is useful to the code that is running.
    """
    # json.dumps without a default: a state that is not plain JSON fails loudly here
    # rather than coming back different from what was folded.
    await connection.execute(
        """
        INSERT INTO snapshots AS s
            (aggregate_id, aggregate_type, snapshot_version, state, last_sequence_number)
        VALUES ($1, $2, $3, $4::text::jsonb, $5)
        ON CONFLICT (aggregate_id) DO UPDATE SET
            aggregate_type = EXCLUDED.aggregate_type,
            snapshot_version = EXCLUDED.snapshot_version,
            state = EXCLUDED.state,
            last_sequence_number = EXCLUDED.last_sequence_number,
            created_at = now()
        WHERE s.snapshot_version <> EXCLUDED.snapshot_version
           OR s.last_sequence_number < EXCLUDED.last_sequence_number
        """,
        snapshot.aggregate_id,
        snapshot.aggregate_type,
        snapshot.snapshot_version,
        json.dumps(snapshot.state, separators=(",", ":")),
        snapshot.last_sequence_number,
    )
