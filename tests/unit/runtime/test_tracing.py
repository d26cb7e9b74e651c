"""Tracing set-up, sampling, W3C propagation, Kafka span shapes and log correlation.

Spans go to an in-memory exporter through ``use_provider`` (the global provider is
never touched, so other tests see tracing off).
"""

from __future__ import annotations

import pytest
import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision
from opentelemetry.trace import SpanKind

from handwritten.runtime import tracing
from handwritten.runtime.logging import _add_trace_ids
from handwritten.runtime.tracing.messaging import processing, publishing
from handwritten.runtime.tracing.propagation import (
    context_from_kafka,
    context_from_traceparent,
    current_traceparent,
    span_context_of,
    with_trace_headers,
)
from handwritten.runtime.tracing.setup import EntryPointSampler, TracingSettings

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def hex_ids(span: trace.Span) -> tuple[str, str]:
    context = span.get_span_context()
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


# ------------------------------------------------------------------ settings


def test_tracing_is_off_without_an_endpoint_and_when_disabled() -> None:
    assert not TracingSettings.from_env("orders", {}).enabled
    on = TracingSettings.from_env("orders", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert on.enabled and on.service_name == "orders"
    traces_only = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}
    assert TracingSettings.from_env("orders", traces_only).enabled
    for off in ({"OTEL_SDK_DISABLED": "true"}, {"OTEL_TRACES_EXPORTER": "none"}):
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", **off}
        assert not TracingSettings.from_env("orders", env).enabled


def test_the_service_name_variable_wins_over_the_default() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SERVICE_NAME": "orders-eu"}
    assert TracingSettings.from_env("orders", env).service_name == "orders-eu"


def test_a_provider_carries_the_service_resource() -> None:
    settings = TracingSettings("payment", "http://c:4318", disabled=False)
    provider = tracing.setup.build_provider(settings, exporter=InMemorySpanExporter())
    try:
        attributes = provider.resource.attributes
        assert attributes["service.name"] == "payment"
        assert attributes["service.namespace"] == "microcommerce"
        assert attributes["service.version"] == tracing.setup.package_version()
        assert attributes["service.instance.id"]
    finally:
        provider.shutdown()


def test_off_means_no_spans_and_nothing_to_propagate() -> None:
    assert not tracing.enabled()
    with tracing.span("nothing") as span:
        assert not span.is_recording()
        assert current_traceparent() is None


# ------------------------------------------------------------------ sampling


def test_a_trace_never_starts_at_a_client_span() -> None:
    sampler = EntryPointSampler(ALWAYS_ON)
    assert sampler.should_sample(None, 1, "SELECT", SpanKind.CLIENT).decision is Decision.DROP
    for kind in (SpanKind.SERVER, SpanKind.CONSUMER, SpanKind.PRODUCER, SpanKind.INTERNAL):
        assert sampler.should_sample(None, 1, "entry", kind).decision is not Decision.DROP
    parent = context_from_traceparent(TRACEPARENT)
    decision = sampler.should_sample(parent, 1, "SELECT", SpanKind.CLIENT).decision
    assert decision is Decision.RECORD_AND_SAMPLE


# ------------------------------------------------------------------ propagation


def test_a_stored_traceparent_resumes_its_trace(exporter: InMemorySpanExporter) -> None:
    with tracing.resumed_span("later", TRACEPARENT) as resumed:
        trace_id, _ = hex_ids(resumed)
    (finished,) = exporter.get_finished_spans()
    assert trace_id == "0af7651916cd43dd8448eb211c80319c"
    assert finished.parent is not None
    assert format(finished.parent.span_id, "016x") == "b7ad6b7169203331"


def test_a_bad_traceparent_starts_a_new_trace(exporter: InMemorySpanExporter) -> None:
    assert span_context_of(context_from_traceparent("not-a-traceparent")) is None
    with tracing.resumed_span("later", "00-zz-yy-01"):
        pass
    (finished,) = exporter.get_finished_spans()
    assert finished.parent is None


def test_the_current_span_is_what_gets_stored(exporter: InMemorySpanExporter) -> None:
    with tracing.span("request") as request:
        stored = current_traceparent()
    trace_id, span_id = hex_ids(request)
    assert stored is not None and stored.split("-")[1:3] == [trace_id, span_id]


def test_trace_headers_are_replaced_not_duplicated(exporter: InMemorySpanExporter) -> None:
    headers = [("event-id", b"e-1"), ("traceparent", TRACEPARENT.encode())]
    with tracing.span("send") as sending:
        replaced = with_trace_headers(headers)
    names = [name for name, _ in replaced]
    assert names.count("traceparent") == 1 and ("event-id", b"e-1") in replaced
    carried = span_context_of(context_from_kafka(replaced))
    assert carried is not None and carried.span_id == sending.get_span_context().span_id
    # Untraced, the stored context travels on untouched.
    tracing.use_provider(None)
    assert with_trace_headers(headers) == tuple(headers)


# ------------------------------------------------------------------ Kafka spans


def test_a_relayed_event_is_sent_as_a_child_of_the_span_that_recorded_it(
    exporter: InMemorySpanExporter,
) -> None:
    with tracing.span("request") as request:
        recorded = [("event-id", b"e-1"), ("traceparent", current_traceparent().encode())]  # type: ignore[union-attr]
    # Later, from the relay (no current span): the stored context is the parent.
    with publishing("orders.created", b"k", recorded, client_id="orders-producer") as sent:
        pass
    producer = next(s for s in exporter.get_finished_spans() if s.kind is SpanKind.PRODUCER)
    assert producer.name == "send orders.created"
    assert producer.parent is not None
    assert producer.parent.span_id == request.get_span_context().span_id
    assert producer.attributes is not None
    assert producer.attributes["messaging.system"] == "kafka"
    assert producer.attributes["messaging.destination.name"] == "orders.created"
    assert producer.attributes["messaging.message.id"] == "e-1"
    carried = span_context_of(context_from_kafka(sent.headers))
    assert carried is not None and carried.span_id == producer.context.span_id


def test_processing_is_a_child_of_the_producer_and_linked_to_it(
    exporter: InMemorySpanExporter,
) -> None:
    headers = [("traceparent", TRACEPARENT.encode()), ("event-type", b"OrderCreated")]
    with processing(
        "orders.created", b"k", headers, group="shipping", partition=1, offset=7
    ) as consumer:
        assert trace.get_current_span() is consumer
    (span,) = exporter.get_finished_spans()
    assert span.kind is SpanKind.CONSUMER and span.name == "process orders.created"
    assert span.parent is not None and format(span.parent.span_id, "016x") == "b7ad6b7169203331"
    assert [format(link.context.span_id, "016x") for link in span.links] == ["b7ad6b7169203331"]
    assert span.attributes is not None
    assert span.attributes["messaging.consumer.group.name"] == "shipping"
    assert span.attributes["messaging.operation.type"] == "process"
    assert span.attributes["messaging.kafka.offset"] == 7


def test_a_failing_handler_fails_its_processing_span(exporter: InMemorySpanExporter) -> None:
    with (
        pytest.raises(RuntimeError),
        processing("orders.created", None, [], group="g", partition=0, offset=0),
    ):
        raise RuntimeError("handler bug")
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is trace.StatusCode.ERROR
    assert span.parent is None  # no context on the record: a trace of its own


# ------------------------------------------------------------------ logs


def test_log_lines_carry_the_current_trace_and_span_ids(exporter: InMemorySpanExporter) -> None:
    assert "trace_id" not in _add_trace_ids(None, "info", {})
    with tracing.span("work") as work:
        event = _add_trace_ids(None, "info", {"event": "hello"})
    assert (event["trace_id"], event["span_id"]) == hex_ids(work)


def test_bound_ids_tag_log_lines_and_the_span(exporter: InMemorySpanExporter) -> None:
    with tracing.span("work"), tracing.bound_ids(order_id="o-1", saga_id=None):
        bound = structlog.contextvars.get_contextvars()
    assert bound["order_id"] == "o-1" and "saga_id" not in bound
    assert "order_id" not in structlog.contextvars.get_contextvars()
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None and span.attributes["order.id"] == "o-1"


def test_payload_fields_become_attribute_names() -> None:
    assert tracing.attribute_name("orderId") == "order.id"
    assert tracing.attribute_name("sagaId") == "saga.id"
    assert tracing.attribute_name("order_id") == "order.id"
