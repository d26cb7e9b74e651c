"""Configure the OpenTelemetry SDK for one process, from the standard ``OTEL_*`` variables.

Tracing is on when an OTLP endpoint is set (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_ENDPOINT``) and ``OTEL_SDK_DISABLED`` is not ``true``. Then:

- a ``TracerProvider`` with the resource ``service.name`` (``OTEL_SERVICE_NAME``, else
  the service), ``service.version`` (the package's), ``service.namespace`` and
  ``service.instance.id``;
- a batch processor exporting OTLP/HTTP protobuf (the exporter reads its own
  variables: endpoint, headers, timeout, compression; ``OTEL_BSP_*`` tune batching);
- the sampler of ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` (e.g.
  ``parentbased_traceidratio`` and ``0.1``), which never starts a trace at a client
  span (see ``EntryPointSampler``);
- the instrumentations of httpx, asyncpg and redis (FastAPI apps are instrumented
  one by one with ``instrument_fastapi``).

Otherwise nothing is installed: the API's no-op tracer answers, every helper of this
package returns at once, and no middleware or wrapper is added anywhere.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import (
    Decision,
    Sampler,
    SamplingResult,
    _get_from_env_or_default,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

#: The namespace every service of the platform reports in.
SERVICE_NAMESPACE = "microcommerce"
#: Paths whose server spans are not worth a trace (probes, scrapes, API docs).
EXCLUDED_URLS = "/health/,/metrics,/docs,/openapi.json"
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class TracingSettings:
    """The ``OTEL_*`` variables this package acts on (the exporter reads the rest)."""

    service_name: str
    endpoint: str | None
    disabled: bool

    @property
    def enabled(self) -> bool:
        return self.endpoint is not None and not self.disabled

    @classmethod
    def from_env(cls, service: str, environ: Mapping[str, str] | None = None) -> TracingSettings:
        env = os.environ if environ is None else environ
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        return cls(
            service_name=env.get("OTEL_SERVICE_NAME") or service,
            endpoint=endpoint or None,
            disabled=env.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE
            or env.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none",
        )


class EntryPointSampler(Sampler):
    """``delegate``, except that a span with no parent that is a client call is dropped.

    Traces start where work enters a service: an HTTP or gRPC request, a consumed
    event, a scheduled job that resumes an order. A database query or Redis command
    with no parent is a background poll (the outbox relay, the saga worker…): as a
    trace of its own it would only be noise, so it is not recorded.
    """

    def __init__(self, delegate: Sampler) -> None:
        self._delegate = delegate

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if not parent.is_valid and kind is SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"EntryPointSampler{{{self._delegate.get_description()}}}"


@dataclass
class _State:
    provider: TracerProvider | None = None
    configured_for: str | None = None


_state = _State()


def package_version() -> str:
    """The installed version of the platform (``service.version``)."""
    try:
        return metadata.version("microcommerce")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def build_provider(settings: TracingSettings, *, exporter: Any | None = None) -> TracerProvider:
    """A provider for ``settings`` exporting to ``exporter`` (default: OTLP/HTTP)."""
    resource = Resource.create(
        {
            "service.name": settings.service_name,
            "service.version": package_version(),
            "service.namespace": SERVICE_NAMESPACE,
            "service.instance.id": f"{socket.gethostname()}:{os.getpid()}",
        }
    )
    provider = TracerProvider(
        resource=resource, sampler=EntryPointSampler(_get_from_env_or_default())
    )
    if exporter is None:
        # Imported here: a process with tracing off never loads the exporter.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def configure_tracing(service: str, environ: Mapping[str, str] | None = None) -> bool:
    """Set tracing up for this process (once); whether it is on.

    Later calls return the first call's answer: one process is one service.
    """
    if _state.configured_for is not None:
        return _state.provider is not None
    settings = TracingSettings.from_env(service, environ)
    _state.configured_for = service
    if not settings.enabled:
        return False
    provider = build_provider(settings)
    trace.set_tracer_provider(provider)
    _instrument_libraries(provider)
    use_provider(provider)
    return True


def _instrument_libraries(provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    HTTPXClientInstrumentor().instrument(tracer_provider=provider)
    AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    RedisInstrumentor().instrument(tracer_provider=provider)


def use_provider(provider: TracerProvider | None) -> None:
    """Make this package's spans go to ``provider`` (``None``: off).

    ``configure_tracing`` calls it; tests call it with a provider of their own
    (e.g. over an in-memory exporter) without touching the global one.
    """
    _state.provider = provider


def enabled() -> bool:
    """Whether spans are recorded in this process."""
    return _state.provider is not None


def tracer(name: str) -> trace.Tracer:
    """A tracer of the active provider, or the API's no-op tracer when tracing is off."""
    provider = _state.provider
    if provider is None:
        return trace.NoOpTracer()
    return provider.get_tracer(name, package_version())


def instrument_fastapi(app: Any) -> None:
    """Server spans for ``app``'s requests (W3C ``traceparent`` in), when tracing is on."""
    provider = _state.provider
    if provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=EXCLUDED_URLS,
        # The ASGI send/receive sub-spans add nothing a reader of an order's trace needs.
        exclude_spans=["receive", "send"],
        http_capture_headers_server_request=["x-correlation-id"],
    )


def instrument_asgi(app: Any) -> Any:
    """``app`` inside a server span per HTTP request (W3C ``traceparent`` honoured,
    else a new trace), when tracing is on; ``app`` itself otherwise."""
    provider = _state.provider
    if provider is None:
        return app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    return OpenTelemetryMiddleware(
        app,
        tracer_provider=provider,
        excluded_urls=EXCLUDED_URLS,
        exclude_spans=["receive", "send"],
        http_capture_headers_server_request=["x-correlation-id"],
    )


def shutdown_tracing() -> None:
    """Export what is buffered and stop (also done at interpreter exit)."""
    provider = _state.provider
    if provider is not None:
        provider.shutdown()
