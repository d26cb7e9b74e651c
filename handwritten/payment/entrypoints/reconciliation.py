"""The periodic reconciliation of in-doubt (PENDING) payments.

A payment stays PENDING only when the gateway never answered its charge. Normally
the saga times out (30 s) and its refund request voids it; if that never comes (the
orders service lost, a saga stuck), this job settles every PENDING payment older
than ``older_than`` so that nothing stays in doubt. Every replica may run it: the
rows are taken with ``FOR UPDATE SKIP LOCKED``, so replicas (and a concurrent refund)
never settle one payment twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import asyncpg

from handwritten.payment.adapters.events import OutboxPaymentReplies
from handwritten.payment.adapters.postgres import PostgresPayments, PostgresUnitOfWork
from handwritten.payment.metrics import RECONCILED
from handwritten.payment.service_layer.payments import PaymentService, Reconciled
from handwritten.runtime.logging import get_logger

log = get_logger(__name__)


class ReconciliationJob:
    """Runs ``reconcile`` every ``interval_seconds`` (back to back while there is a
    backlog); ``stop()`` ends ``run()`` after the batch in flight."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        service: PaymentService,
        *,
        older_than: timedelta,
        interval_seconds: float,
        batch_size: int,
    ) -> None:
        self._pool = pool
        self._service = service
        self._older_than = older_than
        self._interval = interval_seconds
        self._batch_size = batch_size
        self._stopping = asyncio.Event()
        #: Payments this instance settled (observability and tests).
        self.settled = 0

    def stop(self) -> None:
        self._stopping.set()

    async def run_once(self) -> list[Reconciled]:
        """Settle one batch in one transaction; the payments settled."""
        async with self._pool.acquire() as connection, connection.transaction():
            uow = PostgresUnitOfWork(
                PostgresPayments(connection), OutboxPaymentReplies.on(connection)
            )
            done = await self._service.reconcile(
                uow, older_than=self._older_than, limit=self._batch_size
            )
        for item in done:
            RECONCILED.labels(item.outcome).inc()
            log.warning(
                "in-doubt payment settled by reconciliation",
                order_id=str(item.payment.order_id),
                payment_id=str(item.payment.payment_id),
                status=str(item.payment.status),
            )
        self.settled += len(done)
        return done

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                count = len(await self.run_once())
            except Exception as exc:
                # A database hiccup must not kill the job: the next round retries.
                log.error("payment reconciliation failed", exc_info=exc)
                count = 0
            if count >= self._batch_size:
                continue  # maybe more are due: drain before sleeping
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
