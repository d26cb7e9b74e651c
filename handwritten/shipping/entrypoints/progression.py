"""The timer that moves shipments along: SCHEDULED → IN_TRANSIT → DELIVERED.

Every replica runs it: ``advance_due`` locks due shipments with ``FOR UPDATE SKIP
LOCKED``, so replicas share the work instead of colliding, and a shipment moves one
step per ``step_seconds`` (its status must be that old) however often replicas poll.
"""

from __future__ import annotations

import asyncio
import contextlib

from handwritten.runtime.context import correlation_id
from handwritten.runtime.logging import get_logger
from handwritten.runtime.tracing import attached
from handwritten.shipping.service_layer.ports import UnitOfWorkFactory
from handwritten.shipping.service_layer.shipping import advance_due

log = get_logger(__name__)


class ProgressionJob:
    """Looks for due shipments every ``poll_seconds`` (back to back while a full batch
    comes back); ``stop()`` ends ``run()`` after the batch in flight."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        *,
        step_seconds: float,
        poll_seconds: float,
        batch_size: int,
    ) -> None:
        self._uow = uow
        self._step_seconds = step_seconds
        # Polling more often than the step keeps the actual step close to the
        # configured one (at most step + poll).
        self._poll_seconds = min(poll_seconds, step_seconds)
        self._batch_size = batch_size
        self._stopping = asyncio.Event()
        #: Status changes this instance made (observability and tests).
        self.advanced = 0

    def stop(self) -> None:
        self._stopping.set()

    async def run_once(self) -> int:
        """One batch in one transaction; how many shipments moved."""
        async with self._uow() as uow:
            moved = await advance_due(uow, step_seconds=self._step_seconds, limit=self._batch_size)
        for shipment in moved:
            # Logged in the order's context (correlation id, trace), as its events were.
            token = correlation_id.set(shipment.correlation_id)
            try:
                with attached(shipment.traceparent):
                    log.info(
                        "shipment advanced",
                        order_id=str(shipment.order_id),
                        tracking_code=shipment.tracking_code,
                        status=shipment.status.value,
                    )
            finally:
                correlation_id.reset(token)
        return len(moved)

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                count = await self.run_once()
            except Exception as exc:
                # A database hiccup must not kill the job: the next round retries.
                log.error("shipment progression failed", exc_info=exc)
                count = 0
            self.advanced += count
            if count >= self._batch_size:
                continue  # maybe more are due: drain before sleeping
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._poll_seconds)
