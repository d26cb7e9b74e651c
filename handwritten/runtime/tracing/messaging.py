"""Kafka spans per the messaging semantic conventions, with W3C context in headers.

- ``publishing``: a PRODUCER ``send <topic>`` span around one send. Its parent is
  the context the record carries (the span that *recorded* the event, when the
  outbox relay publishes it later) or else the current one; the record leaves with
  this span's ``traceparent``, so a consumer continues the same trace.
- ``processing``: a CONSUMER ``process <topic>`` span around the handling of one
  record, child of the producer's span and linked to it (the conventions' "process"
  span: the trace of an order stays one tree across services).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanKind

from handwritten.runtime.tracing.propagation import (
    TRACEPARENT,
    KafkaHeaders,
    context_from_kafka,
    span_context_of,
    with_trace_headers,
)
from handwritten.runtime.tracing.setup import enabled, tracer

_TRACER_NAME = "microcommerce.kafka"
MESSAGING_SYSTEM = "kafka"


@dataclass
class Publication:
    """What ``publishing`` hands the sender: the span, and the headers to send."""

    span: Span
    headers: tuple[tuple[str, bytes], ...]

    def sent(self, partition: int | None, offset: int | None) -> None:
        """Record where the broker put the record."""
        if not self.span.is_recording():
            return
        if partition is not None:
            self.span.set_attribute("messaging.destination.partition.id", str(partition))
        if offset is not None:
            self.span.set_attribute("messaging.kafka.offset", offset)


def _header(headers: KafkaHeaders, name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _attributes(topic: str, key: bytes | None, headers: KafkaHeaders) -> dict[str, str]:
    attributes = {"messaging.system": MESSAGING_SYSTEM, "messaging.destination.name": topic}
    if key is not None:
        attributes["messaging.kafka.message.key"] = key.decode("utf-8", "replace")
    event_id = _header(headers, "event-id")
    if event_id is not None:
        attributes["messaging.message.id"] = event_id
    event_type = _header(headers, "event-type")
    if event_type is not None:
        attributes["event.type"] = event_type
    return attributes


@contextlib.contextmanager
def publishing(
    topic: str, key: bytes | None, headers: KafkaHeaders, *, client_id: str
) -> Iterator[Publication]:
    """A PRODUCER span for one send; yields the headers carrying its context."""
    if not enabled():
        yield Publication(INVALID_SPAN, tuple(headers))
        return
    stored = context_from_kafka(headers) if _header(headers, TRACEPARENT) else None
    attributes = {
        **_attributes(topic, key, headers),
        "messaging.operation.type": "send",
        "messaging.operation.name": "send",
        "messaging.client.id": client_id,
    }
    with tracer(_TRACER_NAME).start_as_current_span(
        f"send {topic}", context=stored, kind=SpanKind.PRODUCER, attributes=attributes
    ) as current:
        yield Publication(current, with_trace_headers(headers))


@contextlib.contextmanager
def processing(
    topic: str,
    key: bytes | None,
    headers: KafkaHeaders,
    *,
    group: str,
    partition: int,
    offset: int,
) -> Iterator[Span]:
    """A CONSUMER span for handling one record, child of (and linked to) its producer;
    current for the block, failed if the block raises."""
    if not enabled():
        yield INVALID_SPAN
        return
    current = start_processing(topic, key, headers, group=group, partition=partition, offset=offset)
    with trace.use_span(current, end_on_exit=True):
        yield current


def start_processing(
    topic: str,
    key: bytes | None,
    headers: KafkaHeaders,
    *,
    group: str,
    partition: int,
    offset: int,
) -> Span:
    """Like ``processing`` but not made current: for records handled in a batch, each
    span ending when the batch is done (``span.end()``)."""
    if not enabled():
        return INVALID_SPAN
    parent = context_from_kafka(headers)
    producer = span_context_of(parent)
    return tracer(_TRACER_NAME).start_span(
        f"process {topic}",
        context=parent,
        kind=SpanKind.CONSUMER,
        links=[Link(producer)] if producer is not None else [],
        attributes={
            **_attributes(topic, key, headers),
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.consumer.group.name": group,
            "messaging.destination.partition.id": str(partition),
            "messaging.kafka.offset": offset,
        },
    )
