"""OpenTelemetry for grpclib, which has no official instrumentation: both ends.

- ``instrument_server(server)``: every call handled gets a SERVER span named
  ``package.Service/Method``, child of the caller's W3C ``traceparent`` /
  ``tracestate`` metadata, with ``rpc.system=grpc``, ``rpc.service``,
  ``rpc.method``, ``rpc.grpc.status_code`` and the peer address. The status is an
  error for the codes the conventions call server faults (UNKNOWN,
  DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS): a
  NOT_FOUND answer is the server doing its job.
- ``instrument_channel(channel)``: every call made through the channel (whatever
  stub makes it) gets a CLIENT span, current while the call runs, whose context is
  sent as ``traceparent``/``tracestate`` metadata; any status but OK is an error.
  A call that ends without a status is mapped as gRPC reports it:
  DEADLINE_EXCEEDED for a deadline, CANCELLED for a cancelled caller,
  UNAVAILABLE for a connection that failed.

Both are no-ops per call while tracing is off. Registered once, in the shared
runtime: ``GrpcServer`` instruments its server; channels are instrumented where
they are opened.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, TypeVar

from grpclib import GRPCError
from grpclib.client import Channel, Stream
from grpclib.const import Status
from grpclib.events import RecvRequest, SendRequest, listen
from grpclib.exceptions import ProtocolError, StreamTerminatedError
from grpclib.server import Server
from h2.exceptions import H2Error
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, StatusCode

from handwritten.runtime.tracing.propagation import PROPAGATOR, context_from_metadata
from handwritten.runtime.tracing.setup import enabled, tracer

_TRACER_NAME = "microcommerce.grpc"
#: Codes that mean the server failed (semantic conventions for gRPC server spans).
SERVER_ERROR_CODES = frozenset(
    {
        Status.UNKNOWN,
        Status.DEADLINE_EXCEEDED,
        Status.UNIMPLEMENTED,
        Status.INTERNAL,
        Status.UNAVAILABLE,
        Status.DATA_LOSS,
    }
)
_UNAVAILABLE_ERRORS = (OSError, ProtocolError, StreamTerminatedError, H2Error)

C = TypeVar("C", bound=Channel)


def split_method(path: str) -> tuple[str, str]:
    """``/inventory.v1.InventoryService/ReserveProducts`` → (service, method)."""
    service, _, method = path.lstrip("/").rpartition("/")
    return service, method


def rpc_attributes(path: str) -> dict[str, str]:
    service, method = split_method(path)
    return {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}


def status_of(error: BaseException | None) -> Status | None:
    """The status a call ending with ``error`` reports; None when it is not a gRPC one."""
    if error is None:
        return Status.OK
    if isinstance(error, GRPCError):
        return error.status
    if isinstance(error, asyncio.CancelledError):
        return Status.CANCELLED
    # Before OSError: TimeoutError is one (grpclib raises it for a deadline).
    if isinstance(error, TimeoutError):
        return Status.DEADLINE_EXCEEDED
    if isinstance(error, _UNAVAILABLE_ERRORS):
        return Status.UNAVAILABLE
    return None


def _finish(span: Span, error: BaseException | None, *, server: bool) -> None:
    status = status_of(error)
    if status is not None:
        span.set_attribute("rpc.grpc.status_code", status.value)
    failed = status is None or (status in SERVER_ERROR_CODES if server else status is not Status.OK)
    if not failed:
        return
    if error is not None:
        span.record_exception(error)
        kind = status.name if status is not None else type(error).__name__
        span.set_attribute("error.type", kind)
    message = error.message if isinstance(error, GRPCError) else None
    span.set_status(StatusCode.ERROR, message or (status.name if status else repr(error)))


# ---------------------------------------------------------------- server


def instrument_server(server: Server) -> None:
    """SERVER spans for every call ``server`` handles (register after other listeners
    that wrap the handler, so the span encloses them and their log lines)."""
    listen(server, RecvRequest, _on_request)


async def _on_request(event: RecvRequest) -> None:
    if not enabled():
        return
    handler = event.method_func
    path = event.method_name
    parent = context_from_metadata(event.metadata)
    attributes: dict[str, Any] = rpc_attributes(path)
    address = event.peer.addr()
    if address is not None:
        attributes["network.peer.address"] = str(address[0])
        attributes["network.peer.port"] = int(address[1])

    async def traced(stream: Any) -> None:
        with tracer(_TRACER_NAME).start_as_current_span(
            path.lstrip("/"),
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                await handler(stream)
            except BaseException as exc:
                _finish(span, exc, server=True)
                raise
            _finish(span, None, server=True)

    event.method_func = traced


# ---------------------------------------------------------------- client
#
# grpclib builds each call's ``Stream`` itself; switching the stream (and the
# channel) to a subclass that only adds the span hooks every call, whatever stub
# makes it, without copying grpclib's construction of it — the same way the
# metrics channel observes calls, and composable with it. The subclasses are made
# per base class with single inheritance (a mixin in front would change the
# instance layout, which ``__class__`` assignment refuses).

_STREAM_TYPES: dict[type[Any], type[Any]] = {}
_CHANNEL_TYPES: dict[type[Any], type[Any]] = {}


def _end_call(call: Any, error: BaseException | None) -> None:
    span, token = call._otel_span, call._otel_token
    call._otel_span = call._otel_token = None
    if token is not None:
        otel_context.detach(token)
    if span is not None:
        _finish(span, error, server=False)
        span.end()


def _traced_stream_type(base: type[Any]) -> type[Any]:
    """``base`` whose ``async with`` runs inside the call's CLIENT span."""
    if base in _STREAM_TYPES:
        return _STREAM_TYPES[base]

    async def enter(self: Any) -> Any:
        self._otel_span = self._otel_token = None
        if enabled():
            span = tracer(_TRACER_NAME).start_span(
                self._otel_path.lstrip("/"), kind=SpanKind.CLIENT, attributes=self._otel_attributes
            )
            self._otel_span = span
            # Current while the call runs: the SendRequest listener injects it.
            self._otel_token = otel_context.attach(trace.set_span_in_context(span))
        try:
            return await base.__aenter__(self)
        except BaseException as exc:
            _end_call(self, exc)
            raise

    async def exit_(
        self: Any,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        error = exc_val
        try:
            await base.__aexit__(self, exc_type, exc_val, exc_tb)
        except BaseException as raised:
            # Finishing the call can itself fail (e.g. the trailers carry an error).
            error = raised
            raise
        finally:
            _end_call(self, error)

    made = type(f"Traced{base.__name__}", (base,), {"__aenter__": enter, "__aexit__": exit_})
    _STREAM_TYPES[base] = made
    return made


def _traced_channel_type(base: type[Any]) -> type[Any]:
    """``base`` whose ``request`` returns traced streams."""
    if base in _CHANNEL_TYPES:
        return _CHANNEL_TYPES[base]

    def request(self: Any, name: str, *args: Any, **kwargs: Any) -> Stream[Any, Any]:
        stream: Any = base.request(self, name, *args, **kwargs)
        stream.__class__ = _traced_stream_type(type(stream))
        stream._otel_path = name
        stream._otel_attributes = {**rpc_attributes(name), **self._otel_server}
        traced: Stream[Any, Any] = stream
        return traced

    made = type(f"Traced{base.__name__}", (base,), {"request": request})
    _CHANNEL_TYPES[base] = made
    return made


async def _inject(event: SendRequest) -> None:
    # Dispatched in the caller's task while the call's CLIENT span is current.
    PROPAGATOR.inject(event.metadata)


def instrument_channel(channel: C) -> C:
    """Trace every call made through ``channel`` (a ``Channel`` or any subclass of it)."""
    if type(channel) in _CHANNEL_TYPES.values():
        return channel
    server: dict[str, Any] = {}
    host, port = getattr(channel, "_host", None), getattr(channel, "_port", None)
    if isinstance(host, str):
        server["server.address"] = host
    if isinstance(port, int):
        server["server.port"] = port
    traced: Any = channel
    traced.__class__ = _traced_channel_type(type(channel))
    traced._otel_server = server
    listen(channel, SendRequest, _inject)
    return channel
