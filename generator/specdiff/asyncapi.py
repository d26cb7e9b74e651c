"""AsyncAPI: events as their consumers see them, and the event versioning rule.

Payloads are checked like a schema registry in BACKWARD mode: a consumer on the new
schema must still read every event written with the old one (they stay in the
topics and in event stores). A change that breaks that needs a new
``x-schema-version`` and, for every version step, an upcaster declared in
``x-upcasters`` that imports; without them it is an error that no flag allows.
With them, the incompatible payload changes are reported as acknowledged.

Changes that only widen the payload are compatible, but consumers still on the old
schema reject the new events (the generated models forbid unknown fields), so the
report says to deploy consumers before the producer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.specdiff.model import Change, Severity, SpecDiffError
from generator.specdiff.schema import Delta, Documents, Node, SchemaComparer
from generator.specdiff.upcasters import declared_upcasters, probe_upcasters
from generator.specset import SpecSet


@dataclass(frozen=True)
class _Message:
    """One event type with what the spec says around it."""

    name: str
    address: str
    node: Node  # the resolved message object
    partitions: int | None
    consumers: dict[str, str] = field(default_factory=dict)  # service → consumer group
    producers: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"event {self.name}"

    @property
    def schema_version(self) -> int:
        version = (self.node.value or {}).get("x-schema-version", 1)
        if isinstance(version, int) and not isinstance(version, bool):
            return version
        if isinstance(version, str) and version.isdigit():
            return int(version)
        raise SpecDiffError(f"{self.label}: x-schema-version {version!r} is not an integer")

    @property
    def consumer_groups(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.consumers.values())))


def _messages(docs: Documents, relpath: str) -> dict[str, _Message]:
    root = docs.root(relpath)
    consumers: dict[str, dict[str, str]] = {}
    producers: dict[str, list[str]] = {}
    operations: Mapping[str, Any] = root.value.get("operations") or {}
    for operation in operations.values():
        channel_ref = str(((operation or {}).get("channel") or {}).get("$ref", ""))
        channel_key = channel_ref.removeprefix("#/channels/")
        service = str(operation.get("x-service", ""))
        if operation.get("action") == "receive":
            group = str(operation.get("x-consumer-group", service))
            consumers.setdefault(channel_key, {})[service] = group
        elif operation.get("action") == "send":
            producers.setdefault(channel_key, []).append(service)
    found: dict[str, _Message] = {}
    channels = root.child("channels")
    for key in channels.value or {}:
        channel = channels.child(key)
        value = channel.value or {}
        kafka = ((value.get("bindings") or {}).get("kafka")) or {}
        messages = channel.child("messages")
        for message_key in messages.value or {}:
            node, _ = docs.resolve(messages.child(message_key))
            name = str((node.value or {}).get("name") or message_key)
            found[name] = _Message(
                name=name,
                address=str(value.get("address", key)),
                node=node,
                partitions=kafka.get("partitions"),
                consumers=consumers.get(key, {}),
                producers=tuple(sorted(producers.get(key, []))),
            )
    return found


@dataclass
class _Versioning:
    """What the versioning rule concluded for one message."""

    old: int
    new: int
    upcasters: dict[int, str]
    problems: list[str]

    @property
    def bumped(self) -> bool:
        return self.new > self.old

    @property
    def satisfied(self) -> bool:
        return self.bumped and not self.problems


class AsyncApiDiff:
    """Compares the AsyncAPI documents of two spec sets."""

    def __init__(self, base: SpecSet, head: SpecSet, head_root: Path) -> None:
        self.old = Documents({base.asyncapi.relpath: base.asyncapi}, "base")
        self.new = Documents({head.asyncapi.relpath: head.asyncapi}, "head")
        self.old_messages = _messages(self.old, base.asyncapi.relpath)
        self.new_messages = _messages(self.new, head.asyncapi.relpath)
        self.schemas = SchemaComparer(self.old, self.new)
        self.head_root = head_root
        self.changes: list[Change] = []

    def _add(
        self,
        kind: str,
        severity: Severity,
        location: str,
        message: str,
        source: str,
        affects: tuple[str, ...] = (),
        note: str = "",
    ) -> None:
        self.changes.append(Change(kind, severity, location, message, source, affects, note))

    def run(self) -> list[Change]:
        """Every change, in no particular order."""
        versioning: dict[str, _Versioning] = {}
        for name, old in self.old_messages.items():
            new = self.new_messages.get(name)
            if new is None:
                self._add(
                    "asyncapi.message-removed",
                    Severity.BREAKING,
                    old.label,
                    f"event removed (topic {old.address})",
                    self.old.source(old.node),
                    old.consumer_groups,
                )
                continue
            self._channel(old, new)
            versioning[name] = self._versioning(old, new)
        self._probe(versioning)
        for name, rule in versioning.items():
            self._payload(self.old_messages[name], self.new_messages[name], rule)
        for name, new in self.new_messages.items():
            if name not in self.old_messages:
                self._add(
                    "asyncapi.message-added",
                    Severity.COMPATIBLE,
                    new.label,
                    f"new event on topic {new.address}",
                    self.new.source(new.node),
                )
        return self.changes

    def _channel(self, old: _Message, new: _Message) -> None:
        source = self.new.source(new.node)
        groups = tuple(sorted(set(old.consumer_groups) | set(new.consumer_groups)))
        if old.address != new.address:
            self._add(
                "asyncapi.topic-changed",
                Severity.BREAKING,
                new.label,
                f"topic {old.address} → {new.address}: consumers of the old topic stop "
                "receiving it",
                source,
                groups,
            )
        old_key, new_key = old.node.value.get("x-key"), new.node.value.get("x-key")
        if old_key != new_key:
            self._add(
                "asyncapi.key-changed",
                Severity.BREAKING,
                new.label,
                f"record key {old_key} → {new_key}: one aggregate's events may land on "
                "different partitions and lose their order",
                source,
                groups,
            )
        if old.partitions is not None and new.partitions is not None:
            if new.partitions < old.partitions:
                self._add(
                    "asyncapi.partitions-decreased",
                    Severity.BREAKING,
                    new.label,
                    f"partitions {old.partitions} → {new.partitions}: Kafka cannot remove "
                    "partitions of an existing topic",
                    source,
                )
            elif new.partitions > old.partitions:
                self._add(
                    "asyncapi.partitions-increased",
                    Severity.COMPATIBLE,
                    new.label,
                    f"partitions {old.partitions} → {new.partitions}: keys move to other "
                    "partitions, so per-key order holds only for events written afterwards",
                    source,
                )
        for service, group in sorted(old.consumers.items()):
            if service not in new.consumers:
                self._add(
                    "asyncapi.consumer-removed",
                    Severity.COMPATIBLE,
                    new.label,
                    f"{service} ({group}) no longer consumes it",
                    source,
                )
            elif new.consumers[service] != group:
                self._add(
                    "asyncapi.consumer-group-changed",
                    Severity.BREAKING,
                    new.label,
                    f"{service} consumer group {group} → {new.consumers[service]}: the new "
                    "group has no committed offsets (events are skipped or reprocessed)",
                    source,
                )
        for service, group in sorted(new.consumers.items()):
            if service not in old.consumers:
                self._add(
                    "asyncapi.consumer-added",
                    Severity.COMPATIBLE,
                    new.label,
                    f"{service} ({group}) now consumes it",
                    source,
                )
        for delta in self.schemas.compare(old.node.child("headers"), new.node.child("headers")):
            if delta.anchor is not None:  # the shared EventHeaders: reported once
                anchor = delta.anchor.removeprefix("specs/")
                where = f"{anchor}: {delta.path}" if delta.path else anchor
            else:
                where = f"{new.label} headers"
                where = f"{where}: {delta.full_path}" if delta.full_path else where
            self._add(
                f"asyncapi.headers.{delta.rule}",
                Severity.BREAKING if delta.narrows else Severity.COMPATIBLE,
                where,
                delta.message,
                delta.source,
                (new.label,),
            )

    def _versioning(self, old: _Message, new: _Message) -> _Versioning:
        upcasters, problems = declared_upcasters(new.node.value)
        rule = _Versioning(old.schema_version, new.schema_version, upcasters, problems)
        source = self.new.source(new.node.child("x-schema-version"))
        if rule.new < rule.old:
            self._add(
                "asyncapi.schema-version-decreased",
                Severity.ERROR,
                new.label,
                f"x-schema-version {rule.old} → {rule.new}: versions only go up",
                source,
            )
        if rule.bumped:
            missing = [v for v in range(rule.old, rule.new) if v not in upcasters]
            for version in missing:
                rule.problems.append(f"no upcaster from v{version} (x-upcasters: {version})")
        for problem in rule.problems:
            self._add(
                "asyncapi.upcaster-invalid",
                Severity.ERROR,
                new.label,
                problem,
                self.new.source(new.node.child("x-upcasters")),
            )
        return rule

    def _probe(self, versioning: dict[str, _Versioning]) -> None:
        """Import every upcaster a bumped message needs, in one child interpreter."""
        needed = {
            name: {v: path for v, path in rule.upcasters.items() if rule.old <= v < rule.new}
            for name, rule in versioning.items()
            if rule.bumped
        }
        answers = probe_upcasters(
            self.head_root, [path for steps in needed.values() for path in steps.values()]
        )
        for name, steps in needed.items():
            rule, message = versioning[name], self.new_messages[name]
            for version, path in sorted(steps.items()):
                problem = answers.get(path)
                if problem is not None:
                    text = f"upcaster from v{version} {path} {problem}"
                    rule.problems.append(text)
                    self._add(
                        "asyncapi.upcaster-invalid",
                        Severity.ERROR,
                        message.label,
                        text,
                        self.new.source(message.node.child("x-upcasters", version)),
                    )
            if rule.satisfied:
                chain = ", ".join(f"v{v}: {p}" for v, p in sorted(steps.items()))
                self._add(
                    "asyncapi.schema-version-bumped",
                    Severity.COMPATIBLE,
                    message.label,
                    f"schema version {rule.old} → {rule.new}, upcasters {chain}",
                    self.new.source(message.node.child("x-schema-version")),
                )

    def _payload(self, old: _Message, new: _Message, rule: _Versioning) -> None:
        consumers = new.consumer_groups or old.consumer_groups
        producers = ", ".join(new.producers) or "the producer"
        for delta in self.schemas.compare(old.node.child("payload"), new.node.child("payload")):
            where = f"{new.label} payload"
            where = f"{where}: {delta.full_path}" if delta.full_path else where
            kind = f"asyncapi.payload.{delta.rule}"
            if delta.narrows:
                self._backward_incompatible(kind, where, delta, old, rule, consumers)
            elif delta.widens:
                groups = ", ".join(consumers) or "its consumers"
                self._add(
                    kind,
                    Severity.COMPATIBLE,
                    where,
                    f"{delta.message} (consumers on the old schema reject such events: "
                    f"deploy {groups} before {producers})",
                    delta.source,
                    consumers,
                )
            else:
                self._add(kind, Severity.COMPATIBLE, where, delta.message, delta.source)

    def _backward_incompatible(
        self,
        kind: str,
        where: str,
        delta: Delta,
        old: _Message,
        rule: _Versioning,
        consumers: tuple[str, ...],
    ) -> None:
        message = (
            f"{delta.message}: events written with schema v{old.schema_version} no longer validate"
        )
        if rule.satisfied:
            self._add(
                kind,
                Severity.ACKNOWLEDGED,
                where,
                message,
                delta.source,
                consumers,
                note=f"schema version {rule.old} → {rule.new} with upcaster(s)",
            )
            return
        if rule.bumped:
            fix = "the new schema version needs valid upcasters (see asyncapi.upcaster-invalid)"
        else:
            fix = (
                f"bump x-schema-version to {rule.old + 1} and declare x-upcasters: "
                f"{{{rule.old}: <dotted.path.to.upcaster>}}"
            )
        self._add(kind, Severity.ERROR, where, f"{message}; {fix}", delta.source, consumers)


def diff_asyncapi(base: SpecSet, head: SpecSet, head_root: Path) -> list[Change]:
    """Classified changes between the AsyncAPI documents of ``base`` and ``head``.

    Upcasters are imported from ``head_root`` (the working tree).
    """
    return AsyncApiDiff(base, head, head_root).run()
