"""The payment service driven through real Kafka: charges per test token, no double
charge under redelivery, refunds once, closed orders refuse late charges, poison
records are skipped. (Isolation and reply matching: see ``conftest``.)"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from aiokafka import AIOKafkaProducer

from generated.events.registry import PAYMENTS_REQUESTED
from handwritten.runtime.metrics import REGISTRY
from tests.integration.payment.conftest import (
    Payments,
    event_id,
    order_of,
    running_payments,
    topics,
    with_new_event_id,
)

#: How long "no reply" is watched for. An absence cannot be waited for as a
#: condition; the test first waits for the condition that makes it meaningful (the
#: command's handling committed and the outbox fully published), then watches
#: Kafka for this bounded time as the end-to-end confirmation.
SILENCE_SECONDS = 2.0


@pytest.fixture(scope="module")
async def payments(kafka_bootstrap: str) -> AsyncIterator[Payments]:
    async with running_payments(kafka_bootstrap, "test_payment_cmds") as started:
        yield started


async def assert_no_reply(payments: Payments, order_id: uuid.UUID) -> None:
    """Bounded absence (see ``SILENCE_SECONDS``): nothing in the outbox, nothing on Kafka."""
    assert await payments.outbox_rows(order_id) == 0
    await payments.settle()
    until = time.monotonic() + SILENCE_SECONDS
    while time.monotonic() < until:
        assert await payments.replies_for(order_id) == []
        assert payments.replies.by_order[order_id] == []  # from no payment instance at all
        await asyncio.sleep(0.1)


async def test_tok_visa_is_charged_once_and_answered_processed(payments: Payments) -> None:
    command = payments.charge("tok_visa", amount="249.90")
    order_id = order_of(command)
    await payments.send(command)

    replies = await payments.wait_replies(order_id, 1)

    assert topics(replies) == ["payments.processed"]
    [row] = await payments.payment_rows(order_id)
    assert row["status"] == "SUCCEEDED" and row["amount"] == Decimal("249.90")
    reply = replies[0]
    assert reply.payload.payment_id == row["payment_id"]
    assert reply.payload.amount == "249.90" and reply.payload.currency == "BRL"
    assert reply.payload.gateway_transaction_id == row["gateway_transaction_id"]
    assert reply.headers.causation_id == event_id(command)
    assert reply.headers.correlation_id == payments.correlation
    assert reply.headers.producer.value == "payment"
    gateway = payments.runtime.gateway
    assert gateway is not None and gateway.captures[str(order_id)] == 1


async def test_tok_charge_declined_is_answered_failed_declined(payments: Payments) -> None:
    command = payments.charge("tok_chargeDeclined")
    order_id = order_of(command)
    await payments.send(command)

    replies = await payments.wait_replies(order_id, 1)

    assert topics(replies) == ["payments.failed"]
    assert replies[0].payload.reason.value == "DECLINED"
    [row] = await payments.payment_rows(order_id)
    assert row["status"] == "FAILED" and row["failure_reason"] == "DECLINED"
    assert replies[0].payload.payment_id == row["payment_id"]


async def test_an_unknown_token_is_answered_failed_invalid_payment_method(
    payments: Payments,
) -> None:
    command = payments.charge("tok_amex_unknown")
    await payments.send(command)

    replies = await payments.wait_replies(order_of(command), 1)

    assert topics(replies) == ["payments.failed"]
    assert replies[0].payload.reason.value == "INVALID_PAYMENT_METHOD"


async def test_tok_timeout_is_never_answered(payments: Payments) -> None:
    command = payments.charge("tok_timeout")
    order_id = order_of(command)
    await payments.send(command)

    await payments.wait_handled(command)

    await assert_no_reply(payments, order_id)
    [row] = await payments.payment_rows(order_id)
    assert row["status"] == "PENDING"  # in doubt: the saga's refund or reconciliation settles it
    gateway = payments.runtime.gateway
    assert gateway is not None and gateway.captures[str(order_id)] == 0


async def test_a_command_delivered_five_times_charges_once_and_answers_the_same(
    payments: Payments,
) -> None:
    first = payments.charge("tok_visa")
    order_id = order_of(first)
    # The same record twice (same event id: a redelivery), then three copies with new
    # event ids (e.g. the outbox relay publishing again after a crash).
    copies = [with_new_event_id(first) for _ in range(3)]
    await payments.send(first, first, *copies)

    await payments.wait_handled(first, *copies)
    replies = await payments.wait_replies(order_id, 4)

    # One answer per distinct event id; the same-id redelivery is dropped by the inbox.
    assert topics(replies) == ["payments.processed"] * 4
    # Identical answers: same paymentId, transaction, amounts and processedAt.
    assert len({reply.payload.model_dump_json() for reply in replies}) == 1
    assert len({reply.headers.event_id for reply in replies}) == 4
    assert [reply.headers.causation_id for reply in replies] == [
        event_id(record) for record in (first, *copies)
    ]
    rows = await payments.payment_rows(order_id)
    assert len(rows) == 1 and rows[0]["status"] == "SUCCEEDED"
    gateway = payments.runtime.gateway
    assert gateway is not None
    assert gateway.calls[str(order_id)] == 1  # asked once, not just charged once
    assert gateway.captures[str(order_id)] == 1


async def test_refund_after_success_refunds_once_however_often_asked(payments: Payments) -> None:
    command = payments.charge("tok_visa", amount="80.00")
    order_id = order_of(command)
    await payments.send(command)
    [processed] = await payments.wait_replies(order_id, 1)
    payment_id = processed.payload.payment_id

    saga_id = processed.payload.saga_id
    refunds = [
        payments.refund(order_id, payment_id=payment_id, saga_id=saga_id, amount="80.00")
        for _ in range(2)
    ]
    await payments.send(*refunds)
    await payments.wait_handled(*refunds)
    replies = await payments.wait_replies(order_id, 3)

    assert topics(replies) == ["payments.processed", "payments.refunded", "payments.refunded"]
    first, second = replies[1].payload, replies[2].payload
    assert first.outcome.value == "REFUNDED" and first.payment_id == payment_id
    assert first.amount == "80.00"
    assert first == second  # the second request is answered the same, not refunded again
    [row] = await payments.payment_rows(order_id)
    assert row["status"] == "REFUNDED"
    gateway = payments.runtime.gateway
    assert gateway is not None and gateway.refunds[str(order_id)] == 1


async def test_refund_with_nothing_charged_closes_the_order_against_late_charges(
    payments: Payments,
) -> None:
    order_id = uuid.uuid4()
    refund = payments.refund(order_id)
    await payments.send(refund)
    [reply] = await payments.wait_replies(order_id, 1)

    assert reply.spec.topic == "payments.refunded"
    assert reply.payload.outcome.value == "NOTHING_TO_REFUND"
    assert reply.payload.payment_id is None and reply.payload.amount == "0.00"

    # The saga's payment request arrives late (the tok_timeout race): not charged.
    late = payments.charge("tok_visa", order_id=order_id)
    await payments.send(late)
    await payments.wait_handled(late)
    await payments.settle()
    assert topics(await payments.replies_for(order_id)) == ["payments.refunded"]
    [row] = await payments.payment_rows(order_id)
    assert row["status"] == "VOIDED"
    gateway = payments.runtime.gateway
    assert gateway is not None and gateway.calls[str(order_id)] == 0


async def test_refund_after_a_timeout_voids_the_charge_in_doubt(payments: Payments) -> None:
    command = payments.charge("tok_timeout")
    order_id = order_of(command)
    await payments.send(command)
    await payments.wait_handled(command)

    refund = payments.refund(order_id)
    await payments.send(refund)
    [reply] = await payments.wait_replies(order_id, 1)

    assert reply.payload.outcome.value == "NOTHING_TO_REFUND"
    [row] = await payments.payment_rows(order_id)
    assert row["status"] == "VOIDED"
    assert reply.payload.payment_id == row["payment_id"]  # a payment existed: it is named
    # Redelivered afterwards, the request is neither charged nor answered.
    again = with_new_event_id(command)
    await payments.send(again)
    await payments.wait_handled(again)
    await payments.settle()
    assert topics(await payments.replies_for(order_id)) == ["payments.refunded"]
    gateway = payments.runtime.gateway
    assert gateway is not None and gateway.captures[str(order_id)] == 0


async def test_poison_records_do_not_stop_the_consumer(
    payments: Payments, kafka_bootstrap: str
) -> None:
    command = payments.charge("tok_visa")
    order_id = order_of(command)
    headers = list(command.headers)
    raw = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await raw.start()
    try:
        # Same key, so the same partition, ahead of the valid command.
        await raw.send_and_wait(
            PAYMENTS_REQUESTED.topic, b"{not json", command.key, headers=headers
        )
        await raw.send_and_wait(PAYMENTS_REQUESTED.topic, command.value, command.key, headers=[])
        await raw.send_and_wait(
            PAYMENTS_REQUESTED.topic, b'{"orderId": 42}', command.key, headers=headers
        )
    finally:
        await raw.stop()
    await payments.send(command)

    replies = await payments.wait_replies(order_id, 1)

    assert topics(replies) == ["payments.processed"]
    poison = REGISTRY.get_sample_value(
        "consumer_events_total",
        {"group": payments.group, "topic": PAYMENTS_REQUESTED.topic, "outcome": "poison"},
    )
    assert poison is not None and poison >= 3
    consumer = payments.runtime.consumer
    assert consumer is not None and consumer.healthy and consumer.restarts == 0


async def test_metrics_count_payments_by_outcome(payments: Payments) -> None:
    def succeeded() -> float:
        return REGISTRY.get_sample_value("payments_total", {"outcome": "succeeded"}) or 0.0

    before = succeeded()
    command = payments.charge("tok_visa")
    await payments.send(command)
    await payments.wait_replies(order_of(command), 1)
    assert succeeded() == before + 1
    latency = REGISTRY.get_sample_value(
        "payment_gateway_duration_seconds_count", {"operation": "charge", "result": "approved"}
    )
    assert latency is not None and latency >= 1
