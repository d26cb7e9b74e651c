"""The saga state machine on its own: next move per state, retry and backoff
decisions from a RetryPolicy, timeouts, reverse compensation order, stuck
compensations — with the generated create_order definition and a small hand-built
one."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from generated.sagas.create_order import CREATE_ORDER
from generated.sagas.types import (
    Action,
    Backoff,
    CommandAction,
    GrpcAction,
    LocalAction,
    Outcome,
    RetryPolicy,
    SagaDefinition,
    SagaStep,
)
from handwritten.runtime.saga import machine
from handwritten.runtime.saga.machine import (
    Abandon,
    ApplyReply,
    BeginCompensation,
    Compensate,
    Compensation,
    EnteredFailed,
    Execute,
    Failure,
    Finished,
    MarkedStuck,
    OutcomeDecided,
    Reply,
    SagaRecord,
    SagaState,
    StepStatus,
    TimeOut,
    Wait,
)

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
RNG = random.Random(7)
UNAVAILABLE = Failure(True, "UNAVAILABLE", "connection refused")
REJECTED = Failure(False, "REJECTED", "out of stock")
OUT_OF_STOCK = Outcome(status="CANCELED", reason="OUT_OF_STOCK")
PAYMENT_FAILED = Outcome(status="CANCELED", reason="PAYMENT_FAILED")
PAYMENT_TIMEOUT = Outcome(status="CANCELED", reason="PAYMENT_TIMEOUT")
CUSTOMER = Outcome(status="CANCELED", reason="CUSTOMER_REQUEST")
RESTORE = GrpcAction(method="inventory.v1.InventoryService/RestoreStock", timeout_ms=1000)


def no_undo_of_pivot(step: SagaStep) -> Action | None:
    return step.compensation


def with_reversal(step: SagaStep) -> Action | None:
    return step.compensation or (RESTORE if step.kind == "pivot" else None)


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def fresh(definition: SagaDefinition = CREATE_ORDER) -> SagaRecord:
    return machine.new_record(definition, uuid.uuid4(), "order-1", {"orderId": "order-1"})


def policy(
    attempts: int | None, *, initial: int = 100, retry_on: frozenset[str] = frozenset()
) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=attempts,
        backoff=Backoff(initial_ms=initial, max_ms=1000, multiplier=2.0, jitter=False),
        retry_on=retry_on,
    )


def tiny() -> SagaDefinition:
    """A hand-built three-step saga: compensatable command, pivot, retriable local."""
    return SagaDefinition(
        name="tiny",
        version=1,
        orchestrator="orders",
        starts_on="orders.created",
        correlation="orderId",
        steps=(
            SagaStep(
                name="hold",
                kind="compensatable",
                description="",
                action=CommandAction(
                    topic="payments.requested",
                    success=("payments.processed",),
                    failure=("payments.failed",),
                    timeout_ms=500,
                ),
                compensation=CommandAction(
                    topic="payments.refund_requested",
                    success=("payments.refunded",),
                    failure=(),
                    timeout_ms=300,
                ),
                retry=policy(2, retry_on=frozenset({"TIMEOUT"})),
                status=None,
                on_rejected=PAYMENT_FAILED,
                on_timeout=PAYMENT_TIMEOUT,
            ),
            SagaStep(
                name="commit",
                kind="pivot",
                description="",
                action=GrpcAction(method="x.v1.X/Commit", timeout_ms=200),
                compensation=None,
                retry=policy(3, retry_on=frozenset({"UNAVAILABLE"})),
                status=None,
                on_rejected=OUT_OF_STOCK,
                on_timeout=None,
            ),
            SagaStep(
                name="confirm",
                kind="retriable",
                description="",
                action=LocalAction(name="confirm", emits=("orders.confirmed",), timeout_ms=100),
                compensation=None,
                retry=policy(None, initial=50),
                status="CONFIRMED",
                on_rejected=None,
                on_timeout=None,
            ),
        ),
    )


def run_through(definition: SagaDefinition, record: SagaRecord, upto: int) -> SagaRecord:
    """Succeed steps 0..upto-1 (attempt + success)."""
    for index in range(upto):
        record = machine.start_attempt(record, index, T0, compensation=False).record
        record = machine.succeed(definition, record, index, {"step": index}, T0).record
    return record


# --------------------------------------------------------------- forward


def test_a_new_saga_executes_its_first_step_then_each_next_in_order() -> None:
    record = fresh()
    assert record.state is SagaState.RUNNING and record.current == 0
    names = []
    for index in range(len(CREATE_ORDER.steps)):
        move = machine.next_move(CREATE_ORDER, record, T0)
        assert move == Execute(index)
        names.append(CREATE_ORDER.steps[index].name)
        started = machine.start_attempt(record, index, T0, compensation=False)
        assert started.record.steps[index].status is StepStatus.RUNNING
        assert started.record.steps[index].uncertain  # until its answer is recorded
        done = machine.succeed(CREATE_ORDER, started.record, index, {}, at(10))
        record = done.record
    assert names == ["reserve_inventory", "process_payment", "commit_reservation", "confirm_order"]
    assert record.state is SagaState.COMPLETED and record.current is None
    assert record.next_attempt_at is None
    assert machine.next_move(CREATE_ORDER, record, T0) == Wait(None)
    assert all(step.status is StepStatus.SUCCEEDED for step in record.steps)


def test_the_first_attempt_of_the_first_step_is_the_saga_start() -> None:
    first = machine.start_attempt(fresh(), 0, T0, compensation=False)
    assert first.notes == (machine.SagaBegan(),)
    again = machine.start_attempt(first.record, 0, T0, compensation=False)
    assert again.notes == ()


def test_a_command_step_waits_for_its_reply_until_the_timeout_from_the_spec() -> None:
    record = run_through(CREATE_ORDER, fresh(), 1)
    action = CREATE_ORDER.steps[1].action
    assert isinstance(action, CommandAction) and action.timeout_ms == 30000
    record = machine.start_attempt(record, 1, T0, compensation=False).record
    record = machine.command_sent(record, 1, action, T0)
    assert record.next_attempt_at == at(30000)
    assert machine.next_move(CREATE_ORDER, record, at(29999)) == Wait(at(30000))
    assert machine.next_move(CREATE_ORDER, record, at(30000)) == TimeOut(1, compensation=False)


def test_a_recorded_reply_is_applied_next_and_a_second_one_is_not_awaited() -> None:
    definition = tiny()
    record = machine.start_attempt(fresh(definition), 0, T0, compensation=False).record
    record = machine.command_sent(record, 0, definition.steps[0].action, T0)  # type: ignore[arg-type]
    target = machine.reply_target(definition, record, "payments.processed", undo=no_undo_of_pivot)
    assert target == (0, False, "success")
    reply = Reply("success", "payments.processed", "e1", {"paymentId": "p1"})
    record = machine.with_reply(record, 0, reply, at(5))
    assert record.next_attempt_at == at(5)
    assert machine.next_move(definition, record, at(5)) == ApplyReply(0, compensation=False)
    # A duplicate with another event id before or after it is applied: not awaited.
    assert (
        machine.reply_target(definition, record, "payments.processed", undo=no_undo_of_pivot)
        is None
    )
    record = machine.succeed(definition, record, 0, reply.data, at(6)).record
    assert (
        machine.reply_target(definition, record, "payments.processed", undo=no_undo_of_pivot)
        is None
    )
    assert record.steps[0].result == {"paymentId": "p1"}


def test_replies_on_other_topics_are_not_awaited() -> None:
    definition = tiny()
    record = machine.start_attempt(fresh(definition), 0, T0, compensation=False).record
    record = machine.command_sent(record, 0, definition.steps[0].action, T0)  # type: ignore[arg-type]
    assert (
        machine.reply_target(definition, record, "payments.refunded", undo=no_undo_of_pivot) is None
    )
    failure = machine.reply_target(definition, record, "payments.failed", undo=no_undo_of_pivot)
    assert failure == (0, False, "failure")


# --------------------------------------------------------------- retries


def test_backoff_is_exponential_capped_and_jittered_in_its_upper_half() -> None:
    backoff = Backoff(initial_ms=100, max_ms=2000, multiplier=2.0, jitter=True)
    rng = random.Random(1)
    for failed, ceiling in (
        (1, 100),
        (2, 200),
        (3, 400),
        (4, 800),
        (5, 1600),
        (6, 2000),
        (9, 2000),
    ):
        for _ in range(50):
            delay = machine.retry_delay_ms(backoff, failed, rng)
            assert ceiling / 2 <= delay <= ceiling
    exact = Backoff(initial_ms=100, max_ms=2000, multiplier=3.0, jitter=False)
    assert [machine.retry_delay_ms(exact, n, rng) for n in (1, 2, 3, 4)] == [100, 300, 900, 2000]


def test_transient_codes_in_retry_on_are_retried_until_the_attempts_run_out() -> None:
    step = CREATE_ORDER.step("reserve_inventory")  # 4 attempts, UNAVAILABLE/DEADLINE_EXCEEDED
    assert step.retry.max_attempts == 4
    assert machine.should_retry(step, UNAVAILABLE, 1)
    assert machine.should_retry(step, Failure(True, "DEADLINE_EXCEEDED", "slow"), 3)
    assert not machine.should_retry(step, UNAVAILABLE, 4)
    # A transient code the step does not list, and any rejection, are not retried.
    assert not machine.should_retry(step, Failure(True, "INTERNAL", "bug"), 1)
    assert not machine.should_retry(step, REJECTED, 1)
    # After the pivot everything is retried, forever.
    confirm = CREATE_ORDER.step("confirm_order")
    assert confirm.retry.max_attempts is None
    assert machine.should_retry(confirm, REJECTED, 1000)


def test_a_transient_failure_schedules_the_next_attempt_with_the_steps_backoff() -> None:
    definition = tiny()
    record = run_through(definition, fresh(definition), 1)
    record = machine.start_attempt(record, 1, T0, compensation=False).record
    result = machine.fail(
        definition, record, 1, UNAVAILABLE, at(10), RNG, undo=no_undo_of_pivot, alert_after=5
    )
    step = result.record.steps[1]
    assert step.status is StepStatus.RUNNING and step.error == "UNAVAILABLE: connection refused"
    assert result.record.next_attempt_at == at(10 + 100)  # initial 100 ms, no jitter
    assert isinstance(result.notes[0], machine.Retrying)
    assert machine.next_move(definition, result.record, at(110)) == Execute(1)
    record = machine.start_attempt(result.record, 1, at(110), compensation=False).record
    second = machine.fail(
        definition, record, 1, UNAVAILABLE, at(120), RNG, undo=no_undo_of_pivot, alert_after=5
    )
    assert second.record.next_attempt_at == at(120 + 200)  # × multiplier


def test_exhausted_retries_turn_back_with_the_timeout_outcome_or_else_the_rejection_one() -> None:
    definition = tiny()
    record = run_through(definition, fresh(definition), 1)
    for attempt in range(3):
        record = machine.start_attempt(record, 1, T0, compensation=False).record
        result = machine.fail(
            definition, record, 1, UNAVAILABLE, T0, RNG, undo=with_reversal, alert_after=5
        )
        record = result.record
        if attempt < 2:
            assert record.state is SagaState.RUNNING
    assert record.state is SagaState.COMPENSATING
    assert record.outcome == OUT_OF_STOCK  # the pivot has no on_timeout
    assert record.steps[1].status is StepStatus.FAILED and record.steps[1].uncertain
    # The uncertain pivot is reversed (it may have committed) before the first step.
    assert record.current == 1 and record.steps[1].compensation is Compensation.PENDING
    assert record.steps[2].status is StepStatus.SKIPPED


def test_a_crashed_last_attempt_is_abandoned_as_an_uncertain_failure() -> None:
    definition = tiny()
    record = run_through(definition, fresh(definition), 1)
    for _ in range(3):
        record = machine.start_attempt(record, 1, T0, compensation=False).record
    # Three attempts recorded, none answered: the last one's worker died.
    assert machine.next_move(definition, record, T0) == Abandon(1)
    result = machine.abandon(definition, record, 1, T0, RNG, undo=no_undo_of_pivot, alert_after=5)
    assert result.record.steps[1].error is not None
    assert result.record.steps[1].error.startswith(machine.INTERRUPTED)
    assert result.record.state is SagaState.COMPENSATING  # step 0 is undone


# ------------------------------------------------------------ compensation


def test_a_rejection_at_the_first_step_ends_compensated_with_nothing_to_undo() -> None:
    record = machine.start_attempt(fresh(), 0, T0, compensation=False).record
    result = machine.fail(
        CREATE_ORDER, record, 0, REJECTED, at(3), RNG, undo=no_undo_of_pivot, alert_after=5
    )
    assert result.record.state is SagaState.COMPENSATED
    assert result.record.outcome == OUT_OF_STOCK
    assert result.record.steps[0].status is StepStatus.FAILED
    assert result.record.steps[0].compensation is None  # rejected: nothing was reserved
    assert [s.status for s in result.record.steps[1:]] == [StepStatus.SKIPPED] * 3
    assert OutcomeDecided(OUT_OF_STOCK, "REJECTED: out of stock", 0) in result.notes
    assert Finished(SagaState.COMPENSATED, OUT_OF_STOCK) in result.notes


def test_payment_failed_compensates_the_reservation_only() -> None:
    record = run_through(CREATE_ORDER, fresh(), 1)
    record = machine.start_attempt(record, 1, T0, compensation=False).record
    record = machine.command_sent(record, 1, CREATE_ORDER.steps[1].action, T0)  # type: ignore[arg-type]
    declined = Failure(False, "payments.failed", "card declined")
    result = machine.fail(
        CREATE_ORDER, record, 1, declined, at(10), RNG, undo=no_undo_of_pivot, alert_after=5
    )
    record = result.record
    assert record.outcome == PAYMENT_FAILED
    assert record.steps[1].compensation is None  # the charge failed: nothing to refund
    assert record.steps[0].compensation is Compensation.PENDING
    assert machine.next_move(CREATE_ORDER, record, at(10)) == Compensate(0)


def test_payment_timeout_compensates_the_payment_then_the_reservation() -> None:
    record = run_through(CREATE_ORDER, fresh(), 1)
    record = machine.start_attempt(record, 1, T0, compensation=False).record
    record = machine.command_sent(record, 1, CREATE_ORDER.steps[1].action, T0)  # type: ignore[arg-type]
    assert machine.next_move(CREATE_ORDER, record, at(30000)) == TimeOut(1, compensation=False)
    timeout = Failure(True, machine.TIMEOUT, "no reply within 30000 ms")
    record = machine.fail(
        CREATE_ORDER, record, 1, timeout, at(30000), RNG, undo=no_undo_of_pivot, alert_after=5
    ).record
    assert record.outcome == PAYMENT_TIMEOUT  # process_payment retries once: no retry
    order = []
    now = at(30000)
    while record.state is SagaState.COMPENSATING:
        move = machine.next_move(CREATE_ORDER, record, now)
        assert isinstance(move, Compensate)
        order.append(CREATE_ORDER.steps[move.index].name)
        record = machine.start_attempt(record, move.index, now, compensation=True).record
        record = machine.compensated(record, move.index, now).record
    assert order == ["process_payment", "reserve_inventory"]  # reverse order
    assert record.state is SagaState.COMPENSATED
    assert record.steps[0].compensation is Compensation.DONE


def test_a_late_success_after_the_timeout_is_not_awaited_any_more() -> None:
    definition = tiny()
    record = machine.start_attempt(fresh(definition), 0, T0, compensation=False).record
    record = machine.command_sent(record, 0, definition.steps[0].action, T0)  # type: ignore[arg-type]
    for _ in range(2):  # TIMEOUT is retried once (2 attempts), then PAYMENT_TIMEOUT
        record = machine.fail(
            definition,
            record,
            0,
            Failure(True, machine.TIMEOUT, "late"),
            at(500),
            RNG,
            undo=no_undo_of_pivot,
            alert_after=5,
        ).record
        if record.state is SagaState.RUNNING:
            record = machine.start_attempt(record, 0, at(600), compensation=False).record
            record = machine.command_sent(record, 0, definition.steps[0].action, at(600))  # type: ignore[arg-type]
    assert record.state is SagaState.COMPENSATING and record.outcome == PAYMENT_TIMEOUT
    assert record.steps[0].attempts == 2
    assert (
        machine.reply_target(definition, record, "payments.processed", undo=no_undo_of_pivot)
        is None
    )
    # The refund is what settles a late success: its reply is awaited once sent.
    record = machine.start_attempt(record, 0, at(700), compensation=True).record
    record = machine.command_sent(record, 0, definition.steps[0].compensation, at(700))  # type: ignore[arg-type]
    assert machine.reply_target(definition, record, "payments.refunded", undo=no_undo_of_pivot) == (
        0,
        True,
        "success",
    )


def test_compensations_run_in_reverse_order_of_the_steps_that_acted() -> None:
    record = run_through(CREATE_ORDER, fresh(), 4)
    assert record.state is SagaState.COMPLETED
    assert machine.cancel_allowed(CREATE_ORDER, record, undo=no_undo_of_pivot) == "refused"
    assert machine.cancel_allowed(CREATE_ORDER, record, undo=with_reversal) == "accepted"
    record = machine.with_cancel(record, CUSTOMER, at(1))
    move = machine.next_move(CREATE_ORDER, record, at(1))
    assert move == BeginCompensation(CUSTOMER, "canceled on request")
    record = machine.begin_compensation(
        CREATE_ORDER, record, CUSTOMER, None, at(1), undo=with_reversal
    ).record
    assert record.cancel is None and record.outcome == CUSTOMER
    order = []
    while record.state is SagaState.COMPENSATING:
        move = machine.next_move(CREATE_ORDER, record, at(2))
        assert isinstance(move, Compensate)
        order.append(CREATE_ORDER.steps[move.index].name)
        record = machine.start_attempt(record, move.index, at(2), compensation=True).record
        record = machine.compensated(record, move.index, at(3)).record
    # confirm_order has nothing to undo; the pivot is reversed (RestoreStock).
    assert order == ["commit_reservation", "process_payment", "reserve_inventory"]
    assert [machine.api_step_status(s) for s in record.steps] == [
        "COMPENSATED",
        "COMPENSATED",
        "COMPENSATED",
        "SUCCEEDED",
    ]


def test_a_cancel_while_awaiting_a_reply_undoes_the_command_in_flight() -> None:
    record = run_through(CREATE_ORDER, fresh(), 1)
    record = machine.start_attempt(record, 1, T0, compensation=False).record
    record = machine.command_sent(record, 1, CREATE_ORDER.steps[1].action, T0)  # type: ignore[arg-type]
    assert machine.cancel_allowed(CREATE_ORDER, record, undo=no_undo_of_pivot) == "accepted"
    record = machine.with_cancel(record, CUSTOMER, at(5))
    assert record.next_attempt_at == at(5)  # due now, not at the reply deadline
    move = machine.next_move(CREATE_ORDER, record, at(5))
    assert isinstance(move, BeginCompensation)
    record = machine.begin_compensation(
        CREATE_ORDER, record, CUSTOMER, None, at(5), undo=no_undo_of_pivot
    ).record
    assert record.steps[1].status is StepStatus.FAILED  # interrupted
    assert record.steps[1].compensation is Compensation.PENDING  # a charge may happen: refund
    assert record.steps[2].status is StepStatus.SKIPPED
    assert machine.next_move(CREATE_ORDER, record, at(5)) == Compensate(1)
    assert machine.cancel_allowed(CREATE_ORDER, record, undo=no_undo_of_pivot) == "already"


def test_a_compensation_that_keeps_failing_is_retried_then_surfaced_as_stuck() -> None:
    record = run_through(CREATE_ORDER, fresh(), 1)
    record = machine.start_attempt(record, 1, T0, compensation=False).record
    record = machine.fail(
        CREATE_ORDER,
        record,
        1,
        Failure(False, "payments.failed", "declined"),
        T0,
        RNG,
        undo=no_undo_of_pivot,
        alert_after=3,
    ).record
    notes: list[object] = []
    now = T0
    for attempt in range(1, 6):
        assert machine.next_move(CREATE_ORDER, record, now) == Compensate(0)
        record = machine.start_attempt(record, 0, now, compensation=True).record
        result = machine.compensation_failed(
            CREATE_ORDER, record, 0, UNAVAILABLE, now, RNG, alert_after=3
        )
        record, now = result.record, result.record.next_attempt_at or now
        notes.extend(result.notes)
        step = record.steps[0]
        assert step.compensation is Compensation.PENDING  # never dropped
        assert step.stuck == (attempt >= 3)
        assert record.state is (SagaState.FAILED if attempt >= 3 else SagaState.COMPENSATING)
        assert machine.api_step_status(step) == "COMPENSATING"
    # Surfaced once, not at every retry.
    assert sum(isinstance(n, MarkedStuck) for n in notes) == 1
    assert sum(isinstance(n, EnteredFailed) for n in notes) == 1
    # Backoff of reserve_inventory (max 2 s), not a hot loop.
    assert record.next_attempt_at is not None and record.next_attempt_at > T0
    # When it finally goes through, the saga is COMPENSATED.
    record = machine.start_attempt(record, 0, now, compensation=True).record
    done = machine.compensated(record, 0, now)
    assert done.record.state is SagaState.COMPENSATED
    assert not done.record.steps[0].stuck


def test_a_refused_compensation_is_stuck_at_once_but_still_retried() -> None:
    record = run_through(CREATE_ORDER, fresh(), 1)
    record = machine.start_attempt(record, 1, T0, compensation=False).record
    record = machine.fail(
        CREATE_ORDER, record, 1, REJECTED, T0, RNG, undo=no_undo_of_pivot, alert_after=5
    ).record
    record = machine.start_attempt(record, 0, T0, compensation=True).record
    refused = Failure(False, "FAILED_PRECONDITION", "is COMMITTED")
    result = machine.compensation_failed(CREATE_ORDER, record, 0, refused, T0, RNG, alert_after=5)
    assert result.record.state is SagaState.FAILED and result.record.steps[0].stuck
    assert result.record.next_attempt_at is not None
    assert machine.next_move(
        CREATE_ORDER, result.record, result.record.next_attempt_at
    ) == Compensate(0)


def test_a_compensation_command_that_times_out_is_sent_again() -> None:
    definition = tiny()
    record = machine.start_attempt(fresh(definition), 0, T0, compensation=False).record
    record = machine.succeed(definition, record, 0, {"paymentId": "p"}, T0).record
    record = machine.start_attempt(record, 1, T0, compensation=False).record
    record = machine.fail(
        definition, record, 1, REJECTED, T0, RNG, undo=no_undo_of_pivot, alert_after=5
    ).record
    assert machine.next_move(definition, record, T0) == Compensate(0)
    record = machine.start_attempt(record, 0, T0, compensation=True).record
    record = machine.command_sent(record, 0, definition.steps[0].compensation, T0)  # type: ignore[arg-type]
    assert machine.next_move(definition, record, at(300)) == TimeOut(0, compensation=True)
    failed = machine.compensation_failed(
        definition, record, 0, Failure(True, machine.TIMEOUT, "late"), at(300), RNG, alert_after=5
    ).record
    assert failed.next_attempt_at == at(300 + 100)
    assert machine.next_move(definition, failed, at(400)) == Compensate(0)


def test_a_retriable_step_after_the_pivot_is_retried_forever_and_flagged_once() -> None:
    definition = tiny()
    record = run_through(definition, fresh(definition), 2)
    notes = []
    for attempt in range(1, 8):
        record = machine.start_attempt(record, 2, T0, compensation=False).record
        result = machine.fail(
            definition,
            record,
            2,
            Failure(True, "INTERNAL", "db down"),
            T0,
            RNG,
            undo=no_undo_of_pivot,
            alert_after=5,
        )
        record = result.record
        notes.extend(result.notes)
        assert record.state is SagaState.RUNNING and record.steps[2].attempts == attempt
    assert sum(isinstance(n, MarkedStuck) for n in notes) == 1
    assert machine.next_move(definition, record, record.next_attempt_at or T0) == Execute(2)


def test_a_cancel_request_overrides_a_later_retry_time() -> None:
    record = machine.start_attempt(fresh(), 0, T0, compensation=False).record
    record = machine.fail(
        CREATE_ORDER, record, 0, UNAVAILABLE, T0, RNG, undo=no_undo_of_pivot, alert_after=5
    ).record
    assert record.next_attempt_at is not None and record.next_attempt_at > T0
    canceled = replace(record, cancel=CUSTOMER)
    assert machine.settle(canceled, T0).next_attempt_at == T0
    assert machine.settle(record, T0) == record


def test_failure_outcomes_fall_back_on_each_other() -> None:
    payment = CREATE_ORDER.step("process_payment")
    assert machine.failure_outcome(payment, REJECTED) == PAYMENT_FAILED
    assert machine.failure_outcome(payment, UNAVAILABLE) == PAYMENT_TIMEOUT
    reserve = CREATE_ORDER.step("reserve_inventory")  # no on_timeout
    assert machine.failure_outcome(reserve, UNAVAILABLE) == OUT_OF_STOCK
    with pytest.raises(ValueError, match="no on_rejected"):
        machine.failure_outcome(tiny().steps[2], REJECTED)


def test_a_reply_to_a_command_whose_attempt_timed_out_still_counts() -> None:
    definition = tiny()
    record = machine.start_attempt(fresh(definition), 0, T0, compensation=False).record
    record = machine.succeed(definition, record, 0, {"paymentId": "p"}, T0).record
    record = machine.start_attempt(record, 1, T0, compensation=False).record
    record = machine.fail(
        definition, record, 1, REJECTED, T0, RNG, undo=no_undo_of_pivot, alert_after=5
    ).record
    refund = definition.steps[0].compensation
    assert isinstance(refund, CommandAction)
    # Not sent yet: a refund reply is nobody's.
    assert (
        machine.reply_target(definition, record, "payments.refunded", undo=no_undo_of_pivot) is None
    )
    record = machine.start_attempt(record, 0, T0, compensation=True).record
    record = machine.command_sent(record, 0, refund, T0)
    late = Failure(True, machine.TIMEOUT, "late")
    record = machine.compensation_failed(
        definition, record, 0, late, at(300), RNG, alert_after=5
    ).record
    # Between attempts (nothing awaited, retry pending), the first refund's reply lands.
    assert record.steps[0].awaiting_until is None
    target = machine.reply_target(definition, record, "payments.refunded", undo=no_undo_of_pivot)
    assert target == (0, True, "success")
    record = machine.with_reply(
        record, 0, Reply("success", "payments.refunded", "e9", {"outcome": "REFUNDED"}), at(320)
    )
    assert machine.next_move(definition, record, at(320)) == ApplyReply(0, compensation=True)
    assert machine.compensated(record, 0, at(321)).record.state is SagaState.COMPENSATED


def test_a_forward_reply_between_retries_counts_but_not_once_given_up() -> None:
    definition = tiny()  # hold: TIMEOUT retried once (2 attempts)
    action = definition.steps[0].action
    assert isinstance(action, CommandAction)
    record = machine.start_attempt(fresh(definition), 0, T0, compensation=False).record
    record = machine.command_sent(record, 0, action, T0)
    timeout = Failure(True, machine.TIMEOUT, "late")
    retrying = machine.fail(
        definition, record, 0, timeout, at(500), RNG, undo=no_undo_of_pivot, alert_after=5
    ).record
    assert retrying.state is SagaState.RUNNING and retrying.steps[0].awaiting_until is None
    assert machine.reply_target(
        definition, retrying, "payments.processed", undo=no_undo_of_pivot
    ) == (0, False, "success")
    again = machine.start_attempt(retrying, 0, at(600), compensation=False).record
    again = machine.command_sent(again, 0, action, at(600))
    given_up = machine.fail(
        definition, again, 0, timeout, at(1100), RNG, undo=no_undo_of_pivot, alert_after=5
    ).record
    assert given_up.state is SagaState.COMPENSATING
    assert (
        machine.reply_target(definition, given_up, "payments.processed", undo=no_undo_of_pivot)
        is None
    )
