"""Apply a batch of consumed events to the analytics store, exactly once in effect.

Order of writes, and why it is safe to crash anywhere: first the row changes
(``apply``), then the ``events_raw`` marks (``record``), then — in the caller — the
Kafka offsets. A crash before the marks replays the batch: its duplicates are not
skipped, but applying row changes again is a no-op (min/max joins and replacing
keys). A crash after the marks and before the offsets replays events that are now
skipped. The marks only save work; correctness never depends on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from generated.events.registry import Event
from handwritten.analytics.domain.projection import dedupe_key, fresh_events, project_all
from handwritten.analytics.service_layer.ports import AnalyticsStore, AppliedEvent


@dataclass(frozen=True)
class IngestResult:
    applied: int
    duplicates: int


def applied_event(event: Event[Any]) -> AppliedEvent:
    """What ``events_raw`` keeps of ``event``."""
    return AppliedEvent(
        dedupe_key=dedupe_key(event),
        event_id=event.headers.event_id,
        event_type=event.headers.event_type.value,
        topic=event.spec.topic,
        record_key=event.spec.key_of(event.payload),
        occurred_at=event.headers.occurred_at,
        payload=event.payload.model_dump_json(by_alias=True),
    )


async def ingest(store: AnalyticsStore, events: Sequence[Event[Any]]) -> IngestResult:
    """Skip what was applied before, project the rest, write it, then mark it."""
    if not events:
        return IngestResult(0, 0)
    seen = await store.seen([dedupe_key(event) for event in events])
    fresh, duplicates = fresh_events(events, seen)
    if fresh:
        await store.apply(project_all(fresh))
        await store.record([applied_event(event) for event in fresh])
    return IngestResult(applied=len(fresh), duplicates=duplicates)
