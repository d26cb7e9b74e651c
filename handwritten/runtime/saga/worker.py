"""The saga worker loop: resumes every unfinished saga, on any number of replicas.

``concurrency`` slots each repeat "pick one due instance (``FOR UPDATE SKIP
LOCKED``), perform one transition" until nothing is due, then sleep until a
notification (an input committed: start, reply, cancel) or ``poll_interval``.
Because all state is in the database, a worker started after a crash (or on
another replica) simply carries on where the instances are: nothing is resumed
explicitly, a due instance is a due instance.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from handwritten.runtime.backoff import Backoff
from handwritten.runtime.logging import get_logger
from handwritten.runtime.saga.engine import SagaEngine
from handwritten.runtime.saga.store import CHANNEL

log = get_logger(__name__)

Connect = Callable[[], Awaitable[asyncpg.Connection]]


class SagaWorker:
    """Runs the transitions of ``engines``' instances from ``pool``.

    ``listen`` opens a dedicated connection for LISTEN (optional: without it the
    worker only polls). Run it as a task; ``stop()`` lets the transitions in flight
    finish (a participant call lasts at most its deadline), then ``run`` returns.
    Cancelling the task instead is what a crash looks like to the other workers.
    """

    def __init__(
        self,
        engines: SagaEngine | Sequence[SagaEngine],
        pool: asyncpg.Pool,
        *,
        concurrency: int = 4,
        poll_interval: float = 0.5,
        listen: Connect | None = None,
        error_backoff: Backoff | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency is at least 1")
        self._engines = (engines,) if isinstance(engines, SagaEngine) else tuple(engines)
        self._pool = pool
        self._concurrency = concurrency
        self._poll_interval = poll_interval
        self._listen_connect = listen
        self._error_backoff = error_backoff or Backoff(initial=0.5, maximum=10.0)
        self._stopping = asyncio.Event()
        self._wakeup = asyncio.Event()
        #: Transitions performed by this worker (observability and tests).
        self.transitions = 0

    def stop(self) -> None:
        self._stopping.set()
        self._wakeup.set()

    async def run(self) -> None:
        tasks = [asyncio.create_task(self._slot()) for _ in range(self._concurrency)]
        if self._listen_connect is not None:
            tasks.append(asyncio.create_task(self._listen(self._listen_connect)))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _slot(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            self._wakeup.clear()
            try:
                worked = False
                for engine in self._engines:
                    if await engine.run_one(self._pool):
                        worked = True
                        self.transitions += 1
                failures = 0
            except Exception as exc:
                # The database is unreachable or a bug escaped the engine: back off.
                log.error("saga worker round failed", exc_info=exc)
                await self._pause(self._error_backoff.delay(failures))
                failures += 1
                continue
            if not worked:
                await self._pause(self._poll_interval, wake=True)

    async def _pause(self, seconds: float, *, wake: bool = False) -> None:
        waiter = self._wakeup if wake else self._stopping
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter.wait(), seconds)

    async def _listen(self, connect: Connect) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                connection = await connect()
            except Exception as exc:
                log.warning("saga worker cannot LISTEN; polling only", error=repr(exc))
                await self._pause(self._error_backoff.delay(failures))
                failures += 1
                continue
            try:
                schema: str = await connection.fetchval("SELECT current_schema()")

                def notified(_: Any, __: int, ___: str, payload: str, schema: str = schema) -> None:
                    if payload == schema:
                        self._wakeup.set()

                await connection.add_listener(CHANNEL, notified)
                failures = 0
                while not self._stopping.is_set() and not connection.is_closed():
                    await self._pause(5.0)
            except Exception as exc:
                log.warning("saga worker lost its LISTEN connection", error=repr(exc))
            finally:
                with contextlib.suppress(Exception):
                    await connection.close(timeout=5)
