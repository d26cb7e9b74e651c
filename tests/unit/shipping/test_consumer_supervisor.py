"""The supervisor restarts a consumer that stopped on an error, and stops for good
when asked."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from handwritten.runtime.backoff import Backoff
from handwritten.shipping.entrypoints.consumer import ConsumerSupervisor


@dataclass
class Script:
    """Shared by the runners one supervisor creates: how many runs fail first."""

    failures: int
    started: int = 0
    failed: asyncio.Event = field(default_factory=asyncio.Event)
    consuming: asyncio.Event = field(default_factory=asyncio.Event)


class FlakyRunner:
    """Fails while the script says so, then consumes until stopped."""

    def __init__(self, script: Script) -> None:
        self._script = script
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        self._script.started += 1
        if self._script.failures > 0:
            self._script.failures -= 1
            self._script.failed.set()
            raise ConnectionError("broker unreachable")
        self._script.consuming.set()
        await self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()


async def test_restarts_after_failures_and_stops_on_request() -> None:
    script = Script(failures=2)
    supervisor = ConsumerSupervisor(
        lambda: FlakyRunner(script), backoff=Backoff(initial=0.01, maximum=0.02)
    )
    task = asyncio.create_task(supervisor.run())

    await asyncio.wait_for(script.consuming.wait(), 5)
    assert (script.started, supervisor.failures) == (3, 2)
    supervisor.stop()
    await asyncio.wait_for(task, 5)
    assert script.started == 3


async def test_stop_during_backoff_returns_promptly() -> None:
    script = Script(failures=1_000)
    supervisor = ConsumerSupervisor(
        lambda: FlakyRunner(script), backoff=Backoff(initial=60, maximum=60)
    )
    task = asyncio.create_task(supervisor.run())

    await asyncio.wait_for(script.failed.wait(), 5)
    supervisor.stop()
    await asyncio.wait_for(task, 5)
    assert (script.started, supervisor.failures) == (1, 1)
