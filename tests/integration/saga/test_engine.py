"""The saga engine end to end: real PostgreSQL, real Kafka, a real gRPC peer.

Happy path, business rejections, payment failure and timeout (with a late success
refunded), transient errors retried with backoff, a compensation that keeps
failing (surfaced, never dropped), crashes of a worker between steps and between a
step's effect and its record, duplicated replies, several workers at once, and a
customer cancel after completion (the pivot reversed).
"""

from __future__ import annotations

import asyncio
import base64
import uuid

from grpclib.const import Status

from generated.events.registry import PAYMENTS_PROCESSED
from generated.sagas.types import Outcome
from handwritten.runtime.events import EventRecord, encode, new_headers
from handwritten.runtime.metrics import REGISTRY
from tests.integration.saga.conftest import (
    DEADLINE,
    Harness,
    dead_letters_of,
    definition,
    eventually,
    fast_backoff,
)

CUSTOMER = "CUSTOMER_REQUEST"


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_happy_path_completes_every_step_in_order(harness: Harness) -> None:
    saga = definition("t_happy")  # the generated definition, timeouts and all
    engine = harness.engine(saga)
    completed_before = metric("saga_completed_total", saga=saga.name)
    async with harness.worker(engine):
        saga_id, order = await harness.start(engine)
        assert await harness.wait_state(saga_id, "COMPLETED") == "COMPLETED"

    steps = await harness.steps(saga_id)
    assert [(s["step_name"], s["status"], s["attempts"]) for s in steps] == [
        ("reserve_inventory", "SUCCEEDED", 1),
        ("process_payment", "SUCCEEDED", 1),
        ("commit_reservation", "SUCCEEDED", 1),
        ("confirm_order", "SUCCEEDED", 1),
    ]
    finished = [s["finished_at"] for s in steps]
    assert finished == sorted(finished)  # in step order
    assert all(s["compensation"] is None for s in steps)
    assert [m for m, o, _ in harness.inventory.calls if o == order] == ["reserve", "commit"]
    assert harness.inventory.status[order] == "COMMITTED"
    assert await harness.commands(order) == ["payments.requested"]
    assert harness.payment.requests[order] == 1
    assert await harness.count("confirmations", saga_id) == 1
    assert await harness.outcomes(saga_id) == []
    row = await harness.pool.fetchrow(
        "SELECT current_step, next_attempt_at, finished_at, lease_id FROM saga_instances"
        " WHERE saga_id = $1",
        saga_id,
    )
    assert row["current_step"] is None and row["next_attempt_at"] is None
    assert row["finished_at"] is not None and row["lease_id"] is None
    # The payment result (payments.processed) is what the local step confirmed with.
    paid = await harness.pool.fetchval(
        "SELECT result->>'paymentId' FROM saga_step_executions"
        " WHERE saga_id = $1 AND step_name = 'process_payment'",
        saga_id,
    )
    assert paid == str(harness.payment.charged[order])
    assert metric("saga_completed_total", saga=saga.name) == completed_before + 1
    assert metric("saga_started_total", saga=saga.name) >= 1


async def test_a_rejected_reservation_cancels_out_of_stock_without_compensation(
    harness: Harness,
) -> None:
    engine = harness.engine(definition("t_out_of_stock"))
    async with harness.worker(engine):
        saga_id, order = await harness.start(engine)
        harness.inventory.reject.add(order)
        assert await harness.wait_state(saga_id, "COMPENSATED") == "COMPENSATED"

    assert await harness.outcomes(saga_id) == ["OUT_OF_STOCK"]
    steps = await harness.steps(saga_id)
    assert [(s["step_name"], s["status"], s["compensation"]) for s in steps] == [
        ("reserve_inventory", "FAILED", None),
        ("process_payment", "SKIPPED", None),
        ("commit_reservation", "SKIPPED", None),
        ("confirm_order", "SKIPPED", None),
    ]
    assert steps[0]["attempts"] == 1  # a business rejection is not retried
    assert [m for m, o, _ in harness.inventory.calls if o == order] == ["reserve"]
    assert await harness.commands(order) == []  # no payment was ever requested
    assert metric("saga_compensated_total", saga="t_out_of_stock", reason="OUT_OF_STOCK") >= 1


async def test_a_failed_payment_releases_the_reservation_once(harness: Harness) -> None:
    engine = harness.engine(definition("t_payment_failed"))
    async with harness.worker(engine):
        saga_id, order = await harness.start(engine, plan="fail")
        assert await harness.wait_state(saga_id, "COMPENSATED") == "COMPENSATED"

    assert await harness.outcomes(saga_id) == ["PAYMENT_FAILED"]
    detail = await harness.pool.fetchval("SELECT detail FROM outcomes WHERE saga_id = $1", saga_id)
    assert "declined" in detail
    assert harness.inventory.calls_of("release", order) != []
    assert harness.inventory.effects[("release", order)] == 1
    assert harness.inventory.status[order] == "RELEASED"
    steps = {s["step_name"]: s for s in await harness.steps(saga_id)}
    assert steps["reserve_inventory"]["compensation"] == "DONE"
    assert steps["reserve_inventory"]["compensated_at"] is not None
    assert steps["process_payment"]["status"] == "FAILED"
    assert steps["process_payment"]["compensation"] is None  # nothing charged: no refund
    assert await harness.commands(order) == ["payments.requested"]
    assert harness.payment.refund_requests == [] or all(
        str(r.order_id) != order for r in harness.payment.refund_requests
    )
    assert await harness.count("confirmations", saga_id) == 0


async def test_a_payment_timeout_refunds_and_releases_and_a_late_success_is_refunded(
    harness: Harness,
) -> None:
    # A spec edit (payment timeout 30 s → 1.5 s) is all it takes: the engine reads it.
    engine = harness.engine(definition("t_payment_timeout", payment_timeout_ms=1500))
    async with harness.worker(engine):
        saga_id, order = await harness.start(engine, plan="silent")

        async def requested() -> bool:
            return harness.payment.requests[order] == 1

        await eventually(requested, what="the payment request")
        assert await harness.wait_state(saga_id, "COMPENSATED") == "COMPENSATED"
        # The charge succeeds after all, late: the saga no longer awaits it.
        ignored_before = metric(
            "saga_replies_ignored_total", saga=engine.name, topic="payments.processed"
        )
        await harness.payment.processed(harness.payment.last_request[order])

        async def ignored() -> bool:
            return (
                metric("saga_replies_ignored_total", saga=engine.name, topic="payments.processed")
                > ignored_before
            )

        await eventually(ignored, what="the late reply to be seen and ignored")

    assert await harness.outcomes(saga_id) == ["PAYMENT_TIMEOUT"]
    assert await harness.commands(order) == ["payments.requested", "payments.refund_requested"]
    refunds = [r for r in harness.payment.refund_requests if str(r.order_id) == order]
    assert len(refunds) == 1 and refunds[0].payment_id is None  # no success was seen
    assert refunds[0].reason.value == "PAYMENT_TIMEOUT"
    assert harness.inventory.effects[("release", order)] == 1
    steps = {s["step_name"]: s for s in await harness.steps(saga_id)}
    payment = steps["process_payment"]
    assert payment["status"] == "FAILED" and payment["last_error"].startswith("TIMEOUT")
    assert payment["compensation"] == "DONE"
    # Compensated in reverse order: the refund before the release.
    assert payment["compensated_at"] < steps["reserve_inventory"]["compensated_at"]
    assert await harness.state(saga_id) == "COMPENSATED"
    assert await harness.count("confirmations", saga_id) == 0


async def test_transient_unavailable_is_retried_with_backoff_then_completes(
    harness: Harness,
) -> None:
    saga = definition("t_transient")
    engine = harness.engine(saga)
    saga_id, order = await harness.start(engine)
    harness.inventory.fail_next[("reserve", order)] = [Status.UNAVAILABLE, Status.UNAVAILABLE]
    retries_before = metric(
        "saga_step_retries_total",
        saga=saga.name,
        step="reserve_inventory",
        phase="action",
        code="UNAVAILABLE",
    )
    async with harness.worker(engine):
        assert await harness.wait_state(saga_id, "COMPLETED") == "COMPLETED"

    calls = harness.inventory.calls_of("reserve", order)
    assert len(calls) == 3
    # reserve_inventory's backoff: 100 ms then 200 ms, jittered within the upper half.
    assert calls[1] - calls[0] >= 0.05
    assert calls[2] - calls[1] >= 0.1
    steps = await harness.steps(saga_id)
    assert steps[0]["attempts"] == 3 and steps[0]["status"] == "SUCCEEDED"
    assert harness.inventory.effects[("reserve", order)] == 1
    retries = metric(
        "saga_step_retries_total",
        saga=saga.name,
        step="reserve_inventory",
        phase="action",
        code="UNAVAILABLE",
    )
    assert retries == retries_before + 2
    assert await harness.count("confirmations", saga_id) == 1


async def test_a_compensation_that_keeps_failing_is_surfaced_and_never_dropped(
    harness: Harness,
) -> None:
    saga = fast_backoff(0, definition("t_stuck"))
    engine = harness.engine(saga, compensation_alert_after=3)
    stuck_before = metric(
        "saga_steps_stuck_total", saga=saga.name, step="reserve_inventory", phase="compensation"
    )
    saga_id, order = await harness.start(engine, plan="fail")
    harness.inventory.broken.add(("release", order))
    async with harness.worker(engine):
        assert await harness.wait_state(saga_id, "FAILED") == "FAILED"
        stuck = await harness.steps(saga_id)
        assert stuck[0]["stuck"] is True and stuck[0]["compensation"] == "PENDING"
        assert stuck[0]["last_error"].startswith("UNAVAILABLE")
        surfaced = metric(
            "saga_steps_stuck_total", saga=saga.name, step="reserve_inventory", phase="compensation"
        )
        assert surfaced == stuck_before + 1
        assert metric("saga_failed_total", saga=saga.name, reason="PAYMENT_FAILED") >= 1

        # Still retried while FAILED: never dropped.
        seen = len(harness.inventory.calls_of("release", order))

        async def retried() -> bool:
            return len(harness.inventory.calls_of("release", order)) >= seen + 3

        await eventually(retried, what="the stuck compensation to keep being retried")
        # The cause goes away: the next retry goes through and the saga is COMPENSATED.
        harness.inventory.broken.discard(("release", order))
        assert await harness.wait_state(saga_id, "COMPENSATED") == "COMPENSATED"

    steps = await harness.steps(saga_id)
    assert steps[0]["compensation"] == "DONE" and steps[0]["stuck"] is False
    assert steps[0]["compensation_attempts"] >= 6
    assert harness.inventory.effects[("release", order)] == 1
    assert await harness.outcomes(saga_id) == ["PAYMENT_FAILED"]
    # Surfaced once, not once per retry.
    assert (
        metric(
            "saga_steps_stuck_total", saga=saga.name, step="reserve_inventory", phase="compensation"
        )
        == stuck_before + 1
    )


async def test_a_worker_killed_between_an_effect_and_its_record_is_taken_over(
    harness: Harness,
) -> None:
    # Short reserve deadline: a dead worker's lease (deadline + margin) ends soon.
    engine = harness.engine(definition("t_crash_forward", reserve_timeout_ms=1500))
    saga_id, order = await harness.start(engine)
    harness.inventory.hung.clear()
    harness.inventory.hang_after_effect.add(("reserve", order))
    async with harness.worker(engine) as first:
        await asyncio.wait_for(harness.inventory.hung.wait(), DEADLINE)
        # Reserved at inventory, not recorded by the saga: the worker dies here.
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
    steps = await harness.steps(saga_id)
    assert steps[0]["status"] == "RUNNING" and steps[0]["attempts"] == 1
    assert harness.inventory.effects[("reserve", order)] == 1

    async with harness.worker(engine) as second:
        # Dies again "between steps": once the payment is requested and awaited.
        async def awaiting_payment() -> bool:
            rows = await harness.steps(saga_id)
            return rows[1]["awaiting_until"] is not None or rows[1]["status"] == "SUCCEEDED"

        await eventually(awaiting_payment, what="the payment step to be in flight")
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)

    async with harness.worker(engine):
        assert await harness.wait_state(saga_id, "COMPLETED") == "COMPLETED"

    steps = await harness.steps(saga_id)
    assert steps[0]["attempts"] == 2  # the crashed attempt counts
    assert len(harness.inventory.calls_of("reserve", order)) == 2
    assert harness.inventory.effects[("reserve", order)] == 1  # idempotent participant
    assert harness.inventory.effects[("commit", order)] == 1
    assert harness.payment.requests[order] == 1
    assert await harness.count("confirmations", saga_id) == 1  # finished exactly once
    assert await harness.outcomes(saga_id) == []


async def test_a_worker_killed_during_a_compensation_is_taken_over(harness: Harness) -> None:
    saga = fast_backoff(0, definition("t_crash_backward"))
    engine = harness.engine(saga)
    saga_id, order = await harness.start(engine, plan="fail")
    harness.inventory.hung.clear()
    harness.inventory.hang_after_effect.add(("release", order))
    async with harness.worker(engine) as first:
        await asyncio.wait_for(harness.inventory.hung.wait(), DEADLINE)
        first.cancel()  # stock released, compensation not recorded
        await asyncio.gather(first, return_exceptions=True)
    assert await harness.state(saga_id) == "COMPENSATING"
    assert harness.inventory.effects[("release", order)] == 1

    async with harness.worker(engine):
        assert await harness.wait_state(saga_id, "COMPENSATED") == "COMPENSATED"

    assert len(harness.inventory.calls_of("release", order)) == 2
    assert harness.inventory.effects[("release", order)] == 1
    assert await harness.outcomes(saga_id) == ["PAYMENT_FAILED"]  # applied once
    steps = await harness.steps(saga_id)
    assert steps[0]["compensation"] == "DONE" and steps[0]["compensation_attempts"] == 2


async def test_duplicated_replies_cause_no_second_transition(harness: Harness) -> None:
    engine = harness.engine(definition("t_duplicates"))
    async with harness.worker(engine):
        saga_id, order = await harness.start(engine, plan="silent")

        async def requested() -> bool:
            return harness.payment.requests[order] == 1

        await eventually(requested, what="the payment request")
        request = harness.payment.last_request[order]
        producer = harness.payment.producer
        assert producer is not None
        # The same event twice (same event id, e.g. a relay retry), then a new event id
        # for the same payment (e.g. the payment service answering a redelivery).
        first = await harness.payment.processed(request)
        record = encode(
            PAYMENTS_PROCESSED,
            first,
            new_headers(PAYMENTS_PROCESSED, producer="payment", correlation_id="dup"),
        )
        await producer.send_record(record)
        await producer.send_record(record)
        await harness.payment.processed(request)
        assert await harness.wait_state(saga_id, "COMPLETED") == "COMPLETED"

        async def all_seen() -> bool:
            marks = await harness.pool.fetchval(
                "SELECT count(*) FROM processed_events WHERE consumer = $1 AND event_id = $2",
                harness.consumer_group,
                uuid.UUID(dict(record.headers)["event-id"].decode()),
            )
            return bool(marks == 1)

        await eventually(all_seen, what="the duplicates to be consumed")

    steps = await harness.steps(saga_id)
    assert [s["attempts"] for s in steps] == [1, 1, 1, 1]
    assert harness.inventory.effects[("commit", order)] == 1
    assert len(harness.inventory.calls_of("commit", order)) == 1
    assert await harness.count("confirmations", saga_id) == 1


async def test_several_workers_share_the_sagas_and_each_finishes_once(harness: Harness) -> None:
    engine = harness.engine(definition("t_replicas"))
    started = [await harness.start(engine) for _ in range(8)]
    async with harness.worker(engine, concurrency=3), harness.worker(engine, concurrency=3):
        for saga_id, _ in started:
            assert await harness.wait_state(saga_id, "COMPLETED") == "COMPLETED"
    for saga_id, order in started:
        assert await harness.count("confirmations", saga_id) == 1
        assert harness.inventory.effects[("reserve", order)] == 1
        assert harness.inventory.effects[("commit", order)] == 1
        assert harness.payment.requests[order] == 1


async def test_a_cancel_after_completion_reverses_the_pivot_refunds_and_releases(
    harness: Harness,
) -> None:
    engine = harness.engine(definition("t_cancel_after"))
    async with harness.worker(engine):
        saga_id, order = await harness.start(engine)
        assert await harness.wait_state(saga_id, "COMPLETED") == "COMPLETED"
        async with harness.pool.acquire() as connection, connection.transaction():
            result = await engine.cancel(
                connection, order, Outcome(status="CANCELED", reason=CUSTOMER)
            )
        assert result.value == "REQUESTED"
        assert await harness.wait_state(saga_id, "COMPENSATED") == "COMPENSATED"
        async with harness.pool.acquire() as connection, connection.transaction():
            again = await engine.cancel(
                connection, order, Outcome(status="CANCELED", reason=CUSTOMER)
            )
        assert again.value == "ALREADY"

    assert await harness.outcomes(saga_id) == [CUSTOMER]
    steps = {s["step_name"]: s for s in await harness.steps(saga_id)}
    assert steps["confirm_order"]["status"] == "SUCCEEDED"  # nothing to undo locally
    assert steps["commit_reservation"]["compensation"] == "DONE"
    assert steps["process_payment"]["compensation"] == "DONE"
    assert steps["reserve_inventory"]["compensation"] == "DONE"
    # Reverse order: stock restored, then the refund (naming the payment), then release.
    assert (
        steps["commit_reservation"]["compensated_at"]
        < steps["process_payment"]["compensated_at"]
        < steps["reserve_inventory"]["compensated_at"]
    )
    assert harness.inventory.effects[("restore", order)] == 1
    assert harness.inventory.status[order] == "RETURNED"
    assert harness.inventory.effects[("release", order)] == 0  # nothing held any more
    refunds = [r for r in harness.payment.refund_requests if str(r.order_id) == order]
    assert len(refunds) == 1
    assert refunds[0].payment_id == harness.payment.charged[order]
    assert refunds[0].reason.value == CUSTOMER


async def test_a_cancel_while_the_payment_is_awaited_refunds_it(harness: Harness) -> None:
    engine = harness.engine(definition("t_cancel_during"))
    async with harness.worker(engine):
        saga_id, order = await harness.start(engine, plan="silent")

        async def requested() -> bool:
            return harness.payment.requests[order] == 1

        await eventually(requested, what="the payment request")
        async with harness.pool.acquire() as connection, connection.transaction():
            await engine.cancel(connection, order, Outcome(status="CANCELED", reason=CUSTOMER))
        assert await harness.wait_state(saga_id, "COMPENSATED") == "COMPENSATED"

    steps = {s["step_name"]: s for s in await harness.steps(saga_id)}
    assert steps["process_payment"]["status"] == "FAILED"  # interrupted
    assert steps["process_payment"]["compensation"] == "DONE"  # refunded (voided) anyway
    assert steps["commit_reservation"]["status"] == "SKIPPED"
    assert harness.inventory.effects[("release", order)] == 1
    assert [m for m, o, _ in harness.inventory.calls if o == order] == ["reserve", "release"]
    assert await harness.outcomes(saga_id) == [CUSTOMER]


async def test_a_poison_reply_goes_to_the_dead_letter_topic_and_the_saga_carries_on(
    harness: Harness,
) -> None:
    engine = harness.engine(definition("t_poison"))
    async with harness.worker(engine):
        saga_id, order = await harness.start(engine, plan="silent")

        async def requested() -> bool:
            return harness.payment.requests[order] == 1

        await eventually(requested, what="the payment request")
        request = harness.payment.last_request[order]
        producer = harness.payment.producer
        assert producer is not None
        valid = encode(
            PAYMENTS_PROCESSED,
            await harness.payment.processed(request),
            new_headers(PAYMENTS_PROCESSED, producer="payment", correlation_id="poison"),
        )
        # Same key and headers, a value that is not a PaymentProcessed: poison.
        poison = EventRecord(valid.topic, valid.key, b'{"sagaId": 42}', valid.headers)
        await producer.send_record(poison)
        assert await harness.wait_state(saga_id, "COMPLETED") == "COMPLETED"

        async def dead_lettered() -> bool:
            letters = await dead_letters_of(harness.bootstrap, harness.consumer_group)
            return any(
                letter.value is not None
                and base64.b64decode(letter.value) == b'{"sagaId": 42}'
                and base64.b64decode(letter.key or "") == order.encode()
                for letter in letters
            )

        await eventually(dead_lettered, what="the poison record on events.deadletter")

    letters = [
        letter
        for letter in await dead_letters_of(harness.bootstrap, harness.consumer_group)
        if base64.b64decode(letter.key or "") == order.encode()
    ]
    assert len(letters) == 1
    assert letters[0].source_topic == PAYMENTS_PROCESSED.topic
    assert "PaymentProcessed" in letters[0].error
    assert await harness.count("confirmations", saga_id) == 1
