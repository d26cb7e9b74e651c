"""The payment of an order and its state machine.

There is at most one payment per order (the table's ``order_id`` is unique), so "at
most one successful charge per order" holds by construction; its status says where
the order's money stands::

    PENDING ──approved──▶ SUCCEEDED ──refund──▶ REFUNDED
       │ ├───declined───▶ FAILED
       │ └───void───────▶ VOIDED       (refund requested while the charge was in doubt)
    (no payment) ─refund─▶ VOIDED      (the order was closed before any charge request)

PENDING means "the gateway was asked and did not answer" (``tok_timeout``): the
money is in doubt. It is settled by the saga's compensation (void) or, if that
never comes, by the reconciliation job; neither ever lets it succeed later without
the charge being seen and, when the order is closed, refunded.

``closed_at`` records that the saga's compensation (``payments.refund_requested``)
was handled: from then on the order is closed for payment and a late or
redelivered ``payments.requested`` charges nothing and answers nothing, because
the saga already has its final word (``payments.refunded``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import Enum, StrEnum
from uuid import UUID

from handwritten.payment.domain.money import ZERO

#: Used when a command carries no payment method token (DESIGN §4: tok_visa is the default).
DEFAULT_PAYMENT_TOKEN = "tok_visa"  # noqa: S105 - a simulated gateway token, not a secret


class PaymentStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"
    VOIDED = "VOIDED"


class FailureReason(StrEnum):
    """Why a charge failed (the ``reason`` of payments.failed)."""

    DECLINED = "DECLINED"
    GATEWAY_ERROR = "GATEWAY_ERROR"
    INVALID_PAYMENT_METHOD = "INVALID_PAYMENT_METHOD"


class RefundOutcome(StrEnum):
    """What the compensation did (the ``outcome`` of payments.refunded)."""

    REFUNDED = "REFUNDED"
    NOTHING_TO_REFUND = "NOTHING_TO_REFUND"


class IllegalTransitionError(ValueError):
    """A status change the state machine does not allow (a programming error)."""


# ---------------------------------------------------------------- gateway answers


@dataclass(frozen=True)
class Approved:
    """The gateway took the money."""

    transaction_id: str


@dataclass(frozen=True)
class Declined:
    """The gateway refused (or could not take) the money; nothing was charged."""

    reason: FailureReason
    message: str


@dataclass(frozen=True)
class NoAnswer:
    """The gateway did not answer in time: whether money was taken is unknown."""


ChargeResult = Approved | Declined | NoAnswer

#: How an in-doubt charge is settled when nobody knows whether it went through.
GATEWAY_SILENT = Declined(
    FailureReason.GATEWAY_ERROR,
    "The payment gateway did not answer; the charge was canceled and nothing was taken.",
)


# ---------------------------------------------------------------------- commands


@dataclass(frozen=True)
class ChargeCommand:
    """payments.requested: charge ``amount`` of the order with ``token``."""

    saga_id: UUID
    order_id: UUID
    user_id: UUID
    amount: Decimal
    token: str
    requested_at: datetime


@dataclass(frozen=True)
class RefundCommand:
    """payments.refund_requested: give back (or void) whatever the order was charged."""

    saga_id: UUID
    order_id: UUID
    payment_id: UUID | None
    amount: Decimal
    reason: str


def effective_token(token: str | None) -> str:
    """The token to charge with: the given one, or the default when absent or blank."""
    if token is None or not token.strip():
        return DEFAULT_PAYMENT_TOKEN
    return token


def reject_invalid(command: ChargeCommand) -> Declined | None:
    """A charge never sent to the gateway because it cannot be right, else ``None``."""
    if command.amount <= 0:
        # The gateway would refuse it; failing here keeps a bug upstream from looking
        # like a card problem and is answered like any gateway refusal.
        return Declined(FailureReason.GATEWAY_ERROR, "The amount to charge must be positive.")
    return None


# ----------------------------------------------------------------------- payment


@dataclass(frozen=True)
class Payment:
    """The (only) payment of one order."""

    payment_id: UUID
    order_id: UUID
    saga_id: UUID
    #: ``None`` only for a payment created closed by a refund request (never requested).
    user_id: UUID | None
    amount: Decimal
    status: PaymentStatus
    payment_method: str | None
    #: When the charge was requested; ``None`` if it never was.
    requested_at: datetime | None
    gateway_transaction_id: str | None = None
    failure_reason: FailureReason | None = None
    failure_message: str | None = None
    #: When the charge was decided (SUCCEEDED or FAILED).
    processed_at: datetime | None = None
    #: When the saga's compensation was handled (see the module docstring).
    closed_at: datetime | None = None
    #: The command event and correlation id that asked for the charge, so a reply
    #: sent later (by the reconciliation job) still belongs to the saga's trace.
    request_event_id: UUID | None = None
    correlation_id: str | None = None

    @classmethod
    def requested(
        cls,
        command: ChargeCommand,
        *,
        payment_id: UUID,
        request_event_id: UUID | None = None,
        correlation_id: str | None = None,
    ) -> Payment:
        """A new payment, PENDING until the gateway answers."""
        return cls(
            payment_id=payment_id,
            order_id=command.order_id,
            saga_id=command.saga_id,
            user_id=command.user_id,
            amount=command.amount,
            status=PaymentStatus.PENDING,
            payment_method=command.token,
            requested_at=command.requested_at,
            request_event_id=request_event_id,
            correlation_id=correlation_id,
        )

    @classmethod
    def closed_unrequested(
        cls, command: RefundCommand, *, payment_id: UUID, at: datetime
    ) -> Payment:
        """The order was closed before it was ever asked to pay: remember it, so a
        late charge request for it is refused (nothing is charged, ever)."""
        return cls(
            payment_id=payment_id,
            order_id=command.order_id,
            saga_id=command.saga_id,
            user_id=None,
            amount=ZERO,
            status=PaymentStatus.VOIDED,
            payment_method=None,
            requested_at=None,
            closed_at=at,
        )

    @property
    def was_requested(self) -> bool:
        """Whether a charge was ever requested (the replies then name this payment)."""
        return self.requested_at is not None

    @property
    def is_closed(self) -> bool:
        return self.closed_at is not None

    def settle(self, result: ChargeResult, at: datetime) -> Payment:
        """Apply the gateway's answer to a PENDING payment (no answer: still PENDING)."""
        self._require(PaymentStatus.PENDING, "settle")
        match result:
            case Approved(transaction_id):
                return replace(
                    self,
                    status=PaymentStatus.SUCCEEDED,
                    gateway_transaction_id=transaction_id,
                    processed_at=at,
                )
            case Declined(reason, message):
                return replace(
                    self,
                    status=PaymentStatus.FAILED,
                    failure_reason=reason,
                    failure_message=message,
                    processed_at=at,
                )
            case NoAnswer():
                return self

    def refunded(self, at: datetime) -> Payment:
        """The charged money went back to the customer."""
        self._require(PaymentStatus.SUCCEEDED, "refund")
        return replace(self, status=PaymentStatus.REFUNDED, closed_at=at)

    def voided(self, at: datetime) -> Payment:
        """An in-doubt charge was canceled before it could take any money."""
        self._require(PaymentStatus.PENDING, "void")
        return replace(self, status=PaymentStatus.VOIDED, closed_at=at)

    def closed(self, at: datetime) -> Payment:
        """A failed charge's compensation was answered (nothing to give back)."""
        self._require(PaymentStatus.FAILED, "close")
        if self.is_closed:
            raise IllegalTransitionError(f"payment of order {self.order_id} is already closed")
        return replace(self, closed_at=at)

    # What the replies say about this payment -----------------------------------

    @property
    def refund_outcome(self) -> RefundOutcome:
        if self.status is PaymentStatus.REFUNDED:
            return RefundOutcome.REFUNDED
        return RefundOutcome.NOTHING_TO_REFUND

    @property
    def refunded_amount(self) -> Decimal:
        """What the refund gave back: the charged amount, or 0.00 when nothing was."""
        return self.amount if self.status is PaymentStatus.REFUNDED else ZERO

    def same_charge(self, command: ChargeCommand) -> bool:
        """Whether ``command`` asks for the charge this payment records."""
        return (
            self.was_requested
            and self.amount == command.amount
            and self.payment_method == command.token
            and self.user_id == command.user_id
        )

    def _require(self, status: PaymentStatus, action: str) -> None:
        if self.status is not status:
            raise IllegalTransitionError(
                f"cannot {action} the payment of order {self.order_id}: it is {self.status}"
            )


# --------------------------------------------------------------------- decisions


class OnRequest(Enum):
    """What a payments.requested does, given the order's payment."""

    #: The first request: ask the gateway (the only path that ever charges).
    CHARGE = "charge"
    #: Already decided: answer the same outcome again (same paymentId), charge nothing.
    REPEAT_OUTCOME = "repeat_outcome"
    #: The gateway never answered: still in doubt, settled by a refund request or the
    #: reconciliation job; asking again could only add doubt, so nothing is done.
    IN_DOUBT = "in_doubt"
    #: The order's compensation was handled: charge nothing, answer nothing.
    CLOSED = "closed"


def on_request(payment: Payment, *, first: bool) -> OnRequest:
    """Decide a charge request on the order's (locked) payment; ``first`` when the
    request just created it."""
    if first:
        return OnRequest.CHARGE
    if payment.is_closed:
        return OnRequest.CLOSED
    if payment.status is PaymentStatus.PENDING:
        return OnRequest.IN_DOUBT
    if payment.status in (PaymentStatus.SUCCEEDED, PaymentStatus.FAILED):
        return OnRequest.REPEAT_OUTCOME
    # REFUNDED and VOIDED are always closed; reaching here means a broken row.
    raise IllegalTransitionError(f"payment of order {payment.order_id} is {payment.status}")


class OnRefund(Enum):
    """What a payments.refund_requested does to an existing payment of the order."""

    #: SUCCEEDED: give the money back (once).
    REFUND = "refund"
    #: PENDING: cancel the in-doubt charge at the gateway; if it had in fact gone
    #: through, record it (payments.processed) and refund it at once.
    VOID = "void"
    #: FAILED: nothing was charged; close the order for payment.
    CLOSE = "close"
    #: Already closed: answer the same outcome again, do nothing.
    REPEAT_OUTCOME = "repeat_outcome"


def on_refund(payment: Payment) -> OnRefund:
    """Decide a refund request on the order's (locked) payment."""
    if payment.is_closed:
        return OnRefund.REPEAT_OUTCOME
    match payment.status:
        case PaymentStatus.SUCCEEDED:
            return OnRefund.REFUND
        case PaymentStatus.PENDING:
            return OnRefund.VOID
        case PaymentStatus.FAILED:
            return OnRefund.CLOSE
        case _:
            raise IllegalTransitionError(
                f"payment of order {payment.order_id} is {payment.status} but not closed"
            )
