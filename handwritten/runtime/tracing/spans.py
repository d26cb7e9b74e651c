"""Spans for business operations, and the ids that tie logs and spans to an order.

Attribute names shared by every service (searchable in any trace backend):
``order.id``, ``saga.id``, ``saga.name``, ``saga.step``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence

import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN, Link, Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from handwritten.runtime.tracing.propagation import context_from_traceparent, span_context_of
from handwritten.runtime.tracing.setup import enabled, tracer

ORDER_ID = "order.id"
SAGA_ID = "saga.id"
SAGA_NAME = "saga.name"
SAGA_STEP = "saga.step"

_TRACER_NAME = "microcommerce"
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def attribute_name(field: str) -> str:
    """A payload field as an attribute name: ``orderId`` → ``order.id``."""
    return _CAMEL_BOUNDARY.sub(".", field).replace("_", ".").lower()


@contextlib.contextmanager
def span(
    name: str,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    parent: Context | None = None,
    links: Sequence[Link] = (),
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Iterator[Span]:
    """A span, current for the block; an exception marks it failed and propagates.

    ``parent`` is the context to start from (default: the current one). With tracing
    off this costs a function call and yields a no-op span.
    """
    if not enabled():
        yield INVALID_SPAN
        return
    with tracer(_TRACER_NAME).start_as_current_span(
        name, context=parent, kind=kind, links=links, attributes=attributes
    ) as current:
        yield current


@contextlib.contextmanager
def resumed_span(
    name: str,
    traceparent: str | None,
    *,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Iterator[Span]:
    """A span continuing the trace stored as ``traceparent`` (time-driven work).

    Used where work resumes later from a row (a saga transition, a shipment's next
    status): the stored span becomes the parent, so the order keeps ONE trace. With
    no stored context the span starts a trace of its own.
    """
    parent = context_from_traceparent(traceparent) if traceparent else None
    with span(name, parent=parent, attributes=attributes) as current:
        yield current


@contextlib.contextmanager
def attached(traceparent: str | None) -> Iterator[None]:
    """Make the stored ``traceparent`` current without a new span (e.g. to log in it)."""
    if not traceparent or not enabled():
        yield
        return
    parent = context_from_traceparent(traceparent)
    if span_context_of(parent) is None:
        yield
        return
    token = otel_context.attach(parent)
    try:
        yield
    finally:
        otel_context.detach(token)


def record_error(error: BaseException, span_: Span | None = None) -> None:
    """Mark ``span_`` (default: the current span) failed with ``error``."""
    target = span_ or trace.get_current_span()
    if target.is_recording():
        target.record_exception(error)
        target.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"[:256]))


def set_attributes(attributes: Mapping[str, AttributeValue | None]) -> None:
    """Set the non-None ``attributes`` on the current span."""
    current = trace.get_current_span()
    if current.is_recording():
        current.set_attributes({k: v for k, v in attributes.items() if v is not None})


@contextlib.contextmanager
def bound_ids(*, order_id: object | None = None, saga_id: object | None = None) -> Iterator[None]:
    """Tag the block's log lines and current span with the order and saga ids known.

    Ids already bound by an enclosing block stay as they are when none is given here.
    """
    ids = {
        name: str(value)
        for name, value in (("order_id", order_id), ("saga_id", saga_id))
        if value is not None
    }
    set_attributes({ORDER_ID: ids.get("order_id"), SAGA_ID: ids.get("saga_id")})
    if not ids:
        yield
        return
    with structlog.contextvars.bound_contextvars(**ids):
        yield
