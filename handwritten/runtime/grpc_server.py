"""A grpclib server run next to uvicorn, inside a service app's lifespan.

Every RPC gets what HTTP requests get from ``http.create_app``: the correlation id
(read from the ``x-correlation-id`` metadata or new, echoed in the initial
metadata), one access-log line, Prometheus metrics, and no internals leaked (an
unexpected exception is logged and answered ``INTERNAL`` with a generic message; a
lost database connection is ``UNAVAILABLE``, which callers retry).

Shutdown is graceful: ``stop`` first refuses new calls with ``UNAVAILABLE`` (the
retryable status, so clients go to another replica), waits for the calls in flight
up to a grace period, and only then closes the server, cancelling what is left.

Usage in a lifespan::

    server = GrpcServer([MyService()], service="inventory")
    await server.start(settings.grpc_host, settings.grpc_port)   # port 0: any free port
    ...
    await server.stop(grace_seconds=settings.shutdown_grace_seconds)
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
import uuid
from collections.abc import Collection
from typing import Any

from grpclib import GRPCError
from grpclib._typing import IServable  # the protocol Server itself accepts
from grpclib.const import Status
from grpclib.events import RecvRequest, SendInitialMetadata, listen
from grpclib.server import Server, Stream
from prometheus_client import Counter, Histogram

from handwritten.runtime.context import correlation_id
from handwritten.runtime.failures import connection_lost
from handwritten.runtime.logging import get_logger
from handwritten.runtime.metrics import REGISTRY
from handwritten.runtime.tracing.grpclib import instrument_server

CORRELATION_METADATA = "x-correlation-id"
_VALID_CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
access_log = get_logger("access")
log = get_logger(__name__)

GRPC_REQUESTS = Counter(
    "grpc_server_handled",
    "gRPC calls handled, by method and status code.",
    ["service", "method", "code"],
    registry=REGISTRY,
)
GRPC_DURATION = Histogram(
    "grpc_server_handling_seconds",
    "Time to answer a gRPC call, by method.",
    ["service", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)


class GrpcServer:
    """Serves grpclib handlers (e.g. generated ``*ServiceBase`` subclasses)."""

    def __init__(self, handlers: Collection[IServable], *, service: str) -> None:
        self.service = service
        self._server = Server(handlers)
        self._socket: socket.socket | None = None
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        listen(self._server, RecvRequest, self._on_request)
        listen(self._server, SendInitialMetadata, self._on_initial_metadata)
        # After our own listener: the SERVER span then encloses the access-log line.
        instrument_server(self._server)

    @property
    def port(self) -> int:
        """The bound port (useful after starting on port 0)."""
        if self._socket is None:
            raise RuntimeError("the gRPC server is not started")
        port: int = self._socket.getsockname()[1]
        return port

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port``; fails at once if the port is taken."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # Bound here rather than by grpclib so the real port is known without
        # reaching into the server's internals.
        self._socket = socket.create_server((host, port), family=family, backlog=128)
        # asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP, and this
        # one's is 0: without it, Nagle holds each response's second frame until the
        # client's delayed ACK (~40 ms per call). Accepted sockets inherit it on Linux.
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await self._server.start(sock=self._socket)
        log.info("grpc server listening", host=host, port=self.port)

    async def stop(self, *, grace_seconds: float) -> None:
        """Refuse new calls, let calls in flight finish (up to the grace), then close."""
        if self._socket is None:
            return
        self._stopping = True
        try:
            await asyncio.wait_for(self._idle.wait(), grace_seconds)
        except TimeoutError:
            log.warning(
                "grpc calls still running after the grace period are cancelled",
                in_flight=self._in_flight,
            )
        self._server.close()
        await self._server.wait_closed()
        self._socket = None
        log.info("grpc server stopped")

    async def _on_initial_metadata(self, event: SendInitialMetadata) -> None:
        # Dispatched in the call's task, so the id set by ``_on_request`` is visible.
        value = correlation_id.get()
        if value is not None:
            event.metadata[CORRELATION_METADATA] = value

    async def _on_request(self, event: RecvRequest) -> None:
        handler = event.method_func
        method = event.method_name
        sent = event.metadata.get(CORRELATION_METADATA)
        value = sent if isinstance(sent, str) and _VALID_CORRELATION_ID.match(sent) else None

        async def observed(stream: Stream[Any, Any]) -> None:
            token = correlation_id.set(value or str(uuid.uuid4()))
            started = time.perf_counter()
            code = Status.OK
            self._in_flight += 1
            self._idle.clear()
            try:
                if self._stopping:
                    raise GRPCError(Status.UNAVAILABLE, "The server is shutting down.")
                await handler(stream)
            except GRPCError as exc:
                code = exc.status
                raise
            except asyncio.CancelledError:
                code = Status.CANCELLED
                raise
            except Exception as exc:
                if connection_lost(exc):  # transient: UNAVAILABLE is what callers retry
                    code = Status.UNAVAILABLE
                    log.warning("dependency unreachable", method=method, error=repr(exc))
                    raise GRPCError(
                        Status.UNAVAILABLE, "A dependency is unreachable; retry shortly."
                    ) from exc
                code = Status.INTERNAL
                log.error("unhandled error in grpc call", method=method, exc_info=exc)
                raise GRPCError(Status.INTERNAL, "An unexpected error occurred.") from exc
            finally:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._idle.set()
                elapsed = time.perf_counter() - started
                GRPC_REQUESTS.labels(self.service, method, code.name).inc()
                GRPC_DURATION.labels(self.service, method).observe(elapsed)
                access_log.info(
                    "rpc",
                    method=method,
                    code=code.name,
                    duration_ms=round(elapsed * 1000, 2),
                )
                correlation_id.reset(token)

        event.method_func = observed
