"""Pure rendering of API payloads and log lines into rows (no I/O, unit tested)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class TimelineRow:
    """One line of a saga timeline."""

    step: str
    phase: str
    status: str
    started: str
    duration: str
    attempts: int
    error: str


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 timestamp from the API, or None."""
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def duration(start: str | None, end: str | None) -> str:
    """``1.234 s`` between two timestamps, or ``-`` when either is missing."""
    began, ended = parse_time(start), parse_time(end)
    if began is None or ended is None:
        return "-"
    return f"{(ended - began).total_seconds():.3f} s"


def clock(value: str | None) -> str:
    """``HH:MM:SS.mmm`` of a timestamp (the date is the saga's, shown once), or ``-``."""
    moment = parse_time(value)
    return "-" if moment is None else moment.strftime("%H:%M:%S.%f")[:-3]


def saga_timeline(saga: dict[str, Any]) -> list[TimelineRow]:
    """Forward steps in order, then their compensations, with durations.

    A compensation's duration runs from the end of the forward step (or its start when
    it never finished) to the time it was compensated.
    """
    rows: list[TimelineRow] = []
    compensations: list[TimelineRow] = []
    for step in saga.get("steps", []):
        rows.append(
            TimelineRow(
                step=str(step["name"]),
                phase="forward",
                status=str(step["status"]),
                started=clock(step.get("startedAt")),
                duration=duration(step.get("startedAt"), step.get("finishedAt")),
                attempts=int(step.get("attempts", 0)),
                error=str(step.get("error") or ""),
            )
        )
        if step.get("compensatedAt"):
            began = step.get("finishedAt") or step.get("startedAt")
            compensations.append(
                TimelineRow(
                    step=str(step["name"]),
                    phase="compensation",
                    status="COMPENSATED",
                    started=clock(began),
                    duration=duration(began, step.get("compensatedAt")),
                    attempts=0,
                    error="",
                )
            )
    # Compensations run backwards: the last completed step is undone first.
    compensations.reverse()
    return rows + compensations


def event_row(event: dict[str, Any]) -> tuple[str, str, str, str]:
    """(sequence, type, occurredAt, compact data) of one order event."""
    data = json.dumps(event.get("data", {}), separators=(",", ":"), sort_keys=True)
    return (str(event["sequence"]), str(event["type"]), str(event["occurredAt"]), data)


#: Fields of a JSON log line shown before the rest (in this order).
_LEADING = ("timestamp", "level", "service", "event")
_HIDDEN = frozenset(_LEADING) | {"logger"}


def log_line(raw: str) -> str:
    """A JSON log line as ``time level service event key=value…``; other text unchanged."""
    try:
        record = json.loads(raw)
    except json.JSONDecodeError:
        return raw.rstrip("\n")
    if not isinstance(record, dict):
        return raw.rstrip("\n")
    head = " ".join(str(record.get(key, "-")) for key in _LEADING)
    rest = " ".join(f"{key}={record[key]}" for key in sorted(record) if key not in _HIDDEN)
    return f"{head} {rest}".rstrip()


def log_matches(raw: str, needle: str | None) -> bool:
    """Whether a log line mentions ``needle`` (an order id, a correlation id…)."""
    return needle is None or needle in raw


def parse_item(text: str) -> dict[str, Any]:
    """``PRODUCT_ID:QUANTITY`` (quantity defaults to 1) as an order item."""
    product, _, quantity = text.partition(":")
    if not product:
        raise ValueError(f"item {text!r}: expected PRODUCT_ID[:QUANTITY]")
    try:
        count = int(quantity) if quantity else 1
    except ValueError as exc:
        raise ValueError(f"item {text!r}: quantity must be a whole number") from exc
    if count < 1:
        raise ValueError(f"item {text!r}: quantity must be at least 1")
    return {"productId": product, "quantity": count}
