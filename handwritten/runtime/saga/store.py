"""``saga_instances`` and ``saga_step_executions``: reading and writing saga records.

Every function runs on the caller's connection and inside its transaction; rows are
locked with ``FOR UPDATE`` (inputs, the second half of a remote call) or picked with
``FOR UPDATE SKIP LOCKED`` (workers), so one instance is changed by one transaction
at a time whatever the number of workers and replicas.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from generated.sagas.types import Outcome
from handwritten.runtime.db import migrate
from handwritten.runtime.saga.machine import (
    Compensation,
    Reply,
    SagaRecord,
    SagaState,
    StepRecord,
    StepStatus,
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
COMPONENT = "saga"
#: LISTEN/NOTIFY channel: an input (start, reply, cancel) made an instance due.
CHANNEL = "microcommerce_saga"

_INSTANCE_COLUMNS = (
    "saga_id, saga_type, saga_version, correlation_key, state, current_step,"
    " payload::text AS payload, outcome_status, outcome_reason, outcome_detail,"
    " cancel_status, cancel_reason, trace_correlation_id, traceparent, next_attempt_at, lease_id,"
    " lease_until, transition_failures, last_error, created_at, updated_at, finished_at"
)
_STEP_COLUMNS = (
    "step_index, step_name, status, attempts, uncertain, awaiting_until, reply::text AS reply,"
    " result::text AS result, compensation, compensation_attempts, stuck, last_error,"
    " started_at, finished_at, compensation_started_at, compensated_at"
)


async def migrate_saga(connection: asyncpg.Connection) -> list[str]:
    """Create or update the saga tables in this database."""
    return await migrate(connection, MIGRATIONS, component=COMPONENT)


@dataclass(frozen=True)
class Stored:
    """A saga record with the bookkeeping that is not the state machine's."""

    record: SagaRecord
    saga_version: int
    trace_correlation_id: str
    #: W3C traceparent of the span that started the saga (transitions continue it).
    traceparent: str | None
    lease_id: UUID | None
    lease_until: datetime | None
    transition_failures: int
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


def _outcome(status: str | None, reason: str | None) -> Outcome | None:
    return None if status is None or reason is None else Outcome(status=status, reason=reason)


def _json(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _reply(value: str | None) -> Reply | None:
    data = _json(value)
    if data is None:
        return None
    return Reply(
        kind=data["kind"], topic=data["topic"], event_id=data["eventId"], data=data["data"]
    )


def _step(row: asyncpg.Record) -> StepRecord:
    return StepRecord(
        index=row["step_index"],
        name=row["step_name"],
        status=StepStatus(row["status"]),
        attempts=row["attempts"],
        uncertain=row["uncertain"],
        awaiting_until=row["awaiting_until"],
        reply=_reply(row["reply"]),
        result=_json(row["result"]),
        compensation=None if row["compensation"] is None else Compensation(row["compensation"]),
        compensation_attempts=row["compensation_attempts"],
        stuck=row["stuck"],
        error=row["last_error"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        compensation_started_at=row["compensation_started_at"],
        compensated_at=row["compensated_at"],
    )


async def _stored(connection: asyncpg.Connection, row: asyncpg.Record | None) -> Stored | None:
    if row is None:
        return None
    steps = await connection.fetch(
        f"SELECT {_STEP_COLUMNS} FROM saga_step_executions"  # noqa: S608
        " WHERE saga_id = $1 ORDER BY step_index",
        row["saga_id"],
    )
    record = SagaRecord(
        saga_id=row["saga_id"],
        saga_type=row["saga_type"],
        correlation_key=row["correlation_key"],
        state=SagaState(row["state"]),
        current=row["current_step"],
        data=json.loads(row["payload"]),
        steps=tuple(_step(step) for step in steps),
        outcome=_outcome(row["outcome_status"], row["outcome_reason"]),
        outcome_detail=row["outcome_detail"],
        cancel=_outcome(row["cancel_status"], row["cancel_reason"]),
        next_attempt_at=row["next_attempt_at"],
    )
    return Stored(
        record=record,
        saga_version=row["saga_version"],
        trace_correlation_id=row["trace_correlation_id"],
        traceparent=row["traceparent"],
        lease_id=row["lease_id"],
        lease_until=row["lease_until"],
        transition_failures=row["transition_failures"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        finished_at=row["finished_at"],
    )


async def now(connection: asyncpg.Connection) -> datetime:
    """The database clock (one clock for every worker and replica)."""
    value: datetime = await connection.fetchval("SELECT clock_timestamp()")
    return value


async def insert(
    connection: asyncpg.Connection,
    record: SagaRecord,
    *,
    saga_version: int,
    trace_correlation_id: str,
    traceparent: str | None = None,
) -> bool:
    """Store a new instance and its steps, due now; False if the correlation key exists."""
    inserted = await connection.fetchval(
        "INSERT INTO saga_instances (saga_id, saga_type, saga_version, correlation_key, state,"
        " current_step, payload, trace_correlation_id, traceparent, next_attempt_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::text::jsonb, $8, $9, clock_timestamp())"
        " ON CONFLICT (saga_type, correlation_key) DO NOTHING RETURNING true",
        record.saga_id,
        record.saga_type,
        saga_version,
        record.correlation_key,
        record.state.value,
        record.current,
        json.dumps(record.data, separators=(",", ":")),
        trace_correlation_id,
        traceparent,
    )
    if inserted is not True:
        return False
    await connection.executemany(
        "INSERT INTO saga_step_executions (saga_id, step_index, step_name, status)"
        " VALUES ($1, $2, $3, $4)",
        [(record.saga_id, s.index, s.name, s.status.value) for s in record.steps],
    )
    return True


async def get(connection: asyncpg.Connection, saga_id: UUID, *, lock: bool) -> Stored | None:
    """The instance ``saga_id``, locked until the end of the transaction if ``lock``."""
    row = await connection.fetchrow(
        f"SELECT {_INSTANCE_COLUMNS} FROM saga_instances WHERE saga_id = $1"  # noqa: S608
        + (" FOR UPDATE" if lock else ""),
        saga_id,
    )
    return await _stored(connection, row)


async def find(
    connection: asyncpg.Connection, saga_type: str, correlation_key: str, *, lock: bool
) -> Stored | None:
    """The instance of ``saga_type`` for ``correlation_key``."""
    row = await connection.fetchrow(
        f"SELECT {_INSTANCE_COLUMNS} FROM saga_instances"  # noqa: S608
        " WHERE saga_type = $1 AND correlation_key = $2" + (" FOR UPDATE" if lock else ""),
        saga_type,
        correlation_key,
    )
    return await _stored(connection, row)


async def pick_due(connection: asyncpg.Connection, saga_type: str) -> Stored | None:
    """One due instance nobody else is working on, locked (``SKIP LOCKED``)."""
    row = await connection.fetchrow(
        f"SELECT {_INSTANCE_COLUMNS} FROM saga_instances"  # noqa: S608
        " WHERE next_attempt_at <= clock_timestamp() AND saga_type = $1"
        " ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED",
        saga_type,
    )
    return await _stored(connection, row)


def _reply_json(reply: Reply | None) -> str | None:
    if reply is None:
        return None
    return json.dumps(
        {"kind": reply.kind, "topic": reply.topic, "eventId": reply.event_id, "data": reply.data},
        separators=(",", ":"),
    )


def _result_json(result: Mapping[str, Any] | None) -> str | None:
    return None if result is None else json.dumps(result, separators=(",", ":"))


async def save(
    connection: asyncpg.Connection,
    before: SagaRecord,
    after: SagaRecord,
    *,
    lease_id: UUID | None = None,
    lease_until: datetime | None = None,
    clear_failures: bool = True,
) -> None:
    """Write ``after`` over ``before`` (the instance row and the steps that changed).

    The lease is replaced by the one given (none clears it); ``next_attempt_at``
    comes from the record.
    """
    await connection.execute(
        "UPDATE saga_instances SET state = $2::text, current_step = $3, outcome_status = $4,"
        " outcome_reason = $5, outcome_detail = $6, cancel_status = $7, cancel_reason = $8,"
        " next_attempt_at = $9, lease_id = $10, lease_until = $11,"
        " transition_failures = CASE WHEN $12::boolean THEN 0 ELSE transition_failures END,"
        " updated_at = clock_timestamp(),"
        " finished_at = CASE WHEN $2::text IN ('COMPLETED', 'COMPENSATED') THEN clock_timestamp()"
        "   ELSE NULL END"
        " WHERE saga_id = $1",
        after.saga_id,
        after.state.value,
        after.current,
        None if after.outcome is None else after.outcome.status,
        None if after.outcome is None else after.outcome.reason,
        None if after.outcome_detail is None else after.outcome_detail[:2000],
        None if after.cancel is None else after.cancel.status,
        None if after.cancel is None else after.cancel.reason,
        after.next_attempt_at,
        lease_id,
        lease_until,
        clear_failures,
    )
    changed = [step for step, old in zip(after.steps, before.steps, strict=True) if step != old]
    if changed:
        await connection.executemany(
            "UPDATE saga_step_executions SET status = $3, attempts = $4, uncertain = $5,"
            " awaiting_until = $6, reply = $7::text::jsonb, result = $8::text::jsonb,"
            " compensation = $9, compensation_attempts = $10, stuck = $11, last_error = $12,"
            " started_at = $13, finished_at = $14, compensation_started_at = $15,"
            " compensated_at = $16, updated_at = clock_timestamp()"
            " WHERE saga_id = $1 AND step_index = $2",
            [
                (
                    after.saga_id,
                    step.index,
                    step.status.value,
                    step.attempts,
                    step.uncertain,
                    step.awaiting_until,
                    _reply_json(step.reply),
                    _result_json(step.result),
                    None if step.compensation is None else step.compensation.value,
                    step.compensation_attempts,
                    step.stuck,
                    step.error,
                    step.started_at,
                    step.finished_at,
                    step.compensation_started_at,
                    step.compensated_at,
                )
                for step in changed
            ],
        )


async def record_transition_failure(
    connection: asyncpg.Connection, saga_id: UUID, error: str, retry_at: datetime
) -> int:
    """A transition could not be recorded: count it, keep the error, retry at ``retry_at``."""
    failures: int = await connection.fetchval(
        "UPDATE saga_instances SET transition_failures = transition_failures + 1,"
        " last_error = $2, next_attempt_at = $3, lease_id = NULL, lease_until = NULL,"
        " updated_at = clock_timestamp() WHERE saga_id = $1 RETURNING transition_failures",
        saga_id,
        error[:2000],
        retry_at,
    )
    return failures


async def notify(connection: asyncpg.Connection) -> None:
    """Wake the workers (delivered at commit, not at all on rollback)."""
    await connection.execute("SELECT pg_notify($1, current_schema())", CHANNEL)
