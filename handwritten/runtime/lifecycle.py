"""Start-up and shutdown helpers every service's lifespan uses."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import AsyncExitStack

import asyncpg

from handwritten.runtime.db import create_pool
from handwritten.runtime.db_metrics import register_pool
from handwritten.runtime.logging import get_logger
from handwritten.runtime.settings import ServiceSettings

log = get_logger(__name__)
#: How long a background task gets to finish its round after being asked to stop.
STOP_TIMEOUT_SECONDS = 10.0


def database_url(settings: ServiceSettings) -> str:
    """The service's DATABASE_URL; a clear error when a database service has none."""
    if settings.database_url is None:
        raise RuntimeError(f"DATABASE_URL is not set for {settings.service_name}")
    return settings.database_url


async def open_pool(settings: ServiceSettings) -> asyncpg.Pool:
    """The service's connection pool, sized by its settings; its usage is exported
    as ``db_pool_*`` metrics until it is closed."""
    pool = await create_pool(
        database_url(settings), min_size=settings.db_pool_min, max_size=settings.db_pool_max
    )
    register_pool(pool, service=settings.service_name)
    return pool


def stop_on_exit(
    stack: AsyncExitStack,
    name: str,
    run: asyncio.Task[None],
    stop: Callable[[], None] | None = None,
) -> None:
    """On exit: ask the task to stop (or cancel it) and wait for it, bounded."""

    async def finish() -> None:
        if stop is None:
            # A plain loop with nothing to flush: cancelling it is its way to stop.
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run
            return
        stop()
        try:
            await asyncio.wait_for(asyncio.shield(run), STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            log.warning("background task did not stop in time; cancelled", task=name)
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run
        except Exception as exc:
            log.error("background task failed", task=name, exc_info=exc)

    stack.push_async_callback(finish)
