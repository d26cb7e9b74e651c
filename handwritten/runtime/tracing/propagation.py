"""W3C Trace Context in and out of carriers: HTTP-like mappings, Kafka headers, rows.

One propagator, the W3C ``traceparent``/``tracestate`` pair, whatever
``OTEL_PROPAGATORS`` says: it is what the event envelope declares, what gRPC
metadata carries between our services, and what a row stores to resume a trace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import SpanContext
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
TRACE_HEADERS = (TRACEPARENT, TRACESTATE)

PROPAGATOR = TraceContextTextMapPropagator()

#: Kafka record headers: ``(name, value)`` pairs, values as bytes.
KafkaHeaders = Sequence[tuple[str, bytes]]


class _KafkaGetter(Getter[KafkaHeaders]):
    def get(self, carrier: KafkaHeaders, key: str) -> list[str] | None:
        values = [value.decode("latin-1") for name, value in carrier if name == key]
        return values or None

    def keys(self, carrier: KafkaHeaders) -> list[str]:
        return [name for name, _ in carrier]


class _MetadataGetter(Getter[Mapping[str, object]]):
    """gRPC metadata (grpclib's ``MultiDict``) or any string mapping."""

    def get(self, carrier: Mapping[str, object], key: str) -> list[str] | None:
        value = carrier.get(key)
        if isinstance(value, bytes):
            return [value.decode("latin-1")]
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: Mapping[str, object]) -> list[str]:
        return list(carrier.keys())


_KAFKA_GETTER = _KafkaGetter()
_METADATA_GETTER = _MetadataGetter()


def current_trace_headers(context: Context | None = None) -> dict[str, str]:
    """``traceparent`` (and ``tracestate`` when set) of the active span; ``{}`` if none."""
    carrier: dict[str, str] = {}
    PROPAGATOR.inject(carrier, context=context)
    return carrier


def current_traceparent() -> str | None:
    """The ``traceparent`` of the active span, to store with work that resumes later."""
    return current_trace_headers().get(TRACEPARENT)


def context_from_traceparent(traceparent: str | None, tracestate: str | None = None) -> Context:
    """A context whose (remote) parent is ``traceparent``; empty when it is missing or bad."""
    carrier = {TRACEPARENT: traceparent} if traceparent else {}
    if traceparent and tracestate:
        carrier[TRACESTATE] = tracestate
    return PROPAGATOR.extract(carrier, context=Context())


def context_from_kafka(headers: KafkaHeaders) -> Context:
    """The producer's context carried by a record's headers (empty when none)."""
    return PROPAGATOR.extract(headers, context=Context(), getter=_KAFKA_GETTER)


def context_from_metadata(metadata: Mapping[str, object]) -> Context:
    """The caller's context carried by gRPC metadata (empty when none)."""
    return PROPAGATOR.extract(metadata, context=Context(), getter=_METADATA_GETTER)


def span_context_of(context: Context) -> SpanContext | None:
    """The (valid) span context ``context`` holds, e.g. to link to it."""
    span_context = trace.get_current_span(context).get_span_context()
    return span_context if span_context.is_valid else None


def with_trace_headers(
    headers: Iterable[tuple[str, bytes]], context: Context | None = None
) -> tuple[tuple[str, bytes], ...]:
    """``headers`` with their trace headers replaced by those of ``context``'s span.

    With no valid span the headers are returned as they are (a stored
    ``traceparent`` travels on untouched when this process does not trace).
    """
    fresh = current_trace_headers(context)
    if not fresh:
        return tuple(headers)
    kept = [(name, value) for name, value in headers if name not in TRACE_HEADERS]
    added = [(name, value.encode("latin-1")) for name, value in fresh.items()]
    # Sorted like the codec writes them, so a record's headers have one order.
    return tuple(sorted([*kept, *added]))
