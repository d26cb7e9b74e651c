"""Transactional outbox: events are rows committed with the state change, then relayed.

``OutboxSender`` writes them inside the caller's transaction (it is an
``EventSender``); ``OutboxRelay`` publishes them to Kafka at least once, in per-key
order, with one active relay per database. Apply the ``outbox`` migrations with
``migrate_outbox(connection)``.
"""

from handwritten.runtime.outbox.relay import OutboxRelay, OutboxRow, first_per_key
from handwritten.runtime.outbox.sender import (
    CHANNEL,
    COMPONENT,
    MIGRATIONS,
    OutboxSender,
    insert_record,
    migrate_outbox,
)

__all__ = [
    "CHANNEL",
    "COMPONENT",
    "MIGRATIONS",
    "OutboxRelay",
    "OutboxRow",
    "OutboxSender",
    "first_per_key",
    "insert_record",
    "migrate_outbox",
]
