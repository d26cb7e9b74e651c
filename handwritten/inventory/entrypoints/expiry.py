"""The background job that releases reservations nobody committed in time.

Every replica runs it: ``StockKeeper.expire_due`` locks due reservations with
``FOR UPDATE SKIP LOCKED``, so replicas share the work instead of colliding.
"""

from __future__ import annotations

import asyncio
import contextlib

from handwritten.inventory.service_layer.stock import StockKeeper
from handwritten.runtime.logging import get_logger

log = get_logger(__name__)


class ExpiryJob:
    """Runs ``expire_due`` every ``interval_seconds`` (back to back while there is a
    backlog); ``stop()`` ends ``run()`` after the batch in flight."""

    def __init__(self, stock: StockKeeper, *, interval_seconds: float, batch_size: int) -> None:
        self._stock = stock
        self._interval = interval_seconds
        self._batch_size = batch_size
        self._stopping = asyncio.Event()
        #: Reservations this instance expired (observability and tests).
        self.expired = 0

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                count = await self._stock.expire_due(self._batch_size)
            except Exception as exc:
                # A database hiccup must not kill the job: the next round retries.
                log.error("reservation expiry failed", exc_info=exc)
                count = 0
            if count:
                self.expired += count
                log.info("reservations expired", count=count)
                continue  # maybe more are due: drain before sleeping
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
