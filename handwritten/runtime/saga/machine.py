"""The saga state machine, pure: what to do next, and what an answer changes.

The engine (``engine.py``) does the I/O around it: it loads an instance, asks
``next_move`` what to do, performs that (a gRPC call, a command to the outbox, a
local action, or nothing), feeds the answer to one of the transition functions
below, and stores the new record in the same transaction as the effects. Nothing
here reads a clock or a database, so every rule can be tested on its own:

- **Forward.** Steps run in definition order. A success moves to the next step (the
  last one completes the saga). A failure is retried with the step's backoff when
  it is transient, one of the step's ``retry_on`` codes and attempts are left; a
  step after the pivot (``retriable``) is retried whatever happens. Otherwise the
  saga turns back with the step's outcome (``on_rejected`` for a rejection,
  ``on_timeout`` for a timeout or exhausted retries, each falling back on the other).
- **Uncertainty.** A step whose action may have taken effect without a recorded
  success (a call cut short, a timeout, a command sent and not answered) is
  ``uncertain``; a rejection says "nothing happened" and clears it.
- **Compensation.** Turning back marks for compensation every step that succeeded
  or is uncertain and has an undo action (its compensation, or an orchestrator's
  reversal for a step the DSL gives none, such as the pivot); steps never
  attempted are skipped. Compensations run one at a time in reverse step order and
  are retried until they succeed; one that keeps failing (``alert_after``
  attempts) or is refused is marked ``stuck`` and the saga FAILED — surfaced, and
  still retried, never dropped. When the last one succeeds the saga is COMPENSATED.
- **Inputs.** Replies and cancel requests are recorded by the consumer or the API
  (``with_reply``, ``with_cancel``) and acted upon by the next worker transition.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from generated.sagas.types import (
    Action,
    Backoff,
    CommandAction,
    Outcome,
    SagaDefinition,
    SagaStep,
)


class SagaState(StrEnum):
    RUNNING = "RUNNING"
    COMPENSATING = "COMPENSATING"
    COMPLETED = "COMPLETED"
    COMPENSATED = "COMPENSATED"
    #: A compensation could not be completed yet (stuck): surfaced, still retried.
    FAILED = "FAILED"


class StepStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"


class Compensation(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DONE = "DONE"


#: Turning back is possible from these states (a cancel request is acted upon).
_BACKWARD = (SagaState.COMPENSATING, SagaState.FAILED)

#: Code of a failure for an attempt a worker started and never finished (crash).
INTERRUPTED = "INTERRUPTED"
#: Code of a failure for a command whose reply did not come in time.
TIMEOUT = "TIMEOUT"

#: Which action undoes a step (its compensation or a reversal), or None.
Undo = Callable[[SagaStep], Action | None]


@dataclass(frozen=True)
class Reply:
    """A reply event recorded for the step that awaits it."""

    kind: Literal["success", "failure"]
    topic: str
    event_id: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class Failure:
    """Why an attempt did not succeed.

    ``transient`` failures (unavailable, deadline, timeout, a crash) may have had
    an effect and may be retried; a rejection is the participant's answer that
    nothing was done, and is never retried before the pivot.
    """

    transient: bool
    code: str
    detail: str

    def describe(self) -> str:
        return f"{self.code}: {self.detail}"[:2000]


@dataclass(frozen=True)
class StepRecord:
    """The stored execution state of one step of one instance."""

    index: int
    name: str
    status: StepStatus = StepStatus.PENDING
    attempts: int = 0
    uncertain: bool = False
    awaiting_until: datetime | None = None
    reply: Reply | None = None
    result: Mapping[str, Any] | None = None
    compensation: Compensation | None = None
    compensation_attempts: int = 0
    stuck: bool = False
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    compensation_started_at: datetime | None = None
    compensated_at: datetime | None = None


@dataclass(frozen=True)
class SagaRecord:
    """The stored state of one saga instance."""

    saga_id: UUID
    saga_type: str
    correlation_key: str
    state: SagaState
    current: int | None
    data: Mapping[str, Any]
    steps: tuple[StepRecord, ...]
    outcome: Outcome | None = None
    outcome_detail: str | None = None
    cancel: Outcome | None = None
    next_attempt_at: datetime | None = None

    @property
    def terminal(self) -> bool:
        return self.state in (SagaState.COMPLETED, SagaState.COMPENSATED)

    def step(self, index: int) -> StepRecord:
        return self.steps[index]

    def with_step(self, step: StepRecord, **changes: Any) -> SagaRecord:
        steps = list(self.steps)
        steps[step.index] = step
        return replace(self, steps=tuple(steps), **changes)


def new_record(
    definition: SagaDefinition, saga_id: UUID, correlation_key: str, data: Mapping[str, Any]
) -> SagaRecord:
    """A fresh instance: RUNNING on its first step, due now."""
    return SagaRecord(
        saga_id=saga_id,
        saga_type=definition.name,
        correlation_key=correlation_key,
        state=SagaState.RUNNING,
        current=0,
        data=dict(data),
        steps=tuple(StepRecord(i, step.name) for i, step in enumerate(definition.steps)),
    )


# ----------------------------------------------------------------------- notes


@dataclass(frozen=True)
class SagaBegan:
    """The first attempt of the first step was recorded."""


@dataclass(frozen=True)
class OutcomeDecided:
    """The saga turns back: the orchestrator applies the outcome (e.g. cancels the order)."""

    outcome: Outcome
    detail: str | None
    step: int | None


@dataclass(frozen=True)
class StepEnded:
    """A step's action or compensation finished (for the duration metric)."""

    step: int
    phase: Literal["action", "compensation"]
    result: Literal["succeeded", "failed"]
    started_at: datetime | None
    ended_at: datetime


@dataclass(frozen=True)
class Retrying:
    step: int
    phase: Literal["action", "compensation"]
    delay_ms: int
    failure: Failure


@dataclass(frozen=True)
class MarkedStuck:
    """A step keeps failing where it cannot be given up (compensation, after the pivot)."""

    step: int
    phase: Literal["action", "compensation"]
    failure: Failure


@dataclass(frozen=True)
class Finished:
    """The saga reached COMPLETED or COMPENSATED."""

    state: SagaState
    outcome: Outcome | None


@dataclass(frozen=True)
class EnteredFailed:
    """A compensation is stuck: the saga is FAILED until it goes through."""

    outcome: Outcome | None
    step: int


Note = SagaBegan | OutcomeDecided | StepEnded | Retrying | MarkedStuck | Finished | EnteredFailed


@dataclass(frozen=True)
class Transition:
    """The record after a transition and what happened on the way."""

    record: SagaRecord
    notes: tuple[Note, ...] = ()


# ----------------------------------------------------------------------- moves


@dataclass(frozen=True)
class Execute:
    """Attempt step ``index``'s action."""

    index: int


@dataclass(frozen=True)
class Compensate:
    """Attempt step ``index``'s undo action."""

    index: int


@dataclass(frozen=True)
class ApplyReply:
    """Act upon the reply recorded for step ``index``."""

    index: int
    compensation: bool


@dataclass(frozen=True)
class TimeOut:
    """The reply step ``index`` awaits did not come in time."""

    index: int
    compensation: bool


@dataclass(frozen=True)
class Abandon:
    """The last allowed attempt of step ``index`` never finished (its worker was lost)."""

    index: int


@dataclass(frozen=True)
class BeginCompensation:
    """Turn back: a cancel request."""

    outcome: Outcome
    detail: str | None


@dataclass(frozen=True)
class Wait:
    """Nothing to do before ``until`` (``None``: until an input arrives, or ever)."""

    until: datetime | None


Move = Execute | Compensate | ApplyReply | TimeOut | Abandon | BeginCompensation | Wait


def next_move(definition: SagaDefinition, record: SagaRecord, now: datetime) -> Move:
    """What a worker does with ``record`` at ``now``."""
    if record.state is SagaState.COMPENSATED:
        return Wait(None)
    if record.state is SagaState.COMPLETED:
        if record.cancel is not None:
            return BeginCompensation(record.cancel, "canceled on request")
        return Wait(None)
    if record.current is None:
        raise ValueError(f"saga {record.saga_id} is {record.state} without a current step")
    step = record.steps[record.current]
    if record.state is SagaState.RUNNING:
        if record.cancel is not None:
            return BeginCompensation(record.cancel, "canceled on request")
        if step.reply is not None:
            return ApplyReply(step.index, compensation=False)
        if step.awaiting_until is not None:
            if now >= step.awaiting_until:
                return TimeOut(step.index, compensation=False)
            return Wait(step.awaiting_until)
        spec = definition.steps[step.index]
        limit = spec.retry.max_attempts
        if (
            step.status is StepStatus.RUNNING
            and spec.kind != "retriable"
            and limit is not None
            and step.attempts >= limit
        ):
            return Abandon(step.index)
        return Execute(step.index)
    # COMPENSATING or FAILED: the current step is being compensated.
    if step.reply is not None:
        return ApplyReply(step.index, compensation=True)
    if step.awaiting_until is not None:
        if now >= step.awaiting_until:
            return TimeOut(step.index, compensation=True)
        return Wait(step.awaiting_until)
    return Compensate(step.index)


# --------------------------------------------------------------- retry rules


def retry_delay_ms(backoff: Backoff, failed_attempts: int, rng: random.Random) -> int:
    """Delay before the next attempt after ``failed_attempts`` failures.

    Exponential (``initial × multiplier^(n-1)``, capped at ``max``); with jitter
    the delay is drawn from the upper half of that, so competing retries spread
    out without ever collapsing to zero.
    """
    ceiling = backoff.delay_ms(max(failed_attempts, 1))
    if not backoff.jitter:
        return ceiling
    return int(rng.uniform(ceiling / 2, ceiling))


def should_retry(step: SagaStep, failure: Failure, attempts: int) -> bool:
    """Whether a failed forward attempt (the ``attempts``-th) is tried again."""
    if step.kind == "retriable":
        return True  # after the pivot the saga only moves forward
    if not failure.transient or failure.code not in step.retry.retry_on:
        return False
    limit = step.retry.max_attempts
    return limit is None or attempts < limit


def failure_outcome(step: SagaStep, failure: Failure) -> Outcome:
    """The outcome of giving up on ``step`` after ``failure``."""
    first, second = (
        (step.on_timeout, step.on_rejected)
        if failure.transient
        else (step.on_rejected, step.on_timeout)
    )
    outcome = first or second
    if outcome is None:
        raise ValueError(f"step {step.name!r} can fail but declares no on_rejected/on_timeout")
    return outcome


def _at(now: datetime, milliseconds: int) -> datetime:
    return now + timedelta(milliseconds=milliseconds)


# ----------------------------------------------------------------- forward


def start_attempt(
    record: SagaRecord, index: int, now: datetime, *, compensation: bool
) -> Transition:
    """Record that an attempt of step ``index`` (or of its undo) starts now.

    A forward attempt makes the step uncertain until its answer is recorded: if
    the worker dies meanwhile, the participant may have acted.
    """
    step = record.steps[index]
    if compensation:
        step = replace(
            step,
            compensation=Compensation.RUNNING,
            compensation_attempts=step.compensation_attempts + 1,
            compensation_started_at=step.compensation_started_at or now,
        )
        return Transition(record.with_step(step))
    first = index == 0 and step.attempts == 0
    step = replace(
        step,
        status=StepStatus.RUNNING,
        attempts=step.attempts + 1,
        uncertain=True,
        started_at=step.started_at or now,
    )
    return Transition(record.with_step(step), (SagaBegan(),) if first else ())


def command_sent(
    record: SagaRecord, index: int, action: CommandAction, now: datetime
) -> SagaRecord:
    """A command went to the outbox: await its reply until the action's timeout."""
    until = _at(now, action.timeout_ms)
    step = replace(record.steps[index], awaiting_until=until, reply=None)
    return record.with_step(step, next_attempt_at=until)


def succeed(
    definition: SagaDefinition,
    record: SagaRecord,
    index: int,
    result: Mapping[str, Any] | None,
    now: datetime,
) -> Transition:
    """Step ``index`` succeeded: on to the next step, or COMPLETED after the last."""
    step = replace(
        record.steps[index],
        status=StepStatus.SUCCEEDED,
        finished_at=now,
        result=dict(result) if result is not None else None,
        uncertain=False,
        awaiting_until=None,
        reply=None,
        stuck=False,
    )
    notes: list[Note] = [StepEnded(index, "action", "succeeded", step.started_at, now)]
    following = index + 1
    if following == len(definition.steps):
        updated = record.with_step(
            step, state=SagaState.COMPLETED, current=None, next_attempt_at=None
        )
        notes.append(Finished(SagaState.COMPLETED, None))
    else:
        updated = record.with_step(step, current=following, next_attempt_at=now)
    return Transition(updated, tuple(notes))


def fail(
    definition: SagaDefinition,
    record: SagaRecord,
    index: int,
    failure: Failure,
    now: datetime,
    rng: random.Random,
    *,
    undo: Undo,
    alert_after: int,
) -> Transition:
    """Step ``index``'s attempt failed: retry it later, or turn back."""
    spec = definition.steps[index]
    step = record.steps[index]
    if should_retry(spec, failure, step.attempts):
        delay = retry_delay_ms(spec.retry.backoff, step.attempts, rng)
        notes: list[Note] = [Retrying(index, "action", delay, failure)]
        stuck = step.stuck or step.attempts >= alert_after
        if stuck and not step.stuck:
            notes.append(MarkedStuck(index, "action", failure))
        step = replace(
            step,
            status=StepStatus.RUNNING,
            uncertain=step.uncertain or failure.transient,
            awaiting_until=None,
            reply=None,
            error=failure.describe(),
            stuck=stuck,
        )
        return Transition(record.with_step(step, next_attempt_at=_at(now, delay)), tuple(notes))
    step = replace(
        step,
        status=StepStatus.FAILED,
        finished_at=now,
        # A rejection says the participant did nothing; anything else may have acted.
        uncertain=failure.transient,
        awaiting_until=None,
        reply=None,
        error=failure.describe(),
    )
    failed = record.with_step(step)
    turned = begin_compensation(
        definition, failed, failure_outcome(spec, failure), failure.describe(), now, undo=undo
    )
    ended = StepEnded(index, "action", "failed", step.started_at, now)
    return Transition(turned.record, (ended, *turned.notes))


def abandon(
    definition: SagaDefinition,
    record: SagaRecord,
    index: int,
    now: datetime,
    rng: random.Random,
    *,
    undo: Undo,
    alert_after: int,
) -> Transition:
    """The last allowed attempt never reported back: give the step up (uncertain)."""
    failure = Failure(True, INTERRUPTED, "the last attempt never finished (its worker was lost)")
    return fail(definition, record, index, failure, now, rng, undo=undo, alert_after=alert_after)


# ---------------------------------------------------------------- backward


def begin_compensation(
    definition: SagaDefinition,
    record: SagaRecord,
    outcome: Outcome,
    detail: str | None,
    now: datetime,
    *,
    undo: Undo,
) -> Transition:
    """Turn back with ``outcome``: mark what needs undoing, skip what never ran."""
    steps = list(record.steps)
    marked: list[int] = []
    for i, step in enumerate(steps):
        acted = step.status is StepStatus.SUCCEEDED or (
            step.status in (StepStatus.RUNNING, StepStatus.FAILED) and step.uncertain
        )
        if acted:
            if step.status is StepStatus.RUNNING:
                # Interrupted while in flight (a cancel request): it is over.
                step = replace(
                    step,
                    status=StepStatus.FAILED,
                    finished_at=now,
                    awaiting_until=None,
                    reply=None,
                    error=f"interrupted: {outcome.reason}",
                )
            if step.compensation is None and undo(definition.steps[i]) is not None:
                step = replace(step, compensation=Compensation.PENDING)
            if step.compensation in (Compensation.PENDING, Compensation.RUNNING):
                marked.append(i)
        elif step.status in (StepStatus.PENDING, StepStatus.RUNNING):
            step = replace(step, status=StepStatus.SKIPPED, awaiting_until=None, reply=None)
        steps[i] = step
    notes: list[Note] = [OutcomeDecided(outcome, detail, record.current)]
    base = replace(
        record,
        steps=tuple(steps),
        outcome=outcome,
        outcome_detail=detail,
        cancel=None,
    )
    if not marked:
        notes.append(Finished(SagaState.COMPENSATED, outcome))
        return Transition(
            replace(base, state=SagaState.COMPENSATED, current=None, next_attempt_at=None),
            tuple(notes),
        )
    return Transition(
        replace(base, state=SagaState.COMPENSATING, current=max(marked), next_attempt_at=now),
        tuple(notes),
    )


def compensated(record: SagaRecord, index: int, now: datetime) -> Transition:
    """Step ``index``'s undo succeeded: on to the previous one, or COMPENSATED."""
    step = replace(
        record.steps[index],
        compensation=Compensation.DONE,
        compensated_at=now,
        awaiting_until=None,
        reply=None,
        stuck=False,
    )
    updated = record.with_step(step)
    notes: list[Note] = [
        StepEnded(index, "compensation", "succeeded", step.compensation_started_at, now)
    ]
    left = [
        s.index
        for s in updated.steps
        if s.compensation in (Compensation.PENDING, Compensation.RUNNING)
    ]
    if not left:
        notes.append(Finished(SagaState.COMPENSATED, record.outcome))
        return Transition(
            replace(updated, state=SagaState.COMPENSATED, current=None, next_attempt_at=None),
            tuple(notes),
        )
    return Transition(
        replace(updated, state=SagaState.COMPENSATING, current=max(left), next_attempt_at=now),
        tuple(notes),
    )


def compensation_failed(
    definition: SagaDefinition,
    record: SagaRecord,
    index: int,
    failure: Failure,
    now: datetime,
    rng: random.Random,
    *,
    alert_after: int,
) -> Transition:
    """Step ``index``'s undo failed: retry it later, and surface it once stuck."""
    step = record.steps[index]
    delay = retry_delay_ms(definition.steps[index].retry.backoff, step.compensation_attempts, rng)
    stuck = step.stuck or not failure.transient or step.compensation_attempts >= alert_after
    notes: list[Note] = [Retrying(index, "compensation", delay, failure)]
    state = record.state
    if stuck and not step.stuck:
        notes.append(MarkedStuck(index, "compensation", failure))
    if stuck and state is not SagaState.FAILED:
        state = SagaState.FAILED
        notes.append(EnteredFailed(record.outcome, index))
    step = replace(
        step,
        compensation=Compensation.PENDING,
        awaiting_until=None,
        reply=None,
        error=failure.describe(),
        stuck=stuck,
    )
    return Transition(
        record.with_step(step, state=state, next_attempt_at=_at(now, delay)), tuple(notes)
    )


# ------------------------------------------------------------------ inputs


def reply_target(
    definition: SagaDefinition, record: SagaRecord, topic: str, *, undo: Undo
) -> tuple[int, bool, Literal["success", "failure"]] | None:
    """Which step awaits a reply on ``topic`` now: (index, compensation?, kind).

    The current step's command may have been sent several times (a retry after a
    timeout): a reply to any of them is an answer, also while the next attempt is
    pending. ``None`` when nothing awaits it: a duplicate, a reply to a step the
    saga gave up on (a late payment after its timeout: the step's compensation, a
    refund, settles it), or a reply to another instance's command.
    """
    if record.current is None:
        return None
    step = record.steps[record.current]
    if step.reply is not None:
        return None
    spec = definition.steps[step.index]
    if (
        record.state is SagaState.RUNNING
        and step.status is StepStatus.RUNNING
        and step.attempts > 0
    ):
        action: Action | None = spec.action
        compensation = False
    elif (
        record.state in _BACKWARD
        and step.compensation in (Compensation.RUNNING, Compensation.PENDING)
        and step.compensation_attempts > 0
    ):
        action = undo(spec)
        compensation = True
    else:
        return None
    if not isinstance(action, CommandAction):
        return None
    if topic in action.success:
        return step.index, compensation, "success"
    if topic in action.failure:
        return step.index, compensation, "failure"
    return None


def with_reply(record: SagaRecord, index: int, reply: Reply, now: datetime) -> SagaRecord:
    """Record a reply for the step awaiting it; a worker applies it next."""
    return record.with_step(replace(record.steps[index], reply=reply), next_attempt_at=now)


def cancel_allowed(
    definition: SagaDefinition, record: SagaRecord, *, undo: Undo
) -> Literal["accepted", "already", "refused"]:
    """Whether a cancel request can turn this instance back.

    Already turning back (or done turning back): nothing more to do. After the
    pivot it takes an undo action for the pivot (a reversal), else it is refused.
    """
    if record.state in (*_BACKWARD, SagaState.COMPENSATED):
        return "already"
    pivots = [i for i, step in enumerate(definition.steps) if step.kind == "pivot"]
    for pivot in pivots:
        pivot_ran = record.state is SagaState.COMPLETED or record.steps[pivot].status in (
            StepStatus.SUCCEEDED,
            StepStatus.RUNNING,
        )
        if pivot_ran and undo(definition.steps[pivot]) is None:
            return "refused"
    return "accepted"


def with_cancel(record: SagaRecord, outcome: Outcome, now: datetime) -> SagaRecord:
    """Record a cancel request; a worker turns the saga back next."""
    return replace(record, cancel=outcome, next_attempt_at=now)


def settle(record: SagaRecord, now: datetime) -> SagaRecord:
    """A pending cancel request makes the instance due now, whatever the transition
    planned (a retry later, or nothing at all once COMPLETED)."""
    pending = record.cancel is not None and record.state in (
        SagaState.RUNNING,
        SagaState.COMPLETED,
    )
    if pending and (record.next_attempt_at is None or record.next_attempt_at > now):
        return replace(record, next_attempt_at=now)
    return record


def api_step_status(step: StepRecord) -> str:
    """The step status shown to clients (``SagaStepStatus`` of the API)."""
    if step.compensation is Compensation.DONE:
        return "COMPENSATED"
    if step.compensation is Compensation.RUNNING or (
        step.compensation is Compensation.PENDING and step.compensation_attempts > 0
    ):
        return "COMPENSATING"
    return step.status.value
