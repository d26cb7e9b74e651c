"""A unit of work for event-sourced aggregates: load, decide, append + outbox, retry.

``AggregateRepository.execute`` loads an aggregate (latest usable snapshot + tail),
runs a pure command function on its state, and in ONE transaction appends the new
events, writes their outbox rows and, when due, a snapshot. When another writer got
there first (``ConcurrencyError``) the whole command is retried from fresh state,
a bounded number of times.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import asyncpg
from pydantic import BaseModel

from generated.events.registry import EventSpec
from handwritten.runtime.backoff import Backoff
from handwritten.runtime.context import current_correlation_id
from handwritten.runtime.eventstore.aggregate import (
    AggregateSpec,
    DomainEvent,
    Loaded,
    normalized,
    rebuild,
    take_snapshot,
    usable_snapshot,
)
from handwritten.runtime.eventstore.snapshots import load_snapshot, save_snapshot, snapshot_due
from handwritten.runtime.eventstore.store import (
    ConcurrencyError,
    NewEvent,
    StoredEvent,
    append,
    load,
)
from handwritten.runtime.logging import get_logger
from handwritten.runtime.outbox.sender import OutboxSender
from handwritten.runtime.tracing import current_traceparent, span

log = get_logger(__name__)

S = TypeVar("S")

#: Decides on a state: the new events, or raises a domain error (no I/O).
Command = Callable[[S], Sequence[DomainEvent]]


@dataclass(frozen=True)
class OutboxMessage:
    """An integration event to publish: which topic, and its typed payload."""

    spec: EventSpec[Any]
    payload: BaseModel


#: Which integration events a domain event publishes, given the aggregate id and the
#: state right after that event (pure).
Messages = Callable[[uuid.UUID, S, DomainEvent], Sequence[OutboxMessage]]
#: Extra writes in the same transaction after an append (e.g. a read-model row).
Projector = Callable[[asyncpg.Connection, Loaded[S], Sequence[StoredEvent]], Awaitable[None]]


@dataclass(frozen=True)
class CommandResult(Generic[S]):
    """What a command did: the state and version after it, and the events it stored."""

    aggregate_id: uuid.UUID
    state: S
    version: int
    events: list[StoredEvent]
    attempts: int


class AggregateRepository(Generic[S]):
    """Loads and changes aggregates of one ``AggregateSpec`` (see the module docstring).

    - ``snapshot_every``: snapshot once that many events accumulated since the last
      usable snapshot (0 disables snapshots).
    - ``max_attempts``: how many times a command runs before ``ConcurrencyError``
      is raised to the caller; retries wait ``retry_backoff`` (jittered).
    - ``messages``: the outbox rows of each new event (sent as ``service``).
    - ``project``: optional same-transaction hook, e.g. to update a read model.
    """

    def __init__(
        self,
        spec: AggregateSpec[S],
        *,
        service: str,
        snapshot_every: int = 50,
        max_attempts: int = 10,
        retry_backoff: Backoff | None = None,
        messages: Messages[S] | None = None,
        project: Projector[S] | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts is at least 1")
        self.spec = spec
        self.service = service
        self.snapshot_every = snapshot_every
        self.max_attempts = max_attempts
        self._retry_backoff = retry_backoff or Backoff(initial=0.005, maximum=0.2)
        self._messages = messages
        self._project = project

    async def load(self, connection: asyncpg.Connection, aggregate_id: uuid.UUID) -> Loaded[S]:
        """The current state: the latest usable snapshot plus the events after it.

        A snapshot of another format (or aggregate type) is ignored and the whole
        history replayed. Version 0 means the aggregate has no events yet.
        """
        snapshot = usable_snapshot(self.spec, await load_snapshot(connection, aggregate_id))
        after = 0 if snapshot is None else snapshot.last_sequence_number
        tail = await load(connection, aggregate_id, after, upcasters=self.spec.upcasters)
        return rebuild(
            self.spec, aggregate_id, snapshot, [(e.sequence_number, e.domain) for e in tail]
        )

    async def history(
        self, connection: asyncpg.Connection, aggregate_id: uuid.UUID
    ) -> list[StoredEvent]:
        """Every event of the aggregate, upcast to the current schema versions."""
        return await load(connection, aggregate_id, upcasters=self.spec.upcasters)

    async def execute(
        self,
        connection: asyncpg.Connection,
        aggregate_id: uuid.UUID,
        command: Command[S],
        *,
        causation_id: str | None = None,
        traceparent: str | None = None,
    ) -> CommandResult[S]:
        """Run ``command`` against the aggregate and store its events atomically.

        Each attempt is one transaction on ``connection`` (a savepoint when the
        caller already opened one, e.g. a consumer handler, so a conflict rolls back
        only this attempt). Needs READ COMMITTED (PostgreSQL's default): a retry must
        see the events that beat it. A domain error raised by ``command`` is not
        retried: it propagates after the rollback. A command that returns no events
        writes nothing.
        """
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with connection.transaction():
                    return await self._attempt(
                        connection, aggregate_id, command, attempt, causation_id, traceparent
                    )
            except ConcurrencyError:
                if attempt == self.max_attempts:
                    log.warning(
                        "command gave up after concurrent writes",
                        aggregate_type=self.spec.aggregate_type,
                        aggregate_id=str(aggregate_id),
                        attempts=attempt,
                    )
                    raise
                await asyncio.sleep(self._retry_backoff.delay(attempt - 1))
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _attempt(
        self,
        connection: asyncpg.Connection,
        aggregate_id: uuid.UUID,
        command: Command[S],
        attempt: int,
        causation_id: str | None,
        traceparent: str | None,
    ) -> CommandResult[S]:
        loaded = await self.load(connection, aggregate_id)
        decided = [normalized(self.spec, event) for event in command(loaded.state)]
        if not decided:
            return CommandResult(aggregate_id, loaded.state, loaded.version, [], attempt)
        correlation_id = current_correlation_id()
        # The span that decided the events: kept with them, and with their outbox rows.
        traceparent = traceparent or current_traceparent()
        stored = await append(
            connection,
            self.spec.aggregate_type,
            aggregate_id,
            loaded.version,
            [
                NewEvent(
                    event_type=event.event_type,
                    data=dict(event.data),
                    schema_version=event.schema_version or 1,
                    correlation_id=correlation_id,
                    causation_id=causation_id,
                    traceparent=traceparent,
                )
                for event in decided
            ],
        )
        sender = OutboxSender(connection, self.service, traceparent=traceparent)
        state = loaded.state
        for event in decided:
            state = self.spec.apply(state, event)
            for message in self._messages(aggregate_id, state, event) if self._messages else ():
                await sender.send(message.spec, message.payload, causation_id=causation_id)
        after = Loaded(aggregate_id, state, stored[-1].sequence_number, loaded.snapshot_sequence)
        if snapshot_due(loaded.snapshot_sequence, after.version, self.snapshot_every):
            await save_snapshot(connection, take_snapshot(self.spec, after))
        if self._project is not None:
            with span(
                "projection update",
                attributes={
                    "projection.name": getattr(self._project, "__name__", "projection"),
                    "aggregate.type": self.spec.aggregate_type,
                    "aggregate.id": str(aggregate_id),
                },
            ):
                await self._project(connection, after, stored)
        return CommandResult(aggregate_id, state, after.version, stored, attempt)
