"""Distributed tracing (OpenTelemetry) for every service and the gateway.

``setup`` configures the SDK from ``OTEL_*`` variables (off unless an OTLP endpoint
is set); ``propagation`` moves W3C trace context through headers, metadata and
rows; ``grpclib`` instruments grpclib servers and channels; ``messaging`` makes the
Kafka producer and consumer spans; ``spans`` has the business spans and the ids
(order, saga) that tie spans and log lines to an order. See docs/tracing.md.
"""

from handwritten.runtime.tracing.propagation import (
    context_from_traceparent,
    current_trace_headers,
    current_traceparent,
)
from handwritten.runtime.tracing.setup import (
    configure_tracing,
    enabled,
    instrument_asgi,
    instrument_fastapi,
    shutdown_tracing,
    tracer,
    use_provider,
)
from handwritten.runtime.tracing.spans import (
    ORDER_ID,
    SAGA_ID,
    SAGA_NAME,
    SAGA_STEP,
    attached,
    attribute_name,
    bound_ids,
    record_error,
    resumed_span,
    set_attributes,
    span,
)

__all__ = [
    "ORDER_ID",
    "SAGA_ID",
    "SAGA_NAME",
    "SAGA_STEP",
    "attached",
    "attribute_name",
    "bound_ids",
    "configure_tracing",
    "context_from_traceparent",
    "current_trace_headers",
    "current_traceparent",
    "enabled",
    "instrument_asgi",
    "instrument_fastapi",
    "record_error",
    "resumed_span",
    "set_attributes",
    "shutdown_tracing",
    "span",
    "tracer",
    "use_provider",
]
