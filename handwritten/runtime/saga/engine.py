"""The saga engine: runs a ``SagaDefinition`` (the DSL's program) durably.

The definition — steps, kinds, timeouts, retry policies, outcomes — comes from the
generated code (``generated.sagas.<name>``) and is read at every transition, so a
change to the spec changes behaviour after ``make generate`` with no hand edit. What
the definition names (gRPC methods, command topics, local actions) is bound to code
by the orchestrator through ``Participants``; the engine refuses to start when a
name has no binding.

**Durability.** An instance lives in ``saga_instances`` / ``saga_step_executions``.
Every transition is one transaction that locks the instance, applies the state
machine (``machine.py``) and writes what it sends (commands, the orchestrator's own
events) to the outbox in that same transaction. Nothing is kept in memory between
transitions, so any worker of any replica can take over after a crash.

**Who does what.**

- ``start`` (orchestrator, inside the transaction that creates the aggregate), and
  the inputs ``record_reply`` (consumer, inside its inbox transaction) and
  ``cancel`` (API) only *record*; they never run steps.
- ``run_one`` (the ``SagaWorker`` loop) picks one due instance with ``FOR UPDATE
  SKIP LOCKED`` and performs one transition. A gRPC call is made outside any
  transaction under a *lease*: the attempt is recorded first (so crashes count as
  attempts), the call runs with the step's deadline, and its answer is recorded in
  a second transaction if the lease is still ours. A worker that dies mid-call
  leaves the lease to expire (deadline + margin), after which the step is attempted
  again; participants are idempotent per correlation id, so the effect happens once.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import asyncpg
from grpclib import GRPCError
from grpclib.exceptions import ProtocolError, StreamTerminatedError
from h2.exceptions import H2Error
from opentelemetry import trace
from pydantic import BaseModel

from generated.events.registry import EVENTS_BY_TOPIC, Event
from generated.sagas.types import (
    Action,
    CommandAction,
    GrpcAction,
    LocalAction,
    Outcome,
    SagaDefinition,
    SagaStep,
)
from handwritten.runtime.backoff import Backoff
from handwritten.runtime.context import correlation_id, current_correlation_id
from handwritten.runtime.logging import get_logger
from handwritten.runtime.outbox.sender import OutboxSender
from handwritten.runtime.saga import machine, metrics, store
from handwritten.runtime.saga.machine import (
    TIMEOUT,
    Abandon,
    ApplyReply,
    BeginCompensation,
    Compensate,
    EnteredFailed,
    Failure,
    Finished,
    MarkedStuck,
    Note,
    OutcomeDecided,
    Reply,
    Retrying,
    SagaBegan,
    SagaRecord,
    SagaState,
    StepEnded,
    TimeOut,
    Transition,
    Wait,
)
from handwritten.runtime.tracing import (
    ORDER_ID,
    SAGA_ID,
    SAGA_NAME,
    SAGA_STEP,
    attribute_name,
    bound_ids,
    current_traceparent,
    record_error,
    resumed_span,
    set_attributes,
)

log = get_logger(__name__)

#: gRPC codes that always mean "may not have reached / finished": uncertain.
_TRANSPORT_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})
_TRANSPORT_ERRORS = (OSError, ProtocolError, StreamTerminatedError, H2Error)


class StepRejectedError(Exception):
    """Raised by a binding: the participant refused (a business answer, no effect)."""


class SagaDefinitionError(RuntimeError):
    """The definition and the bindings (or a stored instance) do not fit together."""


# ------------------------------------------------------------------ bindings


@dataclass(frozen=True)
class SagaContext:
    """What a binding knows about the instance it works for."""

    saga_id: uuid.UUID
    saga: str
    correlation_key: str
    #: The start data given by the orchestrator.
    data: Mapping[str, Any]
    #: What each succeeded step's participant answered, by step name.
    results: Mapping[str, Mapping[str, Any]]
    #: Why the saga turns back (set while compensating).
    outcome: Outcome | None
    outcome_detail: str | None
    _after_commit: list[Callable[[], Awaitable[None]]] = field(
        default_factory=list, repr=False, compare=False
    )

    def after_commit(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` once the transition's transaction has committed."""
        self._after_commit.append(callback)


@dataclass(frozen=True)
class StepContext(SagaContext):
    """A ``SagaContext`` for one attempt of one step's action or compensation."""

    step: SagaStep | None = None
    action: Action | None = None
    attempt: int = 1
    compensating: bool = False


#: Calls ``action.method`` with the given deadline (seconds: pass it to the stub's
#: ``timeout``); returns the result to
#: keep (JSON), raises ``StepRejectedError`` for a business refusal; gRPC errors and
#: transport errors are classified by the engine.
GrpcHandler = Callable[[StepContext, float], Awaitable[Mapping[str, Any] | None]]
#: Builds the payload of the command published on ``action.topic``.
CommandHandler = Callable[[StepContext], BaseModel]
#: Runs a local action inside the transition's transaction (a savepoint).
LocalHandler = Callable[[asyncpg.Connection, StepContext], Awaitable[Mapping[str, Any] | None]]
#: Applies the outcome of a saga that turns back (e.g. cancels the order), inside
#: the transition's transaction; must be idempotent.
OutcomeHandler = Callable[[asyncpg.Connection, SagaContext, Outcome, str | None], Awaitable[None]]


@dataclass(frozen=True)
class Participants:
    """The orchestrator's code for every name the definition uses.

    ``reversals`` undo steps the DSL gives no compensation — in practice the pivot —
    when a saga is canceled on request after they ran (or when their outcome is
    uncertain); their actions need bindings too.
    """

    on_outcome: OutcomeHandler
    grpc: Mapping[str, GrpcHandler] = field(default_factory=dict)
    commands: Mapping[str, CommandHandler] = field(default_factory=dict)
    local: Mapping[str, LocalHandler] = field(default_factory=dict)
    reversals: Mapping[str, Action] = field(default_factory=dict)


class CancelResult(StrEnum):
    #: Recorded; a worker turns the saga back.
    REQUESTED = "REQUESTED"
    #: The saga is already turning back (or has).
    ALREADY = "ALREADY"
    #: Past the pivot with nothing to undo it: cannot be canceled.
    REFUSED = "REFUSED"
    #: No saga for this correlation key.
    NO_SAGA = "NO_SAGA"


@dataclass
class _Done:
    """What to do after a transition commits: metrics, logs, callbacks."""

    saga: str
    record: SagaRecord | None = None
    notes: tuple[Note, ...] = ()
    callbacks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)


@dataclass(frozen=True)
class _Call:
    """A remote call in flight under a lease."""

    saga_id: uuid.UUID
    lease_id: uuid.UUID
    index: int
    compensation: bool
    action: GrpcAction
    context: StepContext
    trace_correlation_id: str


@contextlib.contextmanager
def _correlated(value: str) -> Iterator[None]:
    token = correlation_id.set(value)
    try:
        yield
    finally:
        correlation_id.reset(token)


def _bound(action: Action, participants: Participants) -> bool:
    if isinstance(action, GrpcAction):
        return action.method in participants.grpc
    if isinstance(action, CommandAction):
        return action.topic in participants.commands and action.topic in EVENTS_BY_TOPIC
    return action.name in participants.local


class SagaEngine:
    """Runs instances of one ``SagaDefinition`` (see the module docstring).

    - ``service``: the producer name of the commands (default: the orchestrator).
    - ``compensation_alert_after``: failed attempts after which a compensation (or
      a step after the pivot) is marked stuck and surfaced; it is still retried.
    - ``lease_margin_ms``: added to a call's deadline before another worker may
      take the step over.
    """

    def __init__(
        self,
        definition: SagaDefinition,
        participants: Participants,
        *,
        service: str | None = None,
        compensation_alert_after: int = 5,
        lease_margin_ms: int = 2000,
        transition_backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.definition = definition
        self.participants = participants
        self.service = service or definition.orchestrator
        self._alert_after = max(1, compensation_alert_after)
        self._lease_margin_ms = lease_margin_ms
        self._transition_backoff = transition_backoff or Backoff(initial=0.5, maximum=30.0)
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._validate()

    @property
    def name(self) -> str:
        return self.definition.name

    def undo(self, step: SagaStep) -> Action | None:
        """The action that undoes ``step``: its compensation, else its reversal."""
        return step.compensation or self.participants.reversals.get(step.name)

    def _validate(self) -> None:
        names = {step.name for step in self.definition.steps}
        unknown = set(self.participants.reversals) - names
        if unknown:
            raise SagaDefinitionError(f"reversals for unknown steps: {sorted(unknown)}")
        for step in self.definition.steps:
            for action in (step.action, self.undo(step)):
                if action is not None and not _bound(action, self.participants):
                    raise SagaDefinitionError(
                        f"saga {self.name!r}, step {step.name!r}: no binding for {action}"
                    )
            if step.kind != "retriable" and step.on_rejected is None and step.on_timeout is None:
                raise SagaDefinitionError(
                    f"saga {self.name!r}, step {step.name!r} can fail but has no outcome"
                )

    # ------------------------------------------------------------------ inputs

    async def start(
        self,
        connection: asyncpg.Connection,
        correlation_key: str,
        data: Mapping[str, Any],
        *,
        saga_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """Record a new instance (due now) in the caller's transaction; its id.

        Starting twice for one correlation key returns the existing instance.
        """
        if not connection.is_in_transaction():
            raise RuntimeError("a saga starts inside the transaction of what starts it")
        record = machine.new_record(self.definition, saga_id or uuid.uuid4(), correlation_key, data)
        inserted = await store.insert(
            connection,
            record,
            saga_version=self.definition.version,
            trace_correlation_id=current_correlation_id(),
            traceparent=current_traceparent(),
        )
        if not inserted:
            existing = await store.find(connection, self.name, correlation_key, lock=False)
            assert existing is not None
            return existing.record.saga_id
        await store.notify(connection)
        log.info("saga recorded", saga=self.name, saga_id=str(record.saga_id), key=correlation_key)
        return record.saga_id

    async def record_reply(self, connection: asyncpg.Connection, event: Event[Any]) -> bool:
        """Record a reply event for the step awaiting it (in the consumer's transaction).

        Returns False when no step awaits it (unknown saga, duplicate with a new
        event id, late reply after a timeout): nothing changes. The payload must
        carry ``sagaId``.
        """
        payload: dict[str, Any] = event.payload.model_dump(mode="json", by_alias=True)
        topic = event.spec.topic
        if "sagaId" not in payload:
            raise ValueError(f"{topic} carries no sagaId: not a saga reply")
        stored = await store.get(connection, uuid.UUID(payload["sagaId"]), lock=True)
        context = {"saga": self.name, "saga_id": payload["sagaId"], "topic": topic}
        if stored is None or stored.record.saga_type != self.name:
            metrics.REPLIES_IGNORED.labels(self.name, topic).inc()
            log.debug("reply for no saga of ours ignored", **context)
            return False
        record = stored.record
        key = payload.get(self.definition.correlation)
        if key is not None and str(key) != record.correlation_key:
            metrics.REPLIES_IGNORED.labels(self.name, topic).inc()
            log.warning("reply for another correlation key ignored", key=str(key), **context)
            return False
        target = machine.reply_target(self.definition, record, topic, undo=self.undo)
        if target is None:
            metrics.REPLIES_IGNORED.labels(self.name, topic).inc()
            log.info(
                "reply not awaited (duplicate or late); ignored",
                state=record.state.value,
                current=record.current,
                **context,
            )
            return False
        index, _, kind = target
        now = await store.now(connection)
        reply = Reply(kind=kind, topic=topic, event_id=str(event.headers.event_id), data=payload)
        await self._save_input(
            connection, stored, machine.with_reply(record, index, reply, now), now
        )
        log.info("reply recorded", step=record.steps[index].name, kind=kind, **context)
        return True

    async def cancel(
        self, connection: asyncpg.Connection, correlation_key: str, outcome: Outcome
    ) -> CancelResult:
        """Ask the instance of ``correlation_key`` to turn back with ``outcome``.

        Locks the instance first: call it before changing the aggregate, in the same
        transaction, so workers and the API always lock in the same order.
        """
        stored = await store.find(connection, self.name, correlation_key, lock=True)
        if stored is None:
            return CancelResult.NO_SAGA
        verdict = machine.cancel_allowed(self.definition, stored.record, undo=self.undo)
        if verdict == "already":
            return CancelResult.ALREADY
        if verdict == "refused":
            return CancelResult.REFUSED
        now = await store.now(connection)
        await self._save_input(
            connection, stored, machine.with_cancel(stored.record, outcome, now), now
        )
        log.info(
            "saga cancel requested",
            saga=self.name,
            saga_id=str(stored.record.saga_id),
            reason=outcome.reason,
        )
        return CancelResult.REQUESTED

    async def get(
        self, connection: asyncpg.Connection, correlation_key: str
    ) -> store.Stored | None:
        """The instance for ``correlation_key`` (read only)."""
        return await store.find(connection, self.name, correlation_key, lock=False)

    async def _save_input(
        self, connection: asyncpg.Connection, stored: store.Stored, after: SagaRecord, now: datetime
    ) -> None:
        leased = stored.lease_until is not None and stored.lease_until > now
        if leased:
            # A worker is calling a participant: it looks at the input when it records
            # the answer; nobody else may touch the instance before its lease ends.
            after = replace(after, next_attempt_at=stored.record.next_attempt_at)
        await store.save(
            connection,
            stored.record,
            after,
            lease_id=stored.lease_id if leased else None,
            lease_until=stored.lease_until if leased else None,
            clear_failures=False,
        )
        await store.notify(connection)

    # ------------------------------------------------------------------ worker

    async def run_one(self, pool: asyncpg.Pool) -> bool:
        """Perform one transition of one due instance; False when none is due.

        The whole transition, the participant call included, runs with the saga's
        correlation id and as one span of the trace that started the saga.
        """
        with contextlib.ExitStack() as scope:
            return await self._run_one(pool, scope)

    async def _run_one(self, pool: asyncpg.Pool, scope: contextlib.ExitStack) -> bool:
        done = _Done(self.name)
        call: _Call | None = None
        saga_id: uuid.UUID | None = None
        try:
            async with pool.acquire() as connection, connection.transaction():
                stored = await store.pick_due(connection, self.name)
                if stored is None:
                    return False
                saga_id = stored.record.saga_id
                scope.enter_context(_correlated(stored.trace_correlation_id))
                scope.enter_context(self._traced(stored))
                call = await self._transition(connection, stored, done)
        except Exception as exc:
            if saga_id is None:
                raise
            record_error(exc)
            await self._transition_failed(pool, saga_id, exc)
            return True
        await self._after(done)
        if call is not None:
            with _correlated(call.trace_correlation_id):
                await self._finish_call(pool, call)
        return True

    def _context(
        self,
        record: SagaRecord,
        index: int | None = None,
        action: Action | None = None,
        *,
        compensating: bool = False,
        done: _Done,
    ) -> StepContext:
        attempt, step = 0, None
        if index is not None:
            step = self.definition.steps[index]
            stepped = record.steps[index]
            attempt = stepped.compensation_attempts if compensating else stepped.attempts
        return StepContext(
            saga_id=record.saga_id,
            saga=self.name,
            correlation_key=record.correlation_key,
            data=record.data,
            results={s.name: s.result for s in record.steps if s.result is not None},
            outcome=record.outcome,
            outcome_detail=record.outcome_detail,
            _after_commit=done.callbacks,
            step=step,
            action=action,
            attempt=attempt,
            compensating=compensating,
        )

    @contextlib.contextmanager
    def _traced(self, stored: store.Stored) -> Iterator[None]:
        """A span continuing the saga's trace; log lines get the saga (and order) id."""
        record = stored.record
        key_attribute = attribute_name(self.definition.correlation)
        with (
            resumed_span(
                f"saga {self.name}",
                stored.traceparent,
                attributes={
                    SAGA_NAME: self.name,
                    SAGA_ID: str(record.saga_id),
                    key_attribute: record.correlation_key,
                },
            ),
            bound_ids(
                saga_id=record.saga_id,
                order_id=record.correlation_key if key_attribute == ORDER_ID else None,
            ),
        ):
            yield

    def _describe(self, move: machine.Move) -> None:
        """Name the transition's span after what it does: ``saga step reserve_inventory``,
        ``saga compensation reserve_inventory``, ``… reply``, ``… timeout``."""
        if isinstance(move, Wait | BeginCompensation):
            kind = "wait" if isinstance(move, Wait) else "begin compensation"
            trace.get_current_span().update_name(f"saga {self.name} {kind}")
            return
        compensation = isinstance(move, Compensate) or getattr(move, "compensation", False)
        step = self.definition.steps[move.index].name
        suffix = {ApplyReply: " reply", TimeOut: " timeout", Abandon: " abandoned"}
        phase = "compensation" if compensation else "step"
        trace.get_current_span().update_name(f"saga {phase} {step}{suffix.get(type(move), '')}")
        set_attributes({SAGA_STEP: step, "saga.phase": phase})

    def _check_shape(self, record: SagaRecord) -> None:
        names = tuple(step.name for step in record.steps)
        expected = tuple(step.name for step in self.definition.steps)
        if names != expected:
            raise SagaDefinitionError(
                f"saga {record.saga_id} has steps {names}, the definition {expected}"
            )

    async def _transition(
        self, connection: asyncpg.Connection, stored: store.Stored, done: _Done
    ) -> _Call | None:
        record = stored.record
        self._check_shape(record)
        now = await store.now(connection)
        move = machine.next_move(self.definition, record, now)
        self._describe(move)
        kw: dict[str, Any] = {"undo": self.undo, "alert_after": self._alert_after}
        transition: Transition
        if isinstance(move, Wait):
            await store.save(connection, record, replace(record, next_attempt_at=move.until))
            return None
        if isinstance(move, BeginCompensation):
            transition = machine.begin_compensation(
                self.definition, record, move.outcome, move.detail, now, undo=self.undo
            )
        elif isinstance(move, Abandon):
            transition = machine.abandon(self.definition, record, move.index, now, self._rng, **kw)
        elif isinstance(move, ApplyReply):
            transition = self._apply_reply(record, move, now)
        elif isinstance(move, TimeOut):
            transition = self._time_out(record, move, now)
        else:
            index, compensation = move.index, isinstance(move, Compensate)
            step = self.definition.steps[index]
            action = self.undo(step) if compensation else step.action
            assert action is not None
            started = machine.start_attempt(record, index, now, compensation=compensation)
            context = self._context(
                started.record, index, action, compensating=compensation, done=done
            )
            if isinstance(action, GrpcAction):
                lease_id = uuid.uuid4()
                lease_until = now + timedelta(
                    milliseconds=action.timeout_ms + self._lease_margin_ms
                )
                leased = replace(started.record, next_attempt_at=lease_until)
                await store.save(
                    connection, record, leased, lease_id=lease_id, lease_until=lease_until
                )
                done.record, done.notes = leased, started.notes
                return _Call(
                    record.saga_id,
                    lease_id,
                    index,
                    compensation,
                    action,
                    context,
                    stored.trace_correlation_id,
                )
            if isinstance(action, CommandAction):
                await self._send(connection, action, context)
                transition = Transition(
                    machine.command_sent(started.record, index, action, now), started.notes
                )
            else:
                answer = await self._run_local(connection, action, context)
                transition = self._answered(started, index, compensation, answer, now)
        await self._commit_transition(connection, record, transition, done, now)
        return None

    async def _commit_transition(
        self,
        connection: asyncpg.Connection,
        before: SagaRecord,
        transition: Transition,
        done: _Done,
        now: datetime,
    ) -> None:
        after = machine.settle(transition.record, now)
        for note in transition.notes:
            if isinstance(note, OutcomeDecided):
                context = self._context(after, note.step, done=done)
                await self.participants.on_outcome(connection, context, note.outcome, note.detail)
        await store.save(connection, before, after)
        done.record, done.notes = after, (*done.notes, *transition.notes)

    def _answered(
        self,
        started: Transition,
        index: int,
        compensation: bool,
        answer: Mapping[str, Any] | Failure,
        now: datetime,
    ) -> Transition:
        record = started.record
        if isinstance(answer, Failure):
            if compensation:
                result = machine.compensation_failed(
                    self.definition, record, index, answer, now, self._rng,
                    alert_after=self._alert_after,
                )  # fmt: skip
            else:
                result = machine.fail(
                    self.definition, record, index, answer, now, self._rng,
                    undo=self.undo, alert_after=self._alert_after,
                )  # fmt: skip
        elif compensation:
            result = machine.compensated(record, index, now)
        else:
            result = machine.succeed(self.definition, record, index, answer, now)
        return Transition(result.record, (*started.notes, *result.notes))

    def _apply_reply(self, record: SagaRecord, move: ApplyReply, now: datetime) -> Transition:
        reply = record.steps[move.index].reply
        assert reply is not None
        if reply.kind == "success":
            answer: Mapping[str, Any] | Failure = reply.data
        else:
            message = reply.data.get("message") or reply.data.get("reason") or reply.topic
            answer = Failure(False, reply.topic, str(message))
        return self._answered(Transition(record), move.index, move.compensation, answer, now)

    def _time_out(self, record: SagaRecord, move: TimeOut, now: datetime) -> Transition:
        step = self.definition.steps[move.index]
        action = self.undo(step) if move.compensation else step.action
        timeout = getattr(action, "timeout_ms", 0)
        failure = Failure(True, TIMEOUT, f"no reply within {timeout} ms")
        return self._answered(Transition(record), move.index, move.compensation, failure, now)

    async def _send(
        self, connection: asyncpg.Connection, action: CommandAction, context: StepContext
    ) -> None:
        payload = self.participants.commands[action.topic](context)
        event_id = await OutboxSender(connection, self.service).add(
            EVENTS_BY_TOPIC[action.topic], payload
        )
        log.info(
            "saga command sent",
            saga=self.name,
            saga_id=str(context.saga_id),
            topic=action.topic,
            event_id=str(event_id),
            attempt=context.attempt,
        )

    async def _run_local(
        self, connection: asyncpg.Connection, action: LocalAction, context: StepContext
    ) -> Mapping[str, Any] | Failure:
        handler = self.participants.local[action.name]
        try:
            async with connection.transaction():  # a savepoint: a failure undoes only this
                result = await asyncio.wait_for(
                    handler(connection, context), action.timeout_ms / 1000
                )
        except StepRejectedError as exc:
            return Failure(False, "REJECTED", str(exc) or action.name)
        except TimeoutError:
            return Failure(
                True, "DEADLINE_EXCEEDED", f"{action.name} took over {action.timeout_ms} ms"
            )
        except Exception as exc:
            log.warning(
                "local saga action failed", saga=self.name, action=action.name, error=repr(exc)
            )
            return Failure(True, "INTERNAL", repr(exc))
        return dict(result or {})

    async def _call(self, call: _Call) -> Mapping[str, Any] | Failure:
        action, step = call.action, self.definition.steps[call.index]
        handler = self.participants.grpc[action.method]
        timeout = action.timeout_ms / 1000
        try:
            # The binding passes the deadline to grpclib; wait_for is the safety net.
            result = await asyncio.wait_for(handler(call.context, timeout), timeout + 0.5)
        except StepRejectedError as exc:
            return Failure(False, "REJECTED", str(exc) or action.method)
        except GRPCError as exc:
            code = exc.status.name
            transient = code in step.retry.retry_on or code in _TRANSPORT_CODES
            return Failure(transient, code, exc.message or code)
        except TimeoutError:
            return Failure(True, "DEADLINE_EXCEEDED", f"no answer within {action.timeout_ms} ms")
        except _TRANSPORT_ERRORS as exc:
            return Failure(True, "UNAVAILABLE", repr(exc))
        except Exception as exc:
            log.error(
                "saga call binding failed", saga=self.name, method=action.method, exc_info=exc
            )
            return Failure(True, "INTERNAL", repr(exc))
        return dict(result or {})

    async def _finish_call(self, pool: asyncpg.Pool, call: _Call) -> None:
        answer = await self._call(call)
        done = _Done(self.name)
        try:
            async with pool.acquire() as connection, connection.transaction():
                stored = await store.get(connection, call.saga_id, lock=True)
                if stored is None or stored.lease_id != call.lease_id:
                    log.warning(
                        "answer of a call whose lease was lost; discarded (the step is retried)",
                        saga=self.name,
                        saga_id=str(call.saga_id),
                        method=call.action.method,
                    )
                    return
                now = await store.now(connection)
                transition = self._answered(
                    Transition(stored.record), call.index, call.compensation, answer, now
                )
                await self._commit_transition(connection, stored.record, transition, done, now)
        except Exception as exc:
            await self._transition_failed(pool, call.saga_id, exc)
            return
        await self._after(done)

    async def _transition_failed(
        self, pool: asyncpg.Pool, saga_id: uuid.UUID, error: BaseException
    ) -> None:
        metrics.TRANSITION_FAILURES.labels(self.name).inc()
        try:
            async with pool.acquire() as connection, connection.transaction():
                now = await store.now(connection)
                current = await store.get(connection, saga_id, lock=True)
                failures = 0 if current is None else current.transition_failures
                retry_at = now + timedelta(seconds=self._transition_backoff.delay(failures))
                await store.record_transition_failure(connection, saga_id, repr(error), retry_at)
        except Exception as exc:
            log.error("could not record a failed saga transition", exc_info=exc)
        log.error(
            "saga transition failed; retried later",
            saga=self.name,
            saga_id=str(saga_id),
            exc_info=error,
        )

    async def _after(self, done: _Done) -> None:
        record = done.record
        for note in done.notes:
            self._observe(note, record)
        for callback in done.callbacks:
            try:
                await callback()
            except Exception as exc:
                log.warning("after-commit callback failed", saga=self.name, error=repr(exc))

    def _observe(self, note: Note, record: SagaRecord | None) -> None:
        saga = self.name
        context: dict[str, Any] = {"saga": saga}
        if record is not None:
            context.update(saga_id=str(record.saga_id), key=record.correlation_key)

        def step_name(index: int) -> str:
            return self.definition.steps[index].name

        if isinstance(note, SagaBegan):
            metrics.SAGAS_STARTED.labels(saga).inc()
        elif isinstance(note, StepEnded):
            if note.started_at is not None:
                seconds = max(0.0, (note.ended_at - note.started_at).total_seconds())
                metrics.STEP_DURATION.labels(
                    saga, step_name(note.step), note.phase, note.result
                ).observe(seconds)
            log.info(
                "saga step ended",
                step=step_name(note.step),
                phase=note.phase,
                result=note.result,
                **context,
            )
        elif isinstance(note, Retrying):
            metrics.STEP_RETRIES.labels(
                saga, step_name(note.step), note.phase, note.failure.code
            ).inc()
            log.warning(
                "saga step failed; retrying",
                step=step_name(note.step),
                phase=note.phase,
                delay_ms=note.delay_ms,
                error=note.failure.describe(),
                **context,
            )
        elif isinstance(note, MarkedStuck):
            metrics.STEPS_STUCK.labels(saga, step_name(note.step), note.phase).inc()
            log.error(
                "saga step stuck: keeps failing; still retried, needs attention",
                step=step_name(note.step),
                phase=note.phase,
                error=note.failure.describe(),
                **context,
            )
        elif isinstance(note, EnteredFailed):
            reason = "UNKNOWN" if note.outcome is None else note.outcome.reason
            metrics.SAGAS_FAILED.labels(saga, reason).inc()
            log.error("saga FAILED: a compensation is stuck", step=step_name(note.step), **context)
        elif isinstance(note, OutcomeDecided):
            log.info(
                "saga turns back",
                status=note.outcome.status,
                reason=note.outcome.reason,
                detail=note.detail,
                **context,
            )
        elif isinstance(note, Finished):
            if note.state is SagaState.COMPLETED:
                metrics.SAGAS_COMPLETED.labels(saga).inc()
            else:
                reason = "UNKNOWN" if note.outcome is None else note.outcome.reason
                metrics.SAGAS_COMPENSATED.labels(saga, reason).inc()
            log.info("saga finished", state=note.state.value, **context)
