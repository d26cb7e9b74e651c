"""Kafka wire format of domain events: JSON payload, metadata in headers.

Every record carries the headers of ``EventHeaders`` (event-id, event-type,
correlation-id, causation-id, traceparent, occurred-at, schema-version, producer),
is keyed by the aggregate id so one aggregate's events stay in order, and is
validated against the generated models on both sides of the wire.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from generated.events.registry import EVENTS_BY_TYPE, Event, EventHeaders, EventSpec


class InvalidEventError(ValueError):
    """A record that is not a valid event of the registry (a poison message)."""


@dataclass(frozen=True)
class EventRecord:
    """What goes to or comes from Kafka for one event."""

    topic: str
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...]


def new_headers(
    spec: EventSpec[Any],
    *,
    producer: str,
    correlation_id: str,
    causation_id: str | None = None,
    traceparent: str | None = None,
    tracestate: str | None = None,
    occurred_at: dt.datetime | None = None,
) -> EventHeaders:
    """Fresh metadata for a new event of ``spec``."""
    data: dict[str, Any] = {
        "event-id": str(uuid.uuid4()),
        "event-type": spec.event_type,
        "correlation-id": correlation_id,
        "causation-id": causation_id,
        "occurred-at": (occurred_at or dt.datetime.now(dt.UTC)).isoformat(),
        "schema-version": str(spec.schema_version),
        "producer": producer,
    }
    if traceparent is not None:
        data["traceparent"] = traceparent
        if tracestate:
            data["tracestate"] = tracestate
    return EventHeaders.model_validate(data)


def encode(spec: EventSpec[Any], payload: BaseModel, headers: EventHeaders) -> EventRecord:
    """Validate and serialise one event for ``spec.topic``."""
    if not isinstance(payload, spec.payload_model):
        raise TypeError(
            f"{spec.topic} carries {spec.payload_model.__name__}, not {type(payload).__name__}"
        )
    if headers.event_type != spec.event_type:
        raise ValueError(f"event-type header {headers.event_type!r} ≠ {spec.event_type!r}")
    wire = headers.model_dump(mode="json", by_alias=True, exclude_none=True)
    return EventRecord(
        topic=spec.topic,
        key=spec.key_of(payload).encode(),
        value=json.dumps(
            payload.model_dump(mode="json", by_alias=True), separators=(",", ":")
        ).encode(),
        headers=tuple((name, str(value).encode()) for name, value in sorted(wire.items())),
    )


def decode(topic: str, value: bytes | None, headers: Sequence[tuple[str, bytes]]) -> Event[Any]:
    """Parse and validate a consumed record; ``InvalidEventError`` if it is not one."""
    try:
        raw = {name: data.decode() for name, data in headers}
        metadata = EventHeaders.model_validate(raw)
    except (UnicodeDecodeError, ValidationError) as exc:
        raise InvalidEventError(f"invalid headers on {topic}: {exc}") from exc
    spec = EVENTS_BY_TYPE.get(metadata.event_type)
    if spec is None or spec.topic != topic:
        raise InvalidEventError(f"event type {metadata.event_type!r} does not belong on {topic}")
    if value is None:
        raise InvalidEventError(f"{topic}: record without a value")
    try:
        payload = spec.payload_model.model_validate_json(value)
    except ValidationError as exc:
        raise InvalidEventError(f"invalid {spec.event_type} payload: {exc}") from exc
    return Event(spec=spec, headers=metadata, payload=payload)
