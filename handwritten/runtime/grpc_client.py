"""gRPC client metrics: RED of every outgoing call, by method and status code.

``ObservedChannel`` is a grpclib ``Channel`` that counts and times each call made
through it, whatever stub makes it (betterproto2 and grpclib stubs all open calls
with ``channel.request(...)`` used as ``async with``). The labels mirror the
server's (``grpc_server_handled_total``): the calling service, the full method
path (``/inventory.v1.InventoryService/ReserveProducts``, which names the peer)
and the status code. A call that got no status is labelled the way gRPC itself
reports it: ``DEADLINE_EXCEEDED`` for a deadline, ``CANCELLED`` for a cancelled
caller, ``UNAVAILABLE`` for a connection that failed.

Usage (instead of ``Channel(host, port)``)::

    channel = ObservedChannel("127.0.0.1", 50053, service="orders")
"""

from __future__ import annotations

import asyncio
import time
from types import TracebackType
from typing import Any

from grpclib import GRPCError
from grpclib.client import Channel, Stream
from grpclib.const import Cardinality
from grpclib.exceptions import ProtocolError, StreamTerminatedError
from grpclib.metadata import Deadline
from h2.exceptions import H2Error
from prometheus_client import Counter, Histogram

from handwritten.runtime.metrics import REGISTRY

GRPC_CLIENT_CALLS = Counter(
    "grpc_client_handled",
    "gRPC calls made to other services, by calling service, method and status code.",
    ["service", "method", "code"],
    registry=REGISTRY,
)
GRPC_CLIENT_DURATION = Histogram(
    "grpc_client_handling_seconds",
    "Time from opening a gRPC call to its end (connecting included), by method.",
    ["service", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)

#: No status from the server: the connection could not be made or broke.
_UNAVAILABLE_ERRORS = (OSError, ProtocolError, StreamTerminatedError, H2Error)


def status_code(error: BaseException | None) -> str:
    """The gRPC status name a call ending with ``error`` reports (``OK`` for none)."""
    if error is None:
        return "OK"
    if isinstance(error, GRPCError):
        return error.status.name
    if isinstance(error, asyncio.CancelledError):
        return "CANCELLED"
    # Checked before OSError: TimeoutError is one (grpclib raises it for a deadline).
    if isinstance(error, TimeoutError):
        return "DEADLINE_EXCEEDED"
    if isinstance(error, _UNAVAILABLE_ERRORS):
        return "UNAVAILABLE"
    return "UNKNOWN"


class _ObservedStream(Stream[Any, Any]):
    """A grpclib client ``Stream`` that records its call when the ``async with`` ends."""

    _observed_service: str
    _observed_method: str
    _observed_started: float

    async def __aenter__(self) -> _ObservedStream:
        self._observed_started = time.perf_counter()
        await super().__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        error = exc_val
        try:
            await super().__aexit__(exc_type, exc_val, exc_tb)
        except BaseException as raised:
            # Finishing the call can itself fail (e.g. the trailers carry an error).
            error = raised
            raise
        finally:
            service, method = self._observed_service, self._observed_method
            GRPC_CLIENT_CALLS.labels(service, method, status_code(error)).inc()
            GRPC_CLIENT_DURATION.labels(service, method).observe(
                time.perf_counter() - self._observed_started
            )


class ObservedChannel(Channel):
    """A grpclib ``Channel`` whose calls are counted and timed as ``service``."""

    def __init__(self, host: str, port: int, *, service: str, **options: Any) -> None:
        super().__init__(host, port, **options)
        self.service = service

    def request(
        self,
        name: str,
        cardinality: Cardinality,
        request_type: type[Any],
        reply_type: type[Any],
        *,
        timeout: float | None = None,
        deadline: Deadline | None = None,
        metadata: Any = None,
    ) -> Stream[Any, Any]:
        stream = super().request(
            name,
            cardinality,
            request_type,
            reply_type,
            timeout=timeout,
            deadline=deadline,
            metadata=metadata,
        )
        # grpclib builds the Stream itself; switching it to the observing subclass
        # (same layout, two overridden methods) is how to hook every call without
        # copying grpclib's construction of it.
        stream.__class__ = _ObservedStream
        assert isinstance(stream, _ObservedStream)
        stream._observed_service = self.service
        stream._observed_method = name
        stream._observed_started = time.perf_counter()
        return stream
