"""The Kafka side: payment commands run through the runtime's ``ConsumerRunner``.

The runner opens one transaction per event and marks its event id in the inbox;
``payment_handler`` runs the use case on that same connection, so the payment row,
the reply in the outbox and the inbox mark commit together (a redelivery of the
same event id is skipped by the inbox; a new event id for the same order is made
harmless by the use case itself).

Both commands are saga fault points (docs/fault-flags.md): ``fail`` charges through
a gateway that errs (payments.failed, GATEWAY_ERROR); a refund has no failure reply,
so ``fail``, like ``hang``, leaves the command unanswered (the saga's compensation
times out and asks again) rather than stall the consumer for everyone; ``duplicate``
handles the command twice in its transaction, so the reply goes out twice while the
order is still charged (or refunded) once.

``ConsumerSupervisor`` keeps a runner going: if one stops on a handler that keeps
failing (e.g. the database is down) or cannot reach Kafka, it starts a new one after
a backoff; the failed record was not committed, so it is handled then, not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import asyncpg

from generated.events.registry import PAYMENTS_REFUND_REQUESTED, PAYMENTS_REQUESTED, Event
from generated.models.events import PaymentRefundRequestedPayload, PaymentRequestedPayload
from generated.services.payment.events import PaymentEventHandlers, dispatch
from handwritten.payment.adapters.events import OutboxPaymentReplies
from handwritten.payment.adapters.faults import FailingGateway
from handwritten.payment.adapters.postgres import PostgresPayments, PostgresUnitOfWork
from handwritten.payment.domain.money import parse_amount
from handwritten.payment.domain.payments import ChargeCommand, RefundCommand, effective_token
from handwritten.payment.metrics import PAYMENTS, REFUNDS
from handwritten.payment.service_layer.payments import PaymentService
from handwritten.payment.service_layer.ports import Cause
from handwritten.runtime.backoff import Backoff
from handwritten.runtime.consumer import ConsumerRunner, Handler
from handwritten.runtime.faults import FaultSwitchboard
from handwritten.runtime.logging import get_logger

log = get_logger(__name__)


def _cause(event: Event[Any]) -> Cause:
    return Cause(event.headers.event_id, event.headers.correlation_id)


class PaymentCommandHandlers(PaymentEventHandlers):
    """The generated handler protocol, for one event on one transaction's connection."""

    def __init__(
        self,
        service: PaymentService,
        connection: asyncpg.Connection,
        faults: FaultSwitchboard | None = None,
    ) -> None:
        self._service = service
        self._faults = faults or FaultSwitchboard.disabled("payment")
        self._uow = PostgresUnitOfWork(
            PostgresPayments(connection), OutboxPaymentReplies.on(connection)
        )

    async def on_payments_requested(self, event: Event[PaymentRequestedPayload]) -> None:
        payload = event.payload
        command = ChargeCommand(
            saga_id=payload.saga_id,
            order_id=payload.order_id,
            user_id=payload.user_id,
            amount=parse_amount(payload.amount),
            token=effective_token(payload.payment_method_token),
            requested_at=payload.requested_at,
        )
        fault = await self._faults.check(
            PAYMENTS_REQUESTED.topic, orderId=payload.order_id, userId=payload.user_id
        )
        if fault is not None and fault.mode == "hang":
            log.warning("payment request left unanswered", order_id=str(command.order_id))
            return
        service = self._service
        if fault is not None and fault.mode == "fail":
            service = service.with_gateway(FailingGateway)
        outcome = await service.request_payment(self._uow, command, _cause(event))
        if fault is not None and fault.mode == "duplicate":
            PAYMENTS.labels(outcome.value).inc()
            outcome = await service.request_payment(self._uow, command, _cause(event))
        PAYMENTS.labels(outcome.value).inc()
        log.info("payment requested", order_id=str(command.order_id), outcome=outcome.value)

    async def on_payments_refund_requested(
        self, event: Event[PaymentRefundRequestedPayload]
    ) -> None:
        payload = event.payload
        command = RefundCommand(
            saga_id=payload.saga_id,
            order_id=payload.order_id,
            payment_id=payload.payment_id,
            amount=parse_amount(payload.amount),
            reason=payload.reason.value,
        )
        fault = await self._faults.check(PAYMENTS_REFUND_REQUESTED.topic, orderId=payload.order_id)
        if fault is not None and fault.mode in ("fail", "hang"):
            log.warning("refund request left unanswered", order_id=str(command.order_id))
            return
        outcome = await self._service.request_refund(self._uow, command, _cause(event))
        if fault is not None and fault.mode == "duplicate":
            REFUNDS.labels(outcome.value).inc()
            outcome = await self._service.request_refund(self._uow, command, _cause(event))
        REFUNDS.labels(outcome.value).inc()
        log.info("refund requested", order_id=str(command.order_id), outcome=outcome.value)


def payment_handler(service: PaymentService, faults: FaultSwitchboard | None = None) -> Handler:
    """The ``ConsumerRunner`` handler: dispatch the event on the runner's transaction."""

    async def handle(connection: asyncpg.Connection, event: Event[Any]) -> None:
        await dispatch(PaymentCommandHandlers(service, connection, faults), event)

    return handle


class ConsumerSupervisor:
    """Runs a fresh ``ConsumerRunner`` from ``make_runner`` until ``stop()``.

    A runner that raises (a handler failing ``max_attempts`` times, Kafka
    unreachable at start) is replaced after a capped backoff. ``healthy`` is false
    while waiting to replace one (and after ``stop()``).
    """

    def __init__(
        self,
        make_runner: Callable[[], ConsumerRunner],
        *,
        backoff: Backoff | None = None,
    ) -> None:
        self._make_runner = make_runner
        self._backoff = backoff or Backoff(initial=1.0, maximum=30.0)
        self._stopping = asyncio.Event()
        self._runner: ConsumerRunner | None = None
        self._failures = 0
        #: Runners that stopped with an error since start (observability and tests).
        self.restarts = 0

    @property
    def healthy(self) -> bool:
        return self._runner is not None and not self._stopping.is_set()

    def stop(self) -> None:
        """Let the runner finish the record in hand, commit, and return from ``run``."""
        self._stopping.set()
        if self._runner is not None:
            self._runner.stop()

    async def run(self) -> None:
        while not self._stopping.is_set():
            runner = self._runner = self._make_runner()
            started = asyncio.get_running_loop().time()
            try:
                await runner.run()
            except Exception as exc:
                # A runner that had been fine for a minute starts the backoff afresh.
                if asyncio.get_running_loop().time() - started > 60:
                    self._failures = 0
                self._failures += 1
                self.restarts += 1
                delay = self._backoff.delay(self._failures - 1)
                log.error(
                    "payment consumer stopped; restarting",
                    exc_info=exc,
                    retry_in_seconds=round(delay, 2),
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
            else:
                return  # run() returns only after stop()
            finally:
                self._runner = None
