"""The simulated gateway: answers per test token, chaos rate, timeout, idempotency keys."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from handwritten.payment.adapters.gateway import (
    SILENCE,
    InstrumentedGateway,
    SimulatedGateway,
    failure_roll,
    simulated_answer,
)
from handwritten.payment.domain.payments import Approved, Declined, FailureReason, NoAnswer
from handwritten.runtime.metrics import REGISTRY

AMOUNT = Decimal("10.00")


def gateway(*, timeout_seconds: float = 0.05, failure_rate: float = 0.0) -> SimulatedGateway:
    return SimulatedGateway(
        delay_seconds=0.0,
        timeout_seconds=timeout_seconds,
        failure_rate=failure_rate,
        rng=random.Random(7),
    )


# ------------------------------------------------------------------ pure answers


def test_tok_visa_is_approved_with_the_transaction_id() -> None:
    answer = simulated_answer("tok_visa", roll=0.5, failure_rate=0.0, transaction_id="sim_1")
    assert answer == Approved("sim_1")


def test_tok_visa_fails_with_a_gateway_error_within_the_chaos_rate() -> None:
    failing = simulated_answer("tok_visa", roll=0.09, failure_rate=0.1, transaction_id="t")
    passing = simulated_answer("tok_visa", roll=0.1, failure_rate=0.1, transaction_id="t")
    assert isinstance(failing, Declined) and failing.reason is FailureReason.GATEWAY_ERROR
    assert passing == Approved("t")


def test_tok_charge_declined_is_declined_whatever_the_roll() -> None:
    for roll in (0.0, 0.99):
        answer = simulated_answer(
            "tok_chargeDeclined", roll=roll, failure_rate=0.0, transaction_id="t"
        )
        assert isinstance(answer, Declined) and answer.reason is FailureReason.DECLINED


def test_tok_timeout_is_never_answered() -> None:
    assert (
        simulated_answer("tok_timeout", roll=0.5, failure_rate=0.0, transaction_id="t") is SILENCE
    )


@pytest.mark.parametrize("token", ["tok_mastercard", "TOK_VISA", "tok_visa ", "x"])
def test_unknown_tokens_are_an_invalid_payment_method(token: str) -> None:
    answer = simulated_answer(token, roll=0.5, failure_rate=0.0, transaction_id="t")
    assert isinstance(answer, Declined)
    assert answer.reason is FailureReason.INVALID_PAYMENT_METHOD


# ------------------------------------------------------------------ the adapter


async def test_a_repeated_key_gets_the_first_answer_without_a_new_charge() -> None:
    simulated = gateway()
    first = await simulated.charge("order-1", AMOUNT, "tok_visa")
    again = await simulated.charge("order-1", AMOUNT, "tok_visa")
    assert isinstance(first, Approved) and again == first
    assert simulated.calls["order-1"] == 2
    assert simulated.captures["order-1"] == 1
    other = await simulated.charge("order-2", AMOUNT, "tok_visa")
    assert isinstance(other, Approved) and other.transaction_id != first.transaction_id


async def test_tok_timeout_waits_for_the_client_timeout_and_takes_nothing() -> None:
    simulated = gateway(timeout_seconds=0.02)
    assert await simulated.charge("order-1", AMOUNT, "tok_timeout") == NoAnswer()
    assert simulated.captures["order-1"] == 0


async def test_settling_an_unanswered_charge_cancels_it_for_good() -> None:
    simulated = gateway()
    assert await simulated.charge("order-1", AMOUNT, "tok_timeout") == NoAnswer()
    assert await simulated.settle_in_doubt("order-1") is None
    # Even a retried charge with that key can no longer take money.
    late = await simulated.charge("order-1", AMOUNT, "tok_visa")
    assert isinstance(late, Declined)
    assert simulated.captures["order-1"] == 0


async def test_settling_a_charge_that_went_through_reports_it() -> None:
    simulated = gateway()
    approved = await simulated.charge("order-1", AMOUNT, "tok_visa")
    assert await simulated.settle_in_doubt("order-1") == approved


async def test_refunds_are_idempotent_per_key() -> None:
    simulated = gateway()
    approved = await simulated.charge("order-1", AMOUNT, "tok_visa")
    assert isinstance(approved, Approved)
    await simulated.refund("order-1", approved.transaction_id, AMOUNT)
    await simulated.refund("order-1", approved.transaction_id, AMOUNT)
    assert simulated.refunds["order-1"] == 1


async def test_a_full_chaos_rate_fails_every_visa_charge() -> None:
    simulated = gateway(failure_rate=1.0)
    answer = await simulated.charge("order-1", AMOUNT, "tok_visa")
    assert isinstance(answer, Declined) and answer.reason is FailureReason.GATEWAY_ERROR


def test_the_chaos_roll_is_a_stable_uniform_share_of_order_ids() -> None:
    keys = [f"{i:08x}-0000-4000-8000-000000000000" for i in range(2000)]
    rolls = [failure_roll(key) for key in keys]
    assert rolls == [failure_roll(key) for key in keys]
    assert all(0.0 <= roll < 1.0 for roll in rolls)
    share = sum(roll < 0.3 for roll in rolls) / len(rolls)
    assert 0.25 < share < 0.35, share


async def test_which_orders_fail_depends_on_the_order_not_on_the_instance() -> None:
    keys = [f"order-{i}" for i in range(40)]
    fates = []
    for seed in (1, 2):
        simulated = SimulatedGateway(
            delay_seconds=0.0, timeout_seconds=0.05, failure_rate=0.5, rng=random.Random(seed)
        )
        answers = [await simulated.charge(k, AMOUNT, "tok_visa") for k in keys]
        fates.append([isinstance(answer, Declined) for answer in answers])
    assert fates[0] == fates[1] == [failure_roll(k) < 0.5 for k in keys]
    assert 0 < sum(fates[0]) < len(keys)


def test_the_chaos_rate_is_a_probability() -> None:
    with pytest.raises(ValueError):
        gateway(failure_rate=1.5)


async def test_the_instrumented_gateway_times_charges_by_result() -> None:
    def seen() -> float:
        value = REGISTRY.get_sample_value(
            "payment_gateway_duration_seconds_count",
            {"operation": "charge", "result": "declined"},
        )
        return value or 0.0

    before = seen()
    instrumented = InstrumentedGateway(gateway())
    answer = await instrumented.charge("order-1", AMOUNT, "tok_chargeDeclined")
    assert isinstance(answer, Declined)
    assert seen() == before + 1
