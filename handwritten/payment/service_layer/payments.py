"""Use cases: charge an order, refund (or void) it, reconcile in-doubt charges.

Each runs inside one database transaction owned by the caller, which also holds the
inbox mark of the command (consumer) and commits the replies written to the outbox:
effect, reply and mark commit together or not at all.

**No double charge.** ``claim`` gives every use case the order's payment row locked
(inserting it if needed, ``order_id`` unique), so concurrent commands of one order
run one after the other, whatever their event ids or partitions, and only the
command that created the row ever calls ``charge``. A crash after the gateway took
the money but before the commit rolls the row back; the redelivered command then
creates it again and charges with the same idempotency key (the order id), which
the gateway answers with the original approval instead of charging twice.

**Late requests.** A refund request that finds nothing charged closes the order
for payment (a VOIDED row, created if needed, and any in-doubt charge canceled at
the gateway), so a later ``payments.requested`` for it charges nothing and answers
nothing: the saga already gave up and has its answer (NOTHING_TO_REFUND). We chose
"refuse" over "charge, then refund at once" because it never takes money for a
canceled order in the first place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID, uuid4

from handwritten.payment.domain.payments import (
    GATEWAY_SILENT,
    ChargeCommand,
    FailureReason,
    OnRefund,
    OnRequest,
    Payment,
    PaymentStatus,
    RefundCommand,
    on_refund,
    on_request,
    reject_invalid,
)
from handwritten.payment.service_layer.ports import Cause, PaymentGateway, UnitOfWork
from handwritten.runtime.logging import get_logger

log = get_logger(__name__)


class RequestOutcome(StrEnum):
    """What a charge request ended in (the ``outcome`` label of the payments metric)."""

    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    GATEWAY_ERROR = "gateway_error"
    INVALID_PAYMENT_METHOD = "invalid_payment_method"
    NO_ANSWER = "no_answer"
    REPEATED = "repeated"
    IN_DOUBT = "in_doubt"
    CLOSED = "closed"


class RefundResult(StrEnum):
    """What a refund request ended in (the ``outcome`` label of the refunds metric)."""

    REFUNDED = "refunded"
    NOTHING_TO_REFUND = "nothing_to_refund"
    REPEATED = "repeated"


_FAILED: dict[FailureReason, RequestOutcome] = {
    FailureReason.DECLINED: RequestOutcome.DECLINED,
    FailureReason.GATEWAY_ERROR: RequestOutcome.GATEWAY_ERROR,
    FailureReason.INVALID_PAYMENT_METHOD: RequestOutcome.INVALID_PAYMENT_METHOD,
}


@dataclass(frozen=True)
class Reconciled:
    """One in-doubt payment settled by the reconciliation job."""

    payment: Payment

    @property
    def outcome(self) -> str:
        return "succeeded" if self.payment.status is PaymentStatus.SUCCEEDED else "failed"


def _charge_outcome(payment: Payment) -> RequestOutcome:
    if payment.status is PaymentStatus.SUCCEEDED:
        return RequestOutcome.SUCCEEDED
    if payment.status is PaymentStatus.FAILED and payment.failure_reason is not None:
        return _FAILED[payment.failure_reason]
    return RequestOutcome.NO_ANSWER


class PaymentService:
    """The payment use cases over a gateway; ``new_id`` makes payment ids (tests pin it)."""

    def __init__(self, gateway: PaymentGateway, *, new_id: Callable[[], UUID] = uuid4) -> None:
        self._gateway = gateway
        self._new_id = new_id

    def with_gateway(self, wrap: Callable[[PaymentGateway], PaymentGateway]) -> PaymentService:
        """The same use cases over ``wrap(gateway)`` (a fault flag's failing gateway)."""
        return PaymentService(wrap(self._gateway), new_id=self._new_id)

    async def request_payment(
        self, uow: UnitOfWork, command: ChargeCommand, cause: Cause
    ) -> RequestOutcome:
        """Charge the order once; answer processed/failed, or nothing while in doubt."""
        fresh = Payment.requested(
            command,
            payment_id=self._new_id(),
            request_event_id=cause.event_id,
            correlation_id=cause.correlation_id,
        )
        payment, first = await uow.payments.claim(fresh)
        action = on_request(payment, first=first)
        repeated = action in (OnRequest.REPEAT_OUTCOME, OnRequest.IN_DOUBT)
        if repeated and not payment.same_charge(command):
            # At most one charge per order: a different request for a charged order
            # is a bug upstream; it gets the order's outcome, never a second charge.
            log.warning(
                "charge request differs from the order's payment; answering its outcome",
                order_id=str(command.order_id),
                payment_id=str(payment.payment_id),
            )
        match action:
            case OnRequest.CHARGE:
                result = reject_invalid(command) or await self._gateway.charge(
                    str(command.order_id), command.amount, command.token
                )
                payment = payment.settle(result, await uow.payments.now())
                await uow.payments.save(payment)
                await self._answer(uow, payment, command.saga_id, cause)
                return _charge_outcome(payment)
            case OnRequest.REPEAT_OUTCOME:
                await self._answer(uow, payment, command.saga_id, cause)
                return RequestOutcome.REPEATED
            case OnRequest.IN_DOUBT:
                return RequestOutcome.IN_DOUBT
            case OnRequest.CLOSED:
                log.info(
                    "charge request for an order closed for payment; nothing charged",
                    order_id=str(command.order_id),
                    status=str(payment.status),
                )
                return RequestOutcome.CLOSED

    async def request_refund(
        self, uow: UnitOfWork, command: RefundCommand, cause: Cause
    ) -> RefundResult:
        """Give back what the order was charged (once) and close it for payment."""
        now = await uow.payments.now()
        closed = Payment.closed_unrequested(command, payment_id=self._new_id(), at=now)
        payment, first = await uow.payments.claim(closed)
        if first:
            # Nothing was ever requested: the VOIDED row now refuses late charges.
            await uow.replies.refunded(payment, saga_id=command.saga_id, cause=cause)
            return RefundResult.NOTHING_TO_REFUND
        if command.payment_id is not None and command.payment_id != payment.payment_id:
            log.warning(
                "refund names another payment than the order's; refunding the order's",
                order_id=str(command.order_id),
                requested_payment_id=str(command.payment_id),
                payment_id=str(payment.payment_id),
            )
        action = on_refund(payment)
        match action:
            case OnRefund.REFUND:
                payment = await self._give_back(payment, now)
            case OnRefund.VOID:
                captured = await self._gateway.settle_in_doubt(str(payment.order_id))
                if captured is None:
                    payment = payment.voided(now)
                else:
                    # The charge went through after all: make it visible, then undo it.
                    payment = payment.settle(captured, now)
                    await uow.replies.processed(payment, saga_id=payment.saga_id, cause=cause)
                    payment = await self._give_back(payment, now)
            case OnRefund.CLOSE:
                payment = payment.closed(now)
            case OnRefund.REPEAT_OUTCOME:
                await uow.replies.refunded(payment, saga_id=command.saga_id, cause=cause)
                return RefundResult.REPEATED
        await uow.payments.save(payment)
        await uow.replies.refunded(payment, saga_id=command.saga_id, cause=cause)
        if payment.status is PaymentStatus.REFUNDED:
            return RefundResult.REFUNDED
        return RefundResult.NOTHING_TO_REFUND

    async def reconcile(
        self, uow: UnitOfWork, *, older_than: timedelta, limit: int
    ) -> list[Reconciled]:
        """Settle PENDING payments older than ``older_than`` (up to ``limit``).

        The gateway is asked to settle each: an approval that did go through is
        recorded and answered (payments.processed; if the saga already gave up it
        compensates with a refund); otherwise the charge is canceled at the gateway
        and answered as failed (GATEWAY_ERROR). Either way nothing stays in doubt.
        """
        settled: list[Reconciled] = []
        now = await uow.payments.now()
        for payment in await uow.payments.lock_stale_pending(older_than, limit):
            captured = await self._gateway.settle_in_doubt(str(payment.order_id))
            payment = payment.settle(captured or GATEWAY_SILENT, now)
            await uow.payments.save(payment)
            cause = Cause(payment.request_event_id, payment.correlation_id)
            await self._answer(uow, payment, payment.saga_id, cause)
            settled.append(Reconciled(payment))
        return settled

    async def _give_back(self, payment: Payment, now: datetime) -> Payment:
        transaction_id = payment.gateway_transaction_id
        if transaction_id is None:  # a SUCCEEDED payment always has one (table CHECK)
            raise ValueError(f"payment {payment.payment_id} succeeded without a transaction")
        await self._gateway.refund(str(payment.order_id), transaction_id, payment.amount)
        return payment.refunded(now)

    @staticmethod
    async def _answer(uow: UnitOfWork, payment: Payment, saga_id: UUID, cause: Cause) -> None:
        """The charge reply for a decided payment (none while it is in doubt)."""
        if payment.status is PaymentStatus.SUCCEEDED:
            await uow.replies.processed(payment, saga_id=saga_id, cause=cause)
        elif payment.status is PaymentStatus.FAILED:
            await uow.replies.failed(payment, saga_id=saga_id, cause=cause)
