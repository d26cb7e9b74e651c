"""The pure side of event sourcing: an aggregate is folded from its events.

A service describes an aggregate with an ``AggregateSpec`` of pure functions (no
I/O): the initial state, ``apply(state, event) -> state``, and the snapshot codec
with its format version. The functions here rebuild state from a snapshot and a
tail of events; the repository feeds them from the database.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from handwritten.runtime.eventstore.snapshots import Snapshot
from handwritten.runtime.eventstore.upcasting import Upcasters

S = TypeVar("S")


@dataclass(frozen=True)
class DomainEvent:
    """A fact produced by a command: its type and JSON data (no metadata).

    ``schema_version`` is the shape of ``data``; ``None`` means "the current one",
    which is what commands produce (the repository fills it in from the upcasters).
    """

    event_type: str
    data: Mapping[str, Any]
    schema_version: int | None = None


@dataclass(frozen=True)
class AggregateSpec(Generic[S]):
    """Everything the repository needs to know about one aggregate type, all pure.

    ``snapshot_version`` is the format of ``to_snapshot``'s output: bump it whenever
    that output changes shape, and stored snapshots of other formats are ignored
    (full replay) instead of being misread.
    """

    aggregate_type: str
    initial: Callable[[uuid.UUID], S]
    apply: Callable[[S, DomainEvent], S]
    snapshot_version: int
    to_snapshot: Callable[[S], dict[str, Any]]
    from_snapshot: Callable[[dict[str, Any]], S]
    upcasters: Upcasters = field(default_factory=Upcasters)


@dataclass(frozen=True)
class Loaded(Generic[S]):
    """An aggregate's state at ``version`` (0: no events yet).

    ``snapshot_sequence`` is the sequence of the snapshot it started from (0 when it
    was replayed from the first event).
    """

    aggregate_id: uuid.UUID
    state: S
    version: int
    snapshot_sequence: int = 0


def normalized(spec: AggregateSpec[Any], event: DomainEvent) -> DomainEvent:
    """``event`` exactly as it will read back from the store.

    The data goes through JSON (tuples become lists, keys strings, and anything not
    JSON fails here, before the write), and the schema version is made explicit, so
    the live state folded from a command's events equals the state replayed later.
    """
    current = spec.upcasters.current_version(event.event_type)
    if event.schema_version not in (None, current):
        raise ValueError(
            f"new {event.event_type} events are written at schema version {current},"
            f" not {event.schema_version}"
        )
    data = json.loads(json.dumps(dict(event.data)))
    return DomainEvent(event.event_type, data, current)


def usable_snapshot(spec: AggregateSpec[Any], snapshot: Snapshot | None) -> Snapshot | None:
    """``snapshot`` if this code can read it: right aggregate type and current format."""
    if snapshot is None:
        return None
    if snapshot.aggregate_type != spec.aggregate_type:
        return None
    if snapshot.snapshot_version != spec.snapshot_version:
        return None
    return snapshot


def fold(spec: AggregateSpec[S], state: S, events: Iterable[DomainEvent]) -> S:
    """``state`` with ``events`` applied in order."""
    for event in events:
        state = spec.apply(state, event)
    return state


def rebuild(
    spec: AggregateSpec[S],
    aggregate_id: uuid.UUID,
    snapshot: Snapshot | None,
    tail: Iterable[tuple[int, DomainEvent]],
) -> Loaded[S]:
    """State from a usable ``snapshot`` (or the initial state) plus ``tail``.

    ``tail`` holds ``(sequence_number, event)`` pairs following the snapshot (the
    whole history when there is none); they must be consecutive, since a gap would
    silently fold a wrong state.
    """
    start = usable_snapshot(spec, snapshot)
    if start is None:
        state, version, snapshot_sequence = spec.initial(aggregate_id), 0, 0
    else:
        state = spec.from_snapshot(start.state)
        version = snapshot_sequence = start.last_sequence_number
    for sequence_number, event in tail:
        if sequence_number != version + 1:
            raise ValueError(
                f"{spec.aggregate_type} {aggregate_id}: event {sequence_number} after {version}"
            )
        state = spec.apply(state, event)
        version = sequence_number
    return Loaded(aggregate_id, state, version, snapshot_sequence)


def take_snapshot(spec: AggregateSpec[S], loaded: Loaded[S]) -> Snapshot:
    """A snapshot of ``loaded`` in the spec's current format."""
    return Snapshot(
        aggregate_id=loaded.aggregate_id,
        aggregate_type=spec.aggregate_type,
        snapshot_version=spec.snapshot_version,
        # Through JSON for the same reason as events: what is read back must match.
        state=json.loads(json.dumps(spec.to_snapshot(loaded.state))),
        last_sequence_number=loaded.version,
    )
