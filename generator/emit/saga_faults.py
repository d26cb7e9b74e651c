"""Fault points of every saga step, for ``generated/sagas/<saga>_faults.py``.

Each step's action and each compensation is a place where its participant can be
made to fail, hang or answer twice (docs/fault-flags.md). Everything a point says is
derived from the specs:

- the participant: the service whose proto declares the gRPC method, the one service
  that consumes the command and produces its awaited replies, or the orchestrator for
  a local action;
- its match keys: ``correlationId`` (the X-Correlation-ID the saga inherited, known
  to every participant) plus the ids the saga starts with (the correlation field and
  the uuid fields of the ``starts_on`` payload) that the participant's message
  carries (the gRPC request's fields, the command payload's properties);
- its admin path: the participant's OpenAPI path ending in ``/admin/faults``, if any.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from generator.crossref import resolve_local
from generator.emit import Output, header, render
from generator.errors import InvalidSpecsError, join_pointer
from generator.saga import Action, SagaSpec, duration_ms
from generator.specset import SpecSet
from generator.yamlsource import SourceDocument

MODES = ("fail", "hang", "duplicate")
#: Known to every participant: the correlation id travels in gRPC metadata and event headers.
CORRELATION_ID = "correlationId"
ADMIN_SUFFIX = "/admin/faults"
INDEX_MODULE = "generated/sagas/fault_points.py"


@dataclass(frozen=True)
class FaultPointView:
    """One fault point, every field ready for the template."""

    name: str
    saga: str
    step: str
    phase: str
    participant: str
    transport: str
    operation: str
    timeout_ms: int
    match_keys: tuple[str, ...]
    admin_path: str | None

    @property
    def modes_code(self) -> str:
        return _tuple_code(MODES)

    @property
    def match_keys_code(self) -> str:
        return _tuple_code(self.match_keys)


def _tuple_code(items: tuple[str, ...]) -> str:
    """``("a", "b")``; a one-item tuple keeps its comma."""
    inner = ", ".join(f'"{item}"' for item in items)
    return f"({inner},)" if len(items) == 1 else f"({inner})"


def _payload_properties(specset: SpecSet, topic: str) -> dict[str, Any]:
    """The payload properties of the event on ``topic`` (resolved), or ``{}``."""
    document = specset.asyncapi
    for channel in (document.data.get("channels") or {}).values():
        if not isinstance(channel, dict) or channel.get("address") != topic:
            continue
        for message in (channel.get("messages") or {}).values():
            payload = resolve_local(document, resolve_local(document, message).get("payload"))
            properties = (payload or {}).get("properties") or {}
            return {name: resolve_local(document, schema) for name, schema in properties.items()}
    return {}


def _start_ids(specset: SpecSet, saga: SagaSpec) -> frozenset[str]:
    """The saga's correlation field and the uuid fields of the event that starts it."""
    properties = _payload_properties(specset, saga.starts_on)
    uuids = {
        name
        for name, schema in properties.items()
        if isinstance(schema, dict) and schema.get("format") == "uuid"
    }
    return frozenset({saga.correlation, *uuids})


def _admin_path(specset: SpecSet, service: str) -> str | None:
    document = specset.openapi.get(service)
    if document is None:
        return None
    paths = sorted(p for p in (document.data.get("paths") or {}) if p.endswith(ADMIN_SUFFIX))
    return paths[0] if paths else None


class _Resolver:
    """Resolves the participant and message fields of one saga's actions."""

    def __init__(self, specset: SpecSet, saga: SagaSpec, document: SourceDocument) -> None:
        assert specset.catalog is not None
        self.specset = specset
        self.catalog = specset.catalog
        self.saga = saga
        self.document = document
        self.start_ids = _start_ids(specset, saga)

    def _one(self, owners: list[str], at: str, what: str) -> str:
        if len(owners) != 1:
            found = ", ".join(sorted(owners)) or "none"
            raise InvalidSpecsError(
                [self.document.error(at, f"{what} needs exactly one participant, found {found}")]
            )
        return owners[0]

    def participant(self, action: Action, at: str) -> tuple[str, str, frozenset[str]]:
        """(participant service, transport, the fields of the message it receives)."""
        services = self.catalog.services.values()
        if action.grpc is not None:
            method = self.specset.protos.methods[action.grpc]
            owners = [s.name for s in services if s.proto and f"specs/{s.proto}" == method.file]
            names = self.specset.protos.message_fields.get(method.input_type, ())
            return self._one(owners, at, action.grpc), "grpc", frozenset(names)
        if action.command is not None:
            replies = {*action.await_.success, *action.await_.failure} if action.await_ else set()
            owners = [
                s.name
                for s in services
                if action.command in s.consumes
                and s.name != self.saga.orchestrator
                and (not replies or replies & set(s.produces))
            ]
            fields = frozenset(_payload_properties(self.specset, action.command))
            return self._one(owners, at, action.command), "command", fields
        # A local action runs in the orchestrator, which holds the saga's start data.
        return self.saga.orchestrator, "local", self.start_ids

    def point(self, index: int, phase: str, action: Action) -> FaultPointView:
        step = self.saga.steps[index]
        at = join_pointer("steps", index, phase)
        participant, transport, fields = self.participant(action, at)
        operation = action.grpc or action.command or action.local
        assert operation is not None
        suffix = "" if phase == "action" else f".{phase}"
        return FaultPointView(
            name=f"{self.saga.saga}.{step.name}{suffix}",
            saga=self.saga.saga,
            step=step.name,
            phase=phase,
            participant=participant,
            transport=transport,
            operation=operation,
            timeout_ms=duration_ms(action.timeout or self.saga.defaults.timeout),
            match_keys=(CORRELATION_ID, *sorted(self.start_ids & fields)),
            admin_path=_admin_path(self.specset, participant),
        )


def fault_points(
    specset: SpecSet, saga: SagaSpec, document: SourceDocument
) -> list[FaultPointView]:
    """The fault points of ``saga``: each step's action, then its compensation."""
    resolver = _Resolver(specset, saga, document)
    points = []
    for index, step in enumerate(saga.steps):
        points.append(resolver.point(index, "action", step.action))
        if step.compensation is not None:
            points.append(resolver.point(index, "compensation", step.compensation))
    return points


def emit_saga_faults(specset: SpecSet, out: Output) -> None:
    """``generated/sagas/<saga>_faults.py`` per saga and the ``fault_points`` index."""
    modules = []
    for saga, document in zip(specset.sagas, specset.saga_docs, strict=True):
        constant = f"{saga.saga.upper()}_FAULTS"
        module = f"{saga.saga}_faults"
        out.add(
            f"generated/sagas/{module}.py",
            render(
                "sagas/faults.py.j2",
                banner=header([saga.source]),
                saga=saga,
                constant=constant,
                modes=MODES,
                points=fault_points(specset, saga, document),
            ),
        )
        modules.append((module, constant))
    out.add(
        INDEX_MODULE,
        render(
            "sagas/fault_points.py.j2",
            banner=header([saga.source for saga in specset.sagas] or ["specs/sagas"]),
            modules=modules,
        ),
    )
