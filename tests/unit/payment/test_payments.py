"""The payment domain: state machine, decisions on repeated and late commands, money."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from handwritten.payment.domain.money import format_amount, parse_amount
from handwritten.payment.domain.payments import (
    GATEWAY_SILENT,
    Approved,
    ChargeCommand,
    Declined,
    FailureReason,
    IllegalTransitionError,
    NoAnswer,
    OnRefund,
    OnRequest,
    Payment,
    PaymentStatus,
    RefundCommand,
    RefundOutcome,
    effective_token,
    on_refund,
    on_request,
    reject_invalid,
)

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
T1 = datetime(2030, 1, 1, 12, 1, tzinfo=UTC)


def charge(amount: str = "120.50", token: str = "tok_visa") -> ChargeCommand:
    return ChargeCommand(
        saga_id=uuid.uuid4(),
        order_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        amount=Decimal(amount),
        token=token,
        requested_at=T0,
    )


def pending(command: ChargeCommand | None = None) -> Payment:
    return Payment.requested(command or charge(), payment_id=uuid.uuid4())


def refund_of(order_id: uuid.UUID) -> RefundCommand:
    return RefundCommand(
        saga_id=uuid.uuid4(),
        order_id=order_id,
        payment_id=None,
        amount=Decimal("120.50"),
        reason="PAYMENT_TIMEOUT",
    )


# ------------------------------------------------------------------- transitions


def test_a_requested_payment_is_pending_with_the_command_values() -> None:
    command = charge()
    event_id = uuid.uuid4()
    payment = Payment.requested(
        command, payment_id=uuid.uuid4(), request_event_id=event_id, correlation_id="c-1"
    )
    assert payment.status is PaymentStatus.PENDING
    assert (payment.order_id, payment.user_id, payment.amount) == (
        command.order_id,
        command.user_id,
        command.amount,
    )
    assert payment.payment_method == "tok_visa"
    assert payment.was_requested and not payment.is_closed
    assert (payment.request_event_id, payment.correlation_id) == (event_id, "c-1")


def test_an_approval_makes_it_succeeded_with_the_transaction() -> None:
    payment = pending().settle(Approved("sim_1"), T1)
    assert payment.status is PaymentStatus.SUCCEEDED
    assert payment.gateway_transaction_id == "sim_1"
    assert payment.processed_at == T1
    assert payment.failure_reason is None


def test_a_refusal_makes_it_failed_with_reason_and_message() -> None:
    payment = pending().settle(Declined(FailureReason.DECLINED, "no"), T1)
    assert payment.status is PaymentStatus.FAILED
    assert (payment.failure_reason, payment.failure_message) == (FailureReason.DECLINED, "no")
    assert payment.processed_at == T1
    assert payment.gateway_transaction_id is None


def test_no_answer_leaves_it_pending() -> None:
    payment = pending()
    assert payment.settle(NoAnswer(), T1) == payment


def test_the_silent_gateway_settlement_is_a_gateway_error() -> None:
    payment = pending().settle(GATEWAY_SILENT, T1)
    assert payment.status is PaymentStatus.FAILED
    assert payment.failure_reason is FailureReason.GATEWAY_ERROR


def test_only_a_pending_payment_is_settled() -> None:
    succeeded = pending().settle(Approved("sim_1"), T0)
    with pytest.raises(IllegalTransitionError):
        succeeded.settle(Approved("sim_2"), T1)  # never a second charge
    with pytest.raises(IllegalTransitionError):
        succeeded.settle(Declined(FailureReason.DECLINED, "no"), T1)


def test_refund_only_from_succeeded_and_it_closes_the_payment() -> None:
    refunded = pending().settle(Approved("sim_1"), T0).refunded(T1)
    assert refunded.status is PaymentStatus.REFUNDED
    assert refunded.closed_at == T1 and refunded.is_closed
    assert refunded.refund_outcome is RefundOutcome.REFUNDED
    assert refunded.refunded_amount == Decimal("120.50")
    with pytest.raises(IllegalTransitionError):
        refunded.refunded(T1)  # refunded once
    with pytest.raises(IllegalTransitionError):
        pending().refunded(T1)


def test_void_only_from_pending_and_nothing_is_refunded() -> None:
    voided = pending().voided(T1)
    assert voided.status is PaymentStatus.VOIDED and voided.closed_at == T1
    assert voided.refund_outcome is RefundOutcome.NOTHING_TO_REFUND
    assert voided.refunded_amount == Decimal("0.00")
    with pytest.raises(IllegalTransitionError):
        pending().settle(Approved("sim_1"), T0).voided(T1)  # money taken: refund, not void


def test_closing_a_failed_payment_keeps_its_failure() -> None:
    failed = pending().settle(Declined(FailureReason.DECLINED, "no"), T0)
    closed = failed.closed(T1)
    assert closed.status is PaymentStatus.FAILED and closed.closed_at == T1
    assert closed.refund_outcome is RefundOutcome.NOTHING_TO_REFUND
    with pytest.raises(IllegalTransitionError):
        closed.closed(T1)
    with pytest.raises(IllegalTransitionError):
        pending().closed(T1)


def test_an_order_closed_before_any_request_is_a_voided_unrequested_payment() -> None:
    order_id = uuid.uuid4()
    closed = Payment.closed_unrequested(refund_of(order_id), payment_id=uuid.uuid4(), at=T1)
    assert closed.order_id == order_id
    assert closed.status is PaymentStatus.VOIDED and closed.is_closed
    assert not closed.was_requested and closed.user_id is None
    assert closed.refunded_amount == Decimal("0.00")


# ------------------------------------------------------------- charge decisions


def test_only_the_request_that_created_the_payment_charges() -> None:
    assert on_request(pending(), first=True) is OnRequest.CHARGE


@pytest.mark.parametrize(
    "result", [Approved("sim_1"), Declined(FailureReason.DECLINED, "no")], ids=str
)
def test_a_decided_payment_answers_the_same_outcome_again(result: Approved | Declined) -> None:
    assert on_request(pending().settle(result, T0), first=False) is OnRequest.REPEAT_OUTCOME


def test_a_payment_in_doubt_is_not_charged_again() -> None:
    assert on_request(pending(), first=False) is OnRequest.IN_DOUBT


def test_a_closed_order_is_never_charged_and_not_answered() -> None:
    succeeded = pending().settle(Approved("sim_1"), T0)
    failed = pending().settle(Declined(FailureReason.DECLINED, "no"), T0)
    closed = [
        succeeded.refunded(T1),
        pending().voided(T1),
        failed.closed(T1),
        Payment.closed_unrequested(refund_of(uuid.uuid4()), payment_id=uuid.uuid4(), at=T1),
    ]
    for payment in closed:
        assert on_request(payment, first=False) is OnRequest.CLOSED, payment.status


# ------------------------------------------------------------- refund decisions


def test_refund_decisions_by_state() -> None:
    assert on_refund(pending().settle(Approved("sim_1"), T0)) is OnRefund.REFUND
    assert on_refund(pending()) is OnRefund.VOID
    failed = pending().settle(Declined(FailureReason.DECLINED, "no"), T0)
    assert on_refund(failed) is OnRefund.CLOSE


def test_a_repeated_refund_answers_the_same_outcome_again() -> None:
    for closed in (
        pending().settle(Approved("sim_1"), T0).refunded(T1),
        pending().voided(T1),
        pending().settle(Declined(FailureReason.DECLINED, "no"), T0).closed(T1),
    ):
        assert on_refund(closed) is OnRefund.REPEAT_OUTCOME


def test_a_broken_state_is_refused_not_guessed() -> None:
    broken = replace(pending(), status=PaymentStatus.REFUNDED)  # refunded but not closed
    with pytest.raises(IllegalTransitionError):
        on_refund(broken)
    with pytest.raises(IllegalTransitionError):
        on_request(broken, first=False)


# ------------------------------------------------------------- commands, money


def test_same_charge_compares_amount_token_and_user() -> None:
    command = charge()
    payment = pending(command)
    assert payment.same_charge(command)
    assert not payment.same_charge(replace(command, amount=Decimal("1.00")))
    assert not payment.same_charge(replace(command, token="tok_chargeDeclined"))


def test_the_default_token_is_tok_visa() -> None:
    assert effective_token(None) == "tok_visa"
    assert effective_token("  ") == "tok_visa"
    assert effective_token("tok_chargeDeclined") == "tok_chargeDeclined"


def test_a_non_positive_amount_is_refused_before_the_gateway() -> None:
    assert reject_invalid(charge("10.00")) is None
    for amount in ("0.00", "-5.00"):
        refused = reject_invalid(charge(amount))
        assert refused is not None and refused.reason is FailureReason.GATEWAY_ERROR


def test_amounts_are_exact_with_two_places() -> None:
    assert parse_amount("49.90") == Decimal("49.90")
    assert format_amount(Decimal("49.9")) == "49.90"
    assert format_amount(Decimal("0")) == "0.00"
    for bad in ("49.9", "49", "4e2", "49.901", ""):
        with pytest.raises(ValueError):
            parse_amount(bad)
    with pytest.raises(ValueError):
        format_amount(Decimal("0.001"))  # never rounded silently
