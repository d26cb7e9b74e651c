"""Saga DSL: what changes for saga instances already running, and for customers.

The saga engine records each instance's steps by position when it starts, and runs
the definition deployed now: adding, removing or reordering steps breaks instances
in flight (drain them before deploying). Changing who a step calls, what it
compensates with or which outcome it ends in changes behaviour customers see;
shortening a timeout or retrying less makes steps fail (and compensate) where they
used to succeed. Longer timeouts, more retries and new compensations are compatible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import ValidationError

from generator.errors import join_pointer
from generator.saga import Action, Retry, SagaSpec, Step, duration_ms
from generator.specdiff.model import Change, Severity, SpecDiffError
from generator.specset import SpecSet
from generator.yamlsource import SourceDocument


@dataclass(frozen=True)
class _Saga:
    spec: SagaSpec
    document: SourceDocument

    def source(self, *tokens: str | int) -> str:
        line = self.document.line_of(join_pointer(*tokens))
        return f"{self.document.relpath}:{line}" if line else self.document.relpath

    def step_source(self, name: str, *tokens: str | int) -> str:
        index = next(i for i, step in enumerate(self.spec.steps) if step.name == name)
        return self.source("steps", index, *tokens)


def _sagas(specset: SpecSet, label: str) -> dict[str, _Saga]:
    found = {}
    for document in specset.saga_docs:
        try:
            spec = SagaSpec.from_document(document)
        except (ValidationError, AssertionError) as exc:
            raise SpecDiffError(f"{label}: {document.relpath} is not a valid saga: {exc}") from exc
        found[spec.saga] = _Saga(spec, document)
    return found


def _target(action: Action) -> str:
    if action.grpc is not None:
        return f"gRPC {action.grpc}"
    if action.command is not None:
        return f"command {action.command}"
    return f"local {action.local}"


def _attempts(retry: Retry) -> float:
    return float("inf") if retry.attempts == "unlimited" else float(retry.attempts)


class SagaDiff:
    """Compares the saga definitions of two spec sets."""

    def __init__(self, base: SpecSet, head: SpecSet) -> None:
        self.old = _sagas(base, "base")
        self.new = _sagas(head, "head")
        self.changes: list[Change] = []

    def run(self) -> list[Change]:
        """Every change, in no particular order."""
        for name, old in self.old.items():
            new = self.new.get(name)
            if new is None:
                self.changes.append(
                    Change(
                        "saga.removed",
                        Severity.BREAKING,
                        f"saga {name}",
                        "saga removed: instances in flight can no longer finish",
                        old.source(),
                    )
                )
            else:
                self._saga(old, new)
        for name, new in self.new.items():
            if name not in self.old:
                self.changes.append(
                    Change(
                        "saga.added", Severity.COMPATIBLE, f"saga {name}", "new saga", new.source()
                    )
                )
        return self.changes

    def _saga(self, old: _Saga, new: _Saga) -> None:
        name = new.spec.saga
        label = f"saga {name}"

        def add(kind: str, breaking: bool, location: str, message: str, source: str) -> None:
            severity = Severity.BREAKING if breaking else Severity.COMPATIBLE
            self.changes.append(Change(f"saga.{kind}", severity, location, message, source))

        for field in ("orchestrator", "starts_on", "correlation"):
            before, after = getattr(old.spec, field), getattr(new.spec, field)
            if before != after:
                add(
                    f"{field.replace('_', '-')}-changed",
                    True,
                    label,
                    f"{field} {before} → {after}",
                    new.source(field),
                )
        if new.spec.version > old.spec.version:
            add(
                "version-bumped",
                False,
                label,
                f"version {old.spec.version} → {new.spec.version}",
                new.source("version"),
            )
        old_names = [step.name for step in old.spec.steps]
        new_names = [step.name for step in new.spec.steps]
        in_flight = "instances in flight record their steps by position: drain them first"
        for index, step_name in enumerate(old_names):
            if step_name not in new_names:
                add(
                    "step-removed",
                    True,
                    f"{label}: step {step_name}",
                    f"step removed ({in_flight})",
                    old.source("steps", index),
                )
        for index, step_name in enumerate(new_names):
            if step_name not in old_names:
                add(
                    "step-added",
                    True,
                    f"{label}: step {step_name}",
                    f"new step at position {index + 1} ({in_flight})",
                    new.source("steps", index),
                )
        common_old = [n for n in old_names if n in new_names]
        common_new = [n for n in new_names if n in old_names]
        if common_old != common_new:
            add(
                "steps-reordered",
                True,
                label,
                f"steps reordered: {', '.join(common_old)} → {', '.join(common_new)} ({in_flight})",
                new.source("steps"),
            )
        old_steps = {step.name: step for step in old.spec.steps}
        for step in new.spec.steps:
            if step.name in old_steps:
                self._step(old, new, old_steps[step.name], step, add)

    def _step(
        self,
        old_saga: _Saga,
        new_saga: _Saga,
        old: Step,
        new: Step,
        add: Callable[[str, bool, str, str, str], None],
    ) -> None:
        where = f"saga {new_saga.spec.saga}: step {new.name}"

        def source(*tokens: str | int) -> str:
            return new_saga.step_source(new.name, *tokens)

        if old.kind != new.kind:
            add(
                "step-kind-changed",
                True,
                where,
                f"kind {old.kind} → {new.kind}: which steps compensate on failure changes",
                source("kind"),
            )
        self._action(where, "action", old.action, new.action, add, source)
        if old.compensation is not None and new.compensation is None:
            add(
                "compensation-removed",
                True,
                where,
                "compensation removed: a later failure no longer undoes this step",
                old_saga.step_source(old.name, "compensation"),
            )
        elif old.compensation is None and new.compensation is not None:
            add(
                "compensation-added",
                False,
                where,
                f"new compensation {_target(new.compensation)}",
                source("compensation"),
            )
        elif old.compensation is not None and new.compensation is not None:
            self._action(where, "compensation", old.compensation, new.compensation, add, source)
        pairs = [("action", old.action, new.action)]
        if old.compensation is not None and new.compensation is not None:
            pairs.append(("compensation", old.compensation, new.compensation))
        for role, old_action, new_action in pairs:
            old_timeout = duration_ms(old_action.timeout or old_saga.spec.defaults.timeout)
            new_timeout = duration_ms(new_action.timeout or new_saga.spec.defaults.timeout)
            if new_timeout == old_timeout:
                continue
            shorter = new_timeout < old_timeout
            add(
                "timeout-shortened" if shorter else "timeout-lengthened",
                shorter,
                where,
                f"{role} timeout {old_timeout} ms → {new_timeout} ms"
                + (": participants that answered in time may now time out" if shorter else ""),
                source(role, "timeout"),
            )
        self._retry(
            where,
            old.retry or old_saga.spec.defaults.retry,
            new.retry or new_saga.spec.defaults.retry,
            add,
            source("retry"),
        )
        if old.status != new.status:
            add(
                "step-status-changed",
                True,
                where,
                f"order status on success {old.status} → {new.status}",
                source("status"),
            )
        for outcome in ("on_rejected", "on_timeout"):
            before, after = getattr(old, outcome), getattr(new, outcome)
            if before == after:
                continue
            shown_before = f"{before.status}/{before.reason}" if before else "none"
            shown_after = f"{after.status}/{after.reason}" if after else "none"
            add(
                f"{outcome.replace('_', '-')}-changed",
                before is not None,
                where,
                f"{outcome} {shown_before} → {shown_after}",
                source(outcome),
            )

    @staticmethod
    def _action(
        where: str,
        role: str,
        old: Action,
        new: Action,
        add: Callable[[str, bool, str, str, str], None],
        source: Callable[..., str],
    ) -> None:
        if _target(old) != _target(new):
            add(
                f"{role}-participant-changed",
                True,
                where,
                f"{role} {_target(old)} → {_target(new)}",
                source(role),
            )
            return
        old_replies = set(old.await_.success + old.await_.failure) if old.await_ else set()
        new_replies = set(new.await_.success + new.await_.failure) if new.await_ else set()
        old_success = set(old.await_.success) if old.await_ else set()
        new_success = set(new.await_.success) if new.await_ else set()
        moved = {t for t in old_replies & new_replies if (t in old_success) != (t in new_success)}
        if moved:
            add(
                f"{role}-replies-changed",
                True,
                where,
                f"{role} now reads {', '.join(sorted(moved))} the other way round "
                "(success ↔ failure)",
                source(role, "await"),
            )
        if old_replies - new_replies:
            add(
                f"{role}-reply-removed",
                True,
                where,
                f"{role} no longer awaits {', '.join(sorted(old_replies - new_replies))}: "
                "those replies are ignored and the step times out",
                source(role, "await"),
            )
        if new_replies - old_replies:
            add(
                f"{role}-reply-added",
                False,
                where,
                f"{role} also awaits {', '.join(sorted(new_replies - old_replies))}",
                source(role, "await"),
            )
        if set(old.emits) - set(new.emits):
            add(
                f"{role}-emit-removed",
                True,
                where,
                f"{role} no longer emits {', '.join(sorted(set(old.emits) - set(new.emits)))}",
                source(role, "emits"),
            )
        if set(new.emits) - set(old.emits):
            add(
                f"{role}-emit-added",
                False,
                where,
                f"{role} also emits {', '.join(sorted(set(new.emits) - set(old.emits)))}",
                source(role, "emits"),
            )

    @staticmethod
    def _retry(
        where: str,
        old: Retry,
        new: Retry,
        add: Callable[[str, bool, str, str, str], None],
        source: str,
    ) -> None:
        fewer = _attempts(new) < _attempts(old)
        lost_codes = set(old.retry_on) - set(new.retry_on)
        if fewer or lost_codes:
            what = []
            if fewer:
                what.append(f"attempts {old.attempts} → {new.attempts}")
            if lost_codes:
                what.append(f"no longer retries {', '.join(sorted(lost_codes))}")
            add(
                "retry-reduced",
                True,
                where,
                f"{'; '.join(what)}: transient failures that were retried now fail the step",
                source,
            )
        elif _attempts(new) > _attempts(old) or set(new.retry_on) - set(old.retry_on):
            add(
                "retry-extended",
                False,
                where,
                f"attempts {old.attempts} → {new.attempts}, retry_on "
                f"{', '.join(new.retry_on) or 'none'}",
                source,
            )
        if old.backoff != new.backoff:
            add(
                "backoff-changed",
                False,
                where,
                f"backoff {old.backoff.initial}..{old.backoff.max} ×{old.backoff.multiplier} → "
                f"{new.backoff.initial}..{new.backoff.max} ×{new.backoff.multiplier}",
                source,
            )


def diff_sagas(base: SpecSet, head: SpecSet) -> list[Change]:
    """Classified changes between the saga definitions of ``base`` and ``head``."""
    return SagaDiff(base, head).run()
