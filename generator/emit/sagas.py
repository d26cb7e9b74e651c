"""Saga definitions as typed data, from ``specs/sagas/*.saga.yaml``."""

from __future__ import annotations

from dataclasses import dataclass

from generator.emit import Output, header, render
from generator.emit.saga_faults import emit_saga_faults
from generator.saga import Action, Outcome, Retry, SagaSpec, Step, duration_ms
from generator.specset import SpecSet


def _retry(retry: Retry) -> str:
    attempts = None if retry.attempts == "unlimited" else retry.attempts
    backoff = retry.backoff
    on = ", ".join(repr(code) for code in sorted(retry.retry_on))
    return (
        f"RetryPolicy(max_attempts={attempts!r}, backoff=Backoff(initial_ms="
        f"{duration_ms(backoff.initial)}, max_ms={duration_ms(backoff.max)}, multiplier="
        f"{float(backoff.multiplier)!r}, jitter={backoff.jitter!r}), retry_on=frozenset({{{on}}}))"
    ).replace("frozenset({})", "frozenset()")


def _action(action: Action | None, default_timeout: str) -> str:
    if action is None:
        return "None"
    timeout = duration_ms(action.timeout or default_timeout)
    if action.grpc is not None:
        return f"GrpcAction(method={action.grpc!r}, timeout_ms={timeout})"
    if action.command is not None:
        assert action.await_ is not None
        return (
            f"CommandAction(topic={action.command!r}, success={tuple(action.await_.success)!r}, "
            f"failure={tuple(action.await_.failure)!r}, timeout_ms={timeout})"
        )
    return (
        f"LocalAction(name={action.local!r}, emits={tuple(action.emits)!r}, timeout_ms={timeout})"
    )


def _outcome(outcome: Outcome | None) -> str:
    return (
        "None"
        if outcome is None
        else f"Outcome(status={outcome.status!r}, reason={outcome.reason!r})"
    )


@dataclass(frozen=True)
class StepView:
    """A step with every field already written as a Python expression."""

    name: str
    kind: str
    description: str
    action: str
    compensation: str
    retry: str
    status: str
    on_rejected: str
    on_timeout: str


def _step_view(saga: SagaSpec, step: Step) -> StepView:
    timeout = saga.defaults.timeout
    return StepView(
        name=step.name,
        kind=step.kind,
        description=step.description,
        action=_action(step.action, timeout),
        compensation=_action(step.compensation, timeout),
        retry=_retry(step.retry or saga.defaults.retry),
        status=repr(step.status),
        on_rejected=_outcome(step.on_rejected),
        on_timeout=_outcome(step.on_timeout),
    )


def emit_sagas(specset: SpecSet, out: Output) -> None:
    """``generated/sagas/types.py``, one module per saga and its fault points."""
    sources = [saga.source for saga in specset.sagas]
    out.add("generated/sagas/__init__.py", header(sources))
    out.add(
        "generated/sagas/types.py",
        render("sagas/types.py.j2", banner=header(["specs/schemas/saga.schema.json"])),
    )
    for saga in specset.sagas:
        out.add(
            f"generated/sagas/{saga.saga}.py",
            render(
                "sagas/saga.py.j2",
                banner=header([saga.source]),
                saga=saga,
                constant=saga.saga.upper(),
                steps=[_step_view(saga, step) for step in saga.steps],
            ),
        )
    emit_saga_faults(specset, out)
