"""The reconciliation job on real PostgreSQL and Kafka: a payment left in doubt (the
gateway never answered and no refund request came) is settled after the pending
timeout and answered, in the saga's trace; nothing stays PENDING."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.payment.conftest import (
    Payments,
    event_id,
    order_of,
    running_payments,
    topics,
)


@pytest.fixture(scope="module")
async def payments(kafka_bootstrap: str) -> AsyncIterator[Payments]:
    async with running_payments(
        kafka_bootstrap,
        "test_payment_recon",
        payment_pending_timeout_seconds=1.0,
        payment_reconcile_interval_seconds=0.2,
    ) as started:
        yield started


async def test_a_charge_left_in_doubt_is_settled_as_failed(payments: Payments) -> None:
    command = payments.charge("tok_timeout")
    order_id = order_of(command)
    await payments.send(command)

    [reply] = await payments.wait_replies(order_id, 1)

    assert reply.spec.topic == "payments.failed"
    assert reply.payload.reason.value == "GATEWAY_ERROR"
    # Caused by the original command and correlated with its saga, though sent later.
    assert reply.headers.causation_id == event_id(command)
    assert reply.headers.correlation_id == payments.correlation
    [row] = await payments.payment_rows(order_id)
    assert row["status"] == "FAILED" and row["failure_reason"] == "GATEWAY_ERROR"
    job = payments.runtime.reconciliation
    assert job is not None and job.settled >= 1
    gateway = payments.runtime.gateway
    assert gateway is not None and gateway.captures[str(order_id)] == 0


async def test_a_settled_payment_is_closed_by_the_sagas_refund_afterwards(
    payments: Payments,
) -> None:
    command = payments.charge("tok_timeout")
    order_id = order_of(command)
    await payments.send(command)
    await payments.wait_replies(order_id, 1)  # settled as failed by the job

    refund = payments.refund(order_id)
    await payments.send(refund)
    replies = await payments.wait_replies(order_id, 2)

    assert topics(replies) == ["payments.failed", "payments.refunded"]
    assert replies[1].payload.outcome.value == "NOTHING_TO_REFUND"
    [row] = await payments.payment_rows(order_id)
    assert row["status"] == "FAILED" and row["closed_at"] is not None
