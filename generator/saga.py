"""Typed view of a saga DSL file and the rules the JSON Schema cannot express."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict

from generator.errors import join_pointer
from generator.yamlsource import SourceDocument

_DURATION = re.compile(r"^(?P<value>[1-9][0-9]*)(?P<unit>ms|s|m)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000}


def duration_ms(text: str) -> int:
    """``'250ms' → 250``, ``'5s' → 5000``, ``'2m' → 120000``."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r}")
    return int(match["value"]) * _UNIT_MS[match["unit"]]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Backoff(_Frozen):
    initial: str
    max: str
    multiplier: float
    jitter: bool = True


class Retry(_Frozen):
    attempts: int | Literal["unlimited"]
    backoff: Backoff
    retry_on: tuple[str, ...] = ()


class Await(_Frozen):
    success: tuple[str, ...]
    failure: tuple[str, ...] = ()


class Action(_Frozen):
    grpc: str | None = None
    command: str | None = None
    await_: Await | None = None
    local: str | None = None
    emits: tuple[str, ...] = ()
    timeout: str | None = None

    @property
    def kind(self) -> Literal["grpc", "command", "local"]:
        if self.grpc is not None:
            return "grpc"
        if self.command is not None:
            return "command"
        return "local"


class Outcome(_Frozen):
    status: str
    reason: str


class Step(_Frozen):
    name: str
    description: str = ""
    kind: Literal["compensatable", "pivot", "retriable"]
    action: Action
    compensation: Action | None = None
    retry: Retry | None = None
    status: str | None = None
    on_rejected: Outcome | None = None
    on_timeout: Outcome | None = None


class Defaults(_Frozen):
    timeout: str
    retry: Retry


class SagaSpec(_Frozen):
    saga: str
    version: int
    description: str = ""
    orchestrator: str
    starts_on: str
    correlation: str
    defaults: Defaults
    steps: tuple[Step, ...]
    source: str = ""

    @classmethod
    def from_document(cls, document: SourceDocument) -> SagaSpec:
        data = _rename_await(document.data)
        assert isinstance(data, dict)
        return cls.model_validate({**data, "source": document.relpath})


def _rename_await(value: object) -> object:
    """``await`` is a Python keyword: map it to the ``await_`` field."""
    if isinstance(value, dict):
        return {("await_" if k == "await" else k): _rename_await(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rename_await(v) for v in value]
    return value


def check_saga_rules(saga: SagaSpec, document: SourceDocument) -> list[tuple[str, str]]:
    """The pivot rules and step-local rules; returns ``(pointer, message)`` pairs."""
    problems: list[tuple[str, str]] = []
    pivots = [i for i, step in enumerate(saga.steps) if step.kind == "pivot"]
    if len(pivots) != 1:
        problems.append(("/steps", f"a saga needs exactly one pivot step, found {len(pivots)}"))
    pivot = pivots[0] if pivots else len(saga.steps)
    seen: set[str] = set()
    for index, step in enumerate(saga.steps):
        at = join_pointer("steps", index)
        if step.name in seen:
            problems.append((f"{at}/name", f"duplicate step name {step.name!r}"))
        seen.add(step.name)
        if index < pivot:
            if step.kind != "compensatable":
                problems.append(
                    (
                        f"{at}/kind",
                        f"step {step.name!r} comes before the pivot: it must be "
                        f"'compensatable', not {step.kind!r}",
                    )
                )
            elif step.compensation is None:
                problems.append(
                    (
                        at,
                        f"step {step.name!r} has side effects before the pivot but no compensation",
                    )
                )
        elif index > pivot:
            if step.kind != "retriable":
                problems.append(
                    (
                        f"{at}/kind",
                        f"step {step.name!r} comes after the pivot: it must be "
                        f"'retriable', not {step.kind!r}",
                    )
                )
            retry = step.retry or saga.defaults.retry
            if retry.attempts != "unlimited":
                problems.append(
                    (
                        f"{at}/retry/attempts",
                        f"retriable step {step.name!r} must retry until "
                        "it succeeds: use attempts: unlimited",
                    )
                )
            if step.on_rejected is not None:
                problems.append((f"{at}/on_rejected", "a step after the pivot cannot be rejected"))
        if step.kind in ("pivot", "retriable") and step.compensation is not None:
            problems.append((f"{at}/compensation", f"a {step.kind} step has no compensation"))
        if step.action.kind == "command" and step.on_timeout is None and index <= pivot:
            problems.append((f"{at}/on_timeout", "a step awaiting a reply needs on_timeout"))
        retry = step.retry or saga.defaults.retry
        if duration_ms(retry.backoff.initial) > duration_ms(retry.backoff.max):
            problems.append((f"{at}/retry/backoff", "backoff initial is longer than max"))
    return problems
