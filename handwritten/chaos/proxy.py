"""An asyncio TCP proxy route whose traffic can be delayed, reset or black-holed.

``ChaosProxy`` listens on one address and relays every connection to one upstream
(PostgreSQL, Redis, a Kafka listener, a gRPC server…), applying its current
``Fault`` (see ``handwritten.chaos.faults``). Changing the fault takes effect at
once on open connections too: ``reset`` resets them, ``blackhole`` stops their
bytes, clearing lets the held bytes through.

Each direction of a connection is a small pipeline: a reader task stamps every
chunk with the time it may leave (arrival + latency, never earlier than the
previous chunk, so nothing is reordered) and a writer task sends it then. Latency
therefore adds delay without capping throughput, and a bounded queue between the
two passes back-pressure to the sender.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections.abc import Coroutine
from dataclasses import dataclass

from handwritten.chaos.faults import NO_FAULT, Direction, Fault, Mode, RouteStats, RouteView
from handwritten.runtime.logging import get_logger

log = get_logger(__name__)

#: Bytes read at once; also the unit that latency is applied to.
CHUNK_BYTES = 64 * 1024
#: Chunks buffered per direction before the proxy stops reading (back-pressure).
QUEUE_CHUNKS = 64
#: SO_LINGER on, 0 s: close() then sends RST instead of FIN.
_LINGER_RESET = struct.pack("ii", 1, 0)
_IO_ERRORS = (OSError, EOFError, asyncio.IncompleteReadError)


@dataclass(frozen=True)
class Endpoint:
    """A TCP address, ``host:port``."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """``"127.0.0.1:5432"`` → ``Endpoint("127.0.0.1", 5432)``."""
        host, separator, port = text.strip().rpartition(":")
        if not separator or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"not a host:port address: {text!r}")
        return cls(host.strip("[]"), int(port))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def reset_writer(writer: asyncio.StreamWriter) -> None:
    """Close ``writer``'s connection with a TCP RST (the peer sees a reset)."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    writer.transport.abort()


@dataclass(eq=False)
class _Link:
    """One proxied connection: the client side, the upstream side once open, its task."""

    client: asyncio.StreamWriter
    task: asyncio.Task[None] | None
    upstream: asyncio.StreamWriter | None = None
    aborted: bool = False

    def sides(self) -> list[asyncio.StreamWriter]:
        return [self.client] if self.upstream is None else [self.client, self.upstream]

    def abort(self, *, rst: bool) -> None:
        """Drop both sides now (RST when ``rst``) and stop the link's task."""
        if self.aborted:
            return
        self.aborted = True
        for writer in self.sides():
            if rst:
                reset_writer(writer)
            else:
                writer.transport.abort()
        if self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()


class ChaosProxy:
    """One proxy route: ``listen`` → ``upstream``, with a fault that can change any time.

    ``await start()`` binds (port 0 picks a free port: see ``address``); ``await
    stop()`` closes the listener and every connection. ``set_fault`` and
    ``reset_connections`` act immediately and may be called from any task on the
    proxy's event loop.
    """

    def __init__(
        self,
        name: str,
        listen: Endpoint,
        upstream: Endpoint,
        *,
        connect_timeout_seconds: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self._connect_timeout = connect_timeout_seconds
        # Jitter only; not security-relevant.
        self._rng = rng or random.Random()  # noqa: S311
        self._fault: Fault = NO_FAULT
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None
        self._address: Endpoint | None = None
        self.stats = RouteStats()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Listen; connections are relayed from now on."""
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._accept, self.listen.host, self.listen.port, reuse_address=True
        )
        host, port = self._server.sockets[0].getsockname()[:2]
        self._address = Endpoint(str(host), int(port))
        log.info(
            "chaos route listening",
            route=self.name,
            listen=str(self._address),
            upstream=str(self.upstream),
        )

    async def stop(self) -> None:
        """Stop listening and drop every open connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        links = list(self._links)
        for link in links:
            link.abort(rst=False)
        tasks = [link.task for link in links if link.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    @property
    def address(self) -> Endpoint:
        """Where the route listens (the real port once started)."""
        return self._address or self.listen

    # ------------------------------------------------------------------ control

    @property
    def fault(self) -> Fault:
        return self._fault

    def set_fault(self, fault: Fault) -> None:
        """Apply ``fault`` from now on (``NO_FAULT`` clears); see the module docstring."""
        self._fault = fault
        if fault.mode is Mode.BLACKHOLE:
            self._flowing.clear()
        else:
            self._flowing.set()
        if fault.mode is Mode.RESET:
            self.reset_connections()
        log.info("chaos fault set", route=self.name, fault=fault.model_dump(mode="json"))

    def reset_connections(self) -> int:
        """Reset (RST) every open connection once; return how many there were."""
        links = list(self._links)
        for link in links:
            link.abort(rst=True)
        self.stats.resets += len(links)
        return len(links)

    def view(self) -> RouteView:
        """The route, its fault and counters (the control API's answer)."""
        return RouteView(
            name=self.name,
            listen=str(self.address),
            upstream=str(self.upstream),
            fault=self._fault,
            stats=self.stats.model_copy(),
        )

    # ------------------------------------------------------------------ relaying

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.accepted += 1
        mode = self._fault.mode
        if mode is Mode.RESET:
            self.stats.resets += 1
            reset_writer(writer)
            return
        if mode is Mode.CLOSE_NEW:
            self.stats.closed_new += 1
            writer.close()
            return
        link = _Link(client=writer, task=asyncio.current_task())
        self._links.add(link)
        self.stats.active += 1
        try:
            await self._relay(link, reader)
        except asyncio.CancelledError:
            if not link.aborted:
                raise  # the proxy itself is being cancelled, not one link
        except _IO_ERRORS as exc:
            log.debug("chaos link failed", route=self.name, error=repr(exc))
            link.abort(rst=True)  # a reset on one side is passed on to the other
        finally:
            self._links.discard(link)
            self.stats.active -= 1
            for side in link.sides():
                side.close()

    async def _relay(self, link: _Link, client_reader: asyncio.StreamReader) -> None:
        await self._flowing.wait()  # a black hole holds new connections too
        delay = self._fault.connect_delay_ms(self._rng.random())
        if delay > 0:
            await asyncio.sleep(delay / 1000)
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(self.upstream.host, self.upstream.port),
                self._connect_timeout,
            )
        except (OSError, TimeoutError) as exc:
            self.stats.upstream_failures += 1
            log.warning("chaos upstream unreachable", route=self.name, error=repr(exc))
            link.abort(rst=True)
            return
        link.upstream = upstream_writer
        if link.aborted:  # reset while connecting
            reset_writer(upstream_writer)
            return
        await _both(
            self._pipe(client_reader, upstream_writer, Direction.UPSTREAM),
            self._pipe(upstream_reader, link.client, Direction.DOWNSTREAM),
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: Direction
    ) -> None:
        """Relay one direction until EOF, then half-close the other side."""
        # Items: a chunk and when it may leave; None at EOF; the read error, if any.
        queue: asyncio.Queue[tuple[float, bytes] | Exception | None] = asyncio.Queue(QUEUE_CHUNKS)
        loop = asyncio.get_running_loop()

        async def read_side() -> None:
            last_due = 0.0
            try:
                while data := await reader.read(CHUNK_BYTES):
                    delay = self._fault.chunk_delay_ms(direction, self._rng.random()) / 1000
                    last_due = max(last_due, loop.time() + delay)
                    await queue.put((last_due, data))
            except _IO_ERRORS as exc:
                await queue.put(exc)
                return
            await queue.put(None)

        async def write_side() -> None:
            while (item := await queue.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                due, data = item
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
                if direction is Direction.UPSTREAM:
                    self.stats.bytes_upstream += len(data)
                else:
                    self.stats.bytes_downstream += len(data)
            if writer.can_write_eof():
                with contextlib.suppress(OSError):
                    writer.write_eof()

        reading = asyncio.create_task(read_side())
        try:
            await write_side()
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading


async def _both(first: Coroutine[None, None, None], second: Coroutine[None, None, None]) -> None:
    """Run both to completion; if one fails, cancel the other and raise its error."""
    tasks = [asyncio.create_task(first), asyncio.create_task(second)]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if not task.cancelled() and (error := task.exception()) is not None:
                raise error
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
