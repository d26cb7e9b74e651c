"""Event store with snapshots, upcasting and an aggregate repository (unit of work).

The domain stays pure: an ``AggregateSpec`` (initial state, ``apply``, snapshot
codec) and command functions ``state -> [DomainEvent]``. ``AggregateRepository``
does the I/O: load (snapshot + tail), run the command, append with optimistic
concurrency + write the outbox rows + snapshot in one transaction, retry on
conflicts. Apply the tables with ``migrate_event_store(connection)``.
"""

from handwritten.runtime.eventstore.aggregate import (
    AggregateSpec,
    DomainEvent,
    Loaded,
    fold,
    normalized,
    rebuild,
    take_snapshot,
    usable_snapshot,
)
from handwritten.runtime.eventstore.repository import (
    AggregateRepository,
    Command,
    CommandResult,
    Messages,
    OutboxMessage,
    Projector,
)
from handwritten.runtime.eventstore.snapshots import (
    Snapshot,
    load_snapshot,
    save_snapshot,
    snapshot_due,
)
from handwritten.runtime.eventstore.store import (
    COMPONENT,
    MIGRATIONS,
    ConcurrencyError,
    EventMetadata,
    NewEvent,
    StoredEvent,
    all_events,
    append,
    current_version,
    load,
    migrate_event_store,
)
from handwritten.runtime.eventstore.upcasting import Upcaster, Upcasters

__all__ = [
    "COMPONENT",
    "MIGRATIONS",
    "AggregateRepository",
    "AggregateSpec",
    "Command",
    "CommandResult",
    "ConcurrencyError",
    "DomainEvent",
    "EventMetadata",
    "Loaded",
    "Messages",
    "NewEvent",
    "OutboxMessage",
    "Projector",
    "Snapshot",
    "StoredEvent",
    "Upcaster",
    "Upcasters",
    "all_events",
    "append",
    "current_version",
    "fold",
    "load",
    "load_snapshot",
    "migrate_event_store",
    "normalized",
    "rebuild",
    "save_snapshot",
    "snapshot_due",
    "take_snapshot",
    "usable_snapshot",
]
