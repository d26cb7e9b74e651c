"""The payment use cases against in-memory fakes of the ports (no database, no Kafka).

The fakes keep the PostgreSQL adapters' contract (one payment per order, ``claim``
returns the existing one) and record every reply, so these tests pin what is
charged, refunded and answered for first, repeated and late commands.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from handwritten.payment.domain.payments import (
    Approved,
    ChargeCommand,
    ChargeResult,
    Declined,
    FailureReason,
    NoAnswer,
    Payment,
    PaymentStatus,
    RefundCommand,
)
from handwritten.payment.service_layer.payments import (
    PaymentService,
    RefundResult,
    RequestOutcome,
)
from handwritten.payment.service_layer.ports import (
    Cause,
    PaymentGateway,
    PaymentReplies,
    PaymentRepository,
    UnitOfWork,
)

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

ANSWERS: dict[str, ChargeResult] = {
    "tok_visa": Approved("sim_visa"),
    "tok_chargeDeclined": Declined(FailureReason.DECLINED, "declined"),
    "tok_timeout": NoAnswer(),
}


@dataclass
class Reply:
    kind: str
    payment: Payment
    saga_id: uuid.UUID
    cause: Cause


@dataclass
class FakeStore(PaymentRepository, PaymentReplies, UnitOfWork):
    """Repository, replies and unit of work in one, over dicts and a list."""

    now_value: datetime = T0
    rows: dict[uuid.UUID, Payment] = field(default_factory=dict)
    created: dict[uuid.UUID, datetime] = field(default_factory=dict)
    sent: list[Reply] = field(default_factory=list)

    @property
    def payments(self) -> PaymentRepository:
        return self

    @property
    def replies(self) -> PaymentReplies:
        return self

    async def claim(self, new: Payment) -> tuple[Payment, bool]:
        if new.order_id in self.rows:
            return self.rows[new.order_id], False
        self.rows[new.order_id] = new
        self.created[new.order_id] = self.now_value
        return new, True

    async def save(self, payment: Payment) -> None:
        assert payment.order_id in self.rows
        self.rows[payment.order_id] = payment

    async def lock_stale_pending(self, older_than: timedelta, limit: int) -> list[Payment]:
        due = [
            payment
            for order_id, payment in self.rows.items()
            if payment.status is PaymentStatus.PENDING
            and self.created[order_id] < self.now_value - older_than
        ]
        return due[:limit]

    async def now(self) -> datetime:
        return self.now_value

    async def processed(self, payment: Payment, *, saga_id: uuid.UUID, cause: Cause) -> None:
        self.sent.append(Reply("processed", payment, saga_id, cause))

    async def failed(self, payment: Payment, *, saga_id: uuid.UUID, cause: Cause) -> None:
        self.sent.append(Reply("failed", payment, saga_id, cause))

    async def refunded(self, payment: Payment, *, saga_id: uuid.UUID, cause: Cause) -> None:
        self.sent.append(Reply("refunded", payment, saga_id, cause))

    def kinds(self) -> list[str]:
        return [reply.kind for reply in self.sent]


@dataclass
class FakeGateway(PaymentGateway):
    """Answers by token; ``captured_in_doubt`` says whether a silent charge took money."""

    captured_in_doubt: Approved | None = None
    charges: list[str] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)
    refunds: list[tuple[str, str, Decimal]] = field(default_factory=list)

    async def charge(self, key: str, amount: Decimal, token: str) -> ChargeResult:
        self.charges.append(key)
        return ANSWERS.get(token, Declined(FailureReason.INVALID_PAYMENT_METHOD, "invalid"))

    async def settle_in_doubt(self, key: str) -> Approved | None:
        self.settled.append(key)
        return self.captured_in_doubt

    async def refund(self, key: str, transaction_id: str, amount: Decimal) -> None:
        self.refunds.append((key, transaction_id, amount))


def command(token: str = "tok_visa", *, order_id: uuid.UUID | None = None) -> ChargeCommand:
    return ChargeCommand(
        saga_id=uuid.uuid4(),
        order_id=order_id or uuid.uuid4(),
        user_id=uuid.uuid4(),
        amount=Decimal("99.90"),
        token=token,
        requested_at=T0,
    )


def refund(order_id: uuid.UUID, saga_id: uuid.UUID | None = None) -> RefundCommand:
    return RefundCommand(
        saga_id=saga_id or uuid.uuid4(),
        order_id=order_id,
        payment_id=None,
        amount=Decimal("99.90"),
        reason="PAYMENT_TIMEOUT",
    )


def cause() -> Cause:
    return Cause(uuid.uuid4(), f"corr-{uuid.uuid4().hex[:8]}")


def setup() -> tuple[PaymentService, FakeStore, FakeGateway]:
    gateway = FakeGateway()
    return PaymentService(gateway), FakeStore(), gateway


# ------------------------------------------------------------------------ charges


async def test_tok_visa_is_charged_once_and_answered_processed() -> None:
    service, store, gateway = setup()
    asked = command()
    first = cause()
    assert await service.request_payment(store, asked, first) is RequestOutcome.SUCCEEDED
    payment = store.rows[asked.order_id]
    assert payment.status is PaymentStatus.SUCCEEDED
    assert payment.gateway_transaction_id == "sim_visa"
    assert store.kinds() == ["processed"]
    assert store.sent[0].cause == first and store.sent[0].saga_id == asked.saga_id
    assert gateway.charges == [str(asked.order_id)]


async def test_repeated_requests_answer_the_same_outcome_without_charging() -> None:
    service, store, gateway = setup()
    asked = command()
    await service.request_payment(store, asked, cause())
    for _ in range(4):
        assert await service.request_payment(store, asked, cause()) is RequestOutcome.REPEATED
    assert gateway.charges == [str(asked.order_id)]
    assert store.kinds() == ["processed"] * 5
    assert len({reply.payment for reply in store.sent}) == 1  # same paymentId, same facts


async def test_a_different_request_for_a_charged_order_gets_its_outcome_not_a_charge() -> None:
    service, store, gateway = setup()
    asked = command()
    await service.request_payment(store, asked, cause())
    other = command("tok_chargeDeclined", order_id=asked.order_id)
    assert await service.request_payment(store, other, cause()) is RequestOutcome.REPEATED
    assert store.kinds() == ["processed", "processed"]
    assert len(gateway.charges) == 1


async def test_a_declined_charge_is_answered_failed_again_and_again() -> None:
    service, store, gateway = setup()
    asked = command("tok_chargeDeclined")
    assert await service.request_payment(store, asked, cause()) is RequestOutcome.DECLINED
    assert await service.request_payment(store, asked, cause()) is RequestOutcome.REPEATED
    assert store.kinds() == ["failed", "failed"]
    assert store.rows[asked.order_id].failure_reason is FailureReason.DECLINED
    assert len(gateway.charges) == 1


async def test_an_unknown_token_fails_as_an_invalid_payment_method() -> None:
    service, store, _ = setup()
    asked = command("tok_unknown")
    outcome = await service.request_payment(store, asked, cause())
    assert outcome is RequestOutcome.INVALID_PAYMENT_METHOD
    assert store.kinds() == ["failed"]


async def test_a_non_positive_amount_fails_without_reaching_the_gateway() -> None:
    service, store, gateway = setup()
    asked = command()
    asked = ChargeCommand(**{**asked.__dict__, "amount": Decimal("0.00")})
    assert await service.request_payment(store, asked, cause()) is RequestOutcome.GATEWAY_ERROR
    assert gateway.charges == []
    assert store.kinds() == ["failed"]


async def test_tok_timeout_answers_nothing_and_is_never_asked_again() -> None:
    service, store, gateway = setup()
    asked = command("tok_timeout")
    assert await service.request_payment(store, asked, cause()) is RequestOutcome.NO_ANSWER
    assert await service.request_payment(store, asked, cause()) is RequestOutcome.IN_DOUBT
    assert store.rows[asked.order_id].status is PaymentStatus.PENDING
    assert store.sent == []
    assert len(gateway.charges) == 1


# ------------------------------------------------------------------------ refunds


async def test_refund_after_success_refunds_once_and_repeats_the_answer() -> None:
    service, store, gateway = setup()
    asked = command()
    await service.request_payment(store, asked, cause())
    back = refund(asked.order_id, asked.saga_id)
    assert await service.request_refund(store, back, cause()) is RefundResult.REFUNDED
    assert await service.request_refund(store, back, cause()) is RefundResult.REPEATED
    assert gateway.refunds == [(str(asked.order_id), "sim_visa", Decimal("99.90"))]
    assert store.kinds() == ["processed", "refunded", "refunded"]
    first, second = store.sent[1].payment, store.sent[2].payment
    assert first == second and first.status is PaymentStatus.REFUNDED


async def test_a_refund_before_any_request_closes_the_order_for_late_requests() -> None:
    service, store, gateway = setup()
    order_id = uuid.uuid4()
    assert await service.request_refund(store, refund(order_id), cause()) is (
        RefundResult.NOTHING_TO_REFUND
    )
    closed = store.rows[order_id]
    assert closed.status is PaymentStatus.VOIDED and not closed.was_requested
    late = command(order_id=order_id)
    assert await service.request_payment(store, late, cause()) is RequestOutcome.CLOSED
    assert gateway.charges == []
    assert store.kinds() == ["refunded"]  # the late request is not answered


async def test_a_refund_of_a_charge_in_doubt_voids_it_at_the_gateway() -> None:
    service, store, gateway = setup()
    asked = command("tok_timeout")
    await service.request_payment(store, asked, cause())
    outcome = await service.request_refund(store, refund(asked.order_id), cause())
    assert outcome is RefundResult.NOTHING_TO_REFUND
    assert gateway.settled == [str(asked.order_id)]
    assert store.rows[asked.order_id].status is PaymentStatus.VOIDED
    assert store.kinds() == ["refunded"]
    assert store.sent[0].payment.was_requested  # the reply names the voided payment
    # The saga's request, redelivered late, charges nothing.
    assert await service.request_payment(store, asked, cause()) is RequestOutcome.CLOSED
    assert len(gateway.charges) == 1


async def test_a_charge_in_doubt_that_went_through_is_shown_then_refunded() -> None:
    service, store, gateway = setup()
    asked = command("tok_timeout")
    await service.request_payment(store, asked, cause())
    gateway.captured_in_doubt = Approved("sim_late")
    outcome = await service.request_refund(store, refund(asked.order_id), cause())
    assert outcome is RefundResult.REFUNDED
    assert store.kinds() == ["processed", "refunded"]
    assert gateway.refunds == [(str(asked.order_id), "sim_late", Decimal("99.90"))]
    assert store.rows[asked.order_id].status is PaymentStatus.REFUNDED


async def test_a_refund_after_a_failure_has_nothing_to_refund_and_closes_the_order() -> None:
    service, store, gateway = setup()
    asked = command("tok_chargeDeclined")
    await service.request_payment(store, asked, cause())
    back = refund(asked.order_id)
    assert await service.request_refund(store, back, cause()) is RefundResult.NOTHING_TO_REFUND
    assert await service.request_refund(store, back, cause()) is RefundResult.REPEATED
    assert await service.request_payment(store, asked, cause()) is RequestOutcome.CLOSED
    assert store.kinds() == ["failed", "refunded", "refunded"]
    assert gateway.refunds == []


# ----------------------------------------------------------------- reconciliation


async def test_reconciliation_cancels_stale_charges_in_doubt_and_answers_failed() -> None:
    service, store, gateway = setup()
    asked = command("tok_timeout")
    request = cause()
    await service.request_payment(store, asked, request)
    fresh = command("tok_timeout")
    store.now_value = T0 + timedelta(seconds=90)
    await service.request_payment(store, fresh, cause())

    settled = await service.reconcile(store, older_than=timedelta(seconds=60), limit=10)

    assert [item.payment.order_id for item in settled] == [asked.order_id]
    payment = store.rows[asked.order_id]
    assert payment.status is PaymentStatus.FAILED
    assert payment.failure_reason is FailureReason.GATEWAY_ERROR
    assert store.rows[fresh.order_id].status is PaymentStatus.PENDING  # not stale yet
    assert store.kinds() == ["failed"]
    # The late answer still belongs to the saga's trace: caused by the original request.
    assert store.sent[0].cause == request and store.sent[0].saga_id == asked.saga_id
    assert gateway.settled == [str(asked.order_id)]


async def test_reconciliation_records_a_charge_that_did_go_through() -> None:
    service, store, gateway = setup()
    asked = command("tok_timeout")
    await service.request_payment(store, asked, cause())
    gateway.captured_in_doubt = Approved("sim_late")
    store.now_value = T0 + timedelta(minutes=5)
    settled = await service.reconcile(store, older_than=timedelta(seconds=60), limit=10)
    assert [item.outcome for item in settled] == ["succeeded"]
    assert store.rows[asked.order_id].gateway_transaction_id == "sim_late"
    assert store.kinds() == ["processed"]
