"""What every suite gets from the runner: quick or full mode, a log, shared helpers."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bench.stack import wait_for_stack


@dataclass(frozen=True)
class Context:
    """``quick``: shorter phases and fewer iterations (development runs, the smoke test)."""

    quick: bool = False

    def pick(self, full: float, quick: float) -> float:
        """The full-run or quick-run value of a parameter."""
        return quick if self.quick else full

    def count(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def log(self, message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)


async def wait_until(
    condition: Callable[[], Awaitable[bool]], *, seconds: float, interval: float = 0.25
) -> bool:
    """Poll ``condition`` until it holds or ``seconds`` pass; whether it held."""
    deadline = time.monotonic() + seconds
    while True:
        if await condition():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(interval)


async def require_stack(seconds: float = 90.0) -> None:
    """Fail the suite clearly unless every process is ready within ``seconds``."""
    down = await wait_for_stack(seconds)
    if down:
        raise RuntimeError(f"not ready: {', '.join(down)} (is the stack up? `make up`)")
