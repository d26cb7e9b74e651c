"""The saga replies as generated event payloads, written to the outbox."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from uuid import UUID

import asyncpg

from generated.models.events import (
    PaymentFailedPayload,
    PaymentFailureReason,
    PaymentProcessedPayload,
    PaymentRefundedPayload,
    RefundOutcome,
)
from generated.services.payment.events import SERVICE_NAME, PaymentEventPublisher
from handwritten.payment.domain.money import format_amount
from handwritten.payment.domain.payments import Payment
from handwritten.payment.service_layer.ports import Cause, PaymentReplies
from handwritten.runtime.context import correlation_id
from handwritten.runtime.outbox import OutboxSender


@contextlib.contextmanager
def _correlated(cause: Cause) -> Iterator[None]:
    """Headers carry the cause's correlation id (the saga's), also from a background job."""
    if cause.correlation_id is None:
        yield
        return
    token = correlation_id.set(cause.correlation_id)
    try:
        yield
    finally:
        correlation_id.reset(token)


def _causation(cause: Cause) -> str | None:
    return None if cause.event_id is None else str(cause.event_id)


def _user_id(payment: Payment) -> UUID:
    if payment.user_id is None:  # only never-requested payments lack one
        raise ValueError(f"payment {payment.payment_id} was never requested")
    return payment.user_id


class OutboxPaymentReplies(PaymentReplies):
    """Publishes the replies through the typed publisher over the outbox."""

    def __init__(self, publisher: PaymentEventPublisher) -> None:
        self._publisher = publisher

    @classmethod
    def on(cls, connection: asyncpg.Connection) -> OutboxPaymentReplies:
        """Replies written in the open transaction of ``connection``."""
        return cls(PaymentEventPublisher(OutboxSender(connection, SERVICE_NAME)))

    async def processed(self, payment: Payment, *, saga_id: UUID, cause: Cause) -> None:
        if payment.gateway_transaction_id is None or payment.processed_at is None:
            raise ValueError(f"payment {payment.payment_id} has not succeeded")
        payload = PaymentProcessedPayload(
            saga_id=saga_id,
            order_id=payment.order_id,
            payment_id=payment.payment_id,
            user_id=_user_id(payment),
            amount=format_amount(payment.amount),
            currency="BRL",
            gateway_transaction_id=payment.gateway_transaction_id,
            processed_at=payment.processed_at,
        )
        with _correlated(cause):
            await self._publisher.payments_processed(payload, causation_id=_causation(cause))

    async def failed(self, payment: Payment, *, saga_id: UUID, cause: Cause) -> None:
        if payment.failure_reason is None or payment.processed_at is None:
            raise ValueError(f"payment {payment.payment_id} has not failed")
        payload = PaymentFailedPayload(
            saga_id=saga_id,
            order_id=payment.order_id,
            payment_id=payment.payment_id,
            user_id=_user_id(payment),
            amount=format_amount(payment.amount),
            currency="BRL",
            reason=PaymentFailureReason(payment.failure_reason.value),
            message=payment.failure_message or "The payment failed.",
            failed_at=payment.processed_at,
        )
        with _correlated(cause):
            await self._publisher.payments_failed(payload, causation_id=_causation(cause))

    async def refunded(self, payment: Payment, *, saga_id: UUID, cause: Cause) -> None:
        if payment.closed_at is None:
            raise ValueError(f"payment {payment.payment_id} is not closed")
        payload = PaymentRefundedPayload(
            saga_id=saga_id,
            order_id=payment.order_id,
            # Absent when no payment ever existed for the order (closed unrequested).
            payment_id=payment.payment_id if payment.was_requested else None,
            outcome=RefundOutcome(payment.refund_outcome.value),
            amount=format_amount(payment.refunded_amount),
            currency="BRL",
            refunded_at=payment.closed_at,
        )
        with _correlated(cause):
            await self._publisher.payments_refunded(payload, causation_id=_causation(cause))
