"""Protobuf: compared structurally, from the descriptors protoc builds on each side.

Fields are matched by number, the identity on the wire: a number that now names a
field of another name and type is a reuse (old data is misread), a removed field
whose number is not reserved invites such a reuse later, and a rename or a type,
cardinality or presence change breaks generated code even where the wire bytes
would still parse. Enum values are matched by number too; services and methods by
name.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pb2

from generator.protos import run_protoc
from generator.specdiff.model import Change, Severity

FieldProto = descriptor_pb2.FieldDescriptorProto

# FileDescriptorProto / DescriptorProto / ... field numbers used in source paths.
_MESSAGE, _ENUM, _SERVICE = 4, 5, 6
_NESTED_MESSAGE, _NESTED_ENUM, _FIELD, _ENUM_VALUE, _METHOD = 3, 4, 2, 2, 2


@dataclass(frozen=True)
class _Located:
    """A descriptor with the file and source path it was declared at."""

    full_name: str
    file: str
    path: tuple[int, ...]


@dataclass(frozen=True)
class _Message(_Located):
    proto: descriptor_pb2.DescriptorProto


@dataclass(frozen=True)
class _Enum(_Located):
    proto: descriptor_pb2.EnumDescriptorProto


@dataclass(frozen=True)
class _Service(_Located):
    proto: descriptor_pb2.ServiceDescriptorProto


@dataclass
class _Index:
    """Every message, enum and service of one side, by full name, with source lines."""

    messages: dict[str, _Message]
    enums: dict[str, _Enum]
    services: dict[str, _Service]
    lines: dict[tuple[str, tuple[int, ...]], int]

    def source(self, item: _Located, *suffix: int) -> str:
        path = (*item.path, *suffix)
        line = self.lines.get((item.file, path)) or self.lines.get((item.file, item.path))
        where = f"specs/proto/{item.file}"
        return f"{where}:{line}" if line else where


def compile_protos(proto_root: Path) -> descriptor_pb2.FileDescriptorSet:
    """Every ``.proto`` under ``proto_root``, compiled with source info."""
    files = sorted(p.relative_to(proto_root).as_posix() for p in proto_root.rglob("*.proto"))
    if not files:
        return descriptor_pb2.FileDescriptorSet()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        run_protoc(proto_root, files, [f"--descriptor_set_out={out}", "--include_source_info"])
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def _index(descriptor_set: descriptor_pb2.FileDescriptorSet) -> _Index:
    index = _Index({}, {}, {}, {})
    for file in descriptor_set.file:
        for location in file.source_code_info.location:
            index.lines[(file.name, tuple(location.path))] = location.span[0] + 1
        prefix = f"{file.package}." if file.package else ""

        def add_enum(
            enum: descriptor_pb2.EnumDescriptorProto,
            scope: str,
            path: tuple[int, ...],
            file_name: str = file.name,
        ) -> None:
            name = f"{scope}{enum.name}"
            index.enums[name] = _Enum(name, file_name, path, enum)

        def add_message(
            message: descriptor_pb2.DescriptorProto,
            scope: str,
            path: tuple[int, ...],
            file_name: str = file.name,
        ) -> None:
            name = f"{scope}{message.name}"
            index.messages[name] = _Message(name, file_name, path, message)
            for i, nested in enumerate(message.nested_type):
                add_message(nested, f"{name}.", (*path, _NESTED_MESSAGE, i))
            for i, enum in enumerate(message.enum_type):
                add_enum(enum, f"{name}.", (*path, _NESTED_ENUM, i))

        for i, message in enumerate(file.message_type):
            add_message(message, prefix, (_MESSAGE, i))
        for i, enum in enumerate(file.enum_type):
            add_enum(enum, prefix, (_ENUM, i))
        for i, service in enumerate(file.service):
            name = f"{prefix}{service.name}"
            index.services[name] = _Service(name, file.name, (_SERVICE, i), service)
    return index


def _field_type(field: FieldProto) -> str:
    if field.type_name:
        return field.type_name.lstrip(".")
    return FieldProto.Type.Name(field.type).removeprefix("TYPE_").lower()


def _cardinality(field: FieldProto) -> str:
    if field.label == FieldProto.LABEL_REPEATED:
        return "repeated"
    return "optional" if field.proto3_optional else "singular"


def _reserved(
    ranges: Iterable[
        descriptor_pb2.DescriptorProto.ReservedRange
        | descriptor_pb2.EnumDescriptorProto.EnumReservedRange
    ],
    names: Sequence[str],
    *,
    end_inclusive: bool,
) -> tuple[list[tuple[int, int]], set[str]]:
    """Reserved numbers as inclusive spans, and reserved names.

    Message reserved ranges end exclusively, enum reserved ranges inclusively.
    """
    spans = [(r.start, r.end if end_inclusive else r.end - 1) for r in ranges]
    return spans, set(names)


def _in_spans(number: int, spans: list[tuple[int, int]]) -> bool:
    return any(start <= number <= end for start, end in spans)


class ProtoDiff:
    """Compares the compiled protos of two spec trees."""

    def __init__(self, old: _Index, new: _Index) -> None:
        self.old, self.new = old, new
        self.changes: list[Change] = []

    def _add(self, kind: str, severity: Severity, location: str, message: str, source: str) -> None:
        self.changes.append(Change(kind, severity, location, message, source))

    def run(self) -> list[Change]:
        """Every change, in no particular order."""
        self._services()
        for name, old in self.old.messages.items():
            new = self.new.messages.get(name)
            if new is None:
                self._add(
                    "proto.message-removed",
                    Severity.BREAKING,
                    name,
                    "message removed",
                    self.old.source(old),
                )
            else:
                self._message(old, new)
        for name, new in self.new.messages.items():
            if name not in self.old.messages:
                self._add(
                    "proto.message-added",
                    Severity.COMPATIBLE,
                    name,
                    "new message",
                    self.new.source(new),
                )
        for name, old_enum in self.old.enums.items():
            new_enum = self.new.enums.get(name)
            if new_enum is None:
                self._add(
                    "proto.enum-removed",
                    Severity.BREAKING,
                    name,
                    "enum removed",
                    self.old.source(old_enum),
                )
            else:
                self._enum(old_enum, new_enum)
        for name, new_enum in self.new.enums.items():
            if name not in self.old.enums:
                self._add(
                    "proto.enum-added",
                    Severity.COMPATIBLE,
                    name,
                    "new enum",
                    self.new.source(new_enum),
                )
        return self.changes

    def _services(self) -> None:
        for name, old in self.old.services.items():
            new = self.new.services.get(name)
            if new is None:
                self._add(
                    "proto.service-removed",
                    Severity.BREAKING,
                    name,
                    "service removed with all its methods",
                    self.old.source(old),
                )
                continue
            new_methods = {m.name: (i, m) for i, m in enumerate(new.proto.method)}
            for i, method in enumerate(old.proto.method):
                where = f"{name}/{method.name}"
                if method.name not in new_methods:
                    self._add(
                        "proto.method-removed",
                        Severity.BREAKING,
                        where,
                        "method removed",
                        self.old.source(old, _METHOD, i),
                    )
                    continue
                j, changed = new_methods[method.name]
                source = self.new.source(new, _METHOD, j)
                before = (method.input_type.lstrip("."), method.output_type.lstrip("."))
                after = (changed.input_type.lstrip("."), changed.output_type.lstrip("."))
                if before != after:
                    self._add(
                        "proto.method-signature-changed",
                        Severity.BREAKING,
                        where,
                        f"({before[0]}) returns ({before[1]}) → ({after[0]}) returns ({after[1]})",
                        source,
                    )
                streaming = (method.client_streaming, method.server_streaming)
                if streaming != (changed.client_streaming, changed.server_streaming):
                    self._add(
                        "proto.method-streaming-changed",
                        Severity.BREAKING,
                        where,
                        "client/server streaming changed",
                        source,
                    )
            old_methods = {m.name for m in old.proto.method}
            for j, method in enumerate(new.proto.method):
                if method.name not in old_methods:
                    self._add(
                        "proto.method-added",
                        Severity.COMPATIBLE,
                        f"{name}/{method.name}",
                        "new method",
                        self.new.source(new, _METHOD, j),
                    )
        for name, new in self.new.services.items():
            if name not in self.old.services:
                self._add(
                    "proto.service-added",
                    Severity.COMPATIBLE,
                    name,
                    "new service",
                    self.new.source(new),
                )

    def _message(self, old: _Message, new: _Message) -> None:
        name = old.full_name
        old_spans, old_names = _reserved(
            old.proto.reserved_range, old.proto.reserved_name, end_inclusive=False
        )
        new_spans, new_names = _reserved(
            new.proto.reserved_range, new.proto.reserved_name, end_inclusive=False
        )
        old_fields = {f.number: (i, f) for i, f in enumerate(old.proto.field)}
        new_fields = {f.number: (i, f) for i, f in enumerate(new.proto.field)}
        for number, (i, field) in sorted(old_fields.items()):
            where = f"{name}.{field.name} ({number})"
            if number not in new_fields:
                if _in_spans(number, new_spans):
                    self._add(
                        "proto.field-removed-reserved",
                        Severity.COMPATIBLE,
                        where,
                        "field removed, its number reserved",
                        self.old.source(old, _FIELD, i),
                    )
                else:
                    self._add(
                        "proto.field-removed",
                        Severity.BREAKING,
                        where,
                        f'field removed without `reserved {number}; reserved "{field.name}";`'
                        ": old clients still send it and the number may be reused",
                        self.old.source(old, _FIELD, i),
                    )
                continue
            j, changed = new_fields[number]
            self._field(where, field, changed, self.new.source(new, _FIELD, j))
        for number, (j, field) in sorted(new_fields.items()):
            if number in old_fields:
                continue
            where = f"{name}.{field.name} ({number})"
            source = self.new.source(new, _FIELD, j)
            if _in_spans(number, old_spans) or field.name in old_names:
                self._add(
                    "proto.reserved-reused",
                    Severity.BREAKING,
                    where,
                    "new field takes a reserved number or name: old data is misread",
                    source,
                )
            else:
                self._add("proto.field-added", Severity.COMPATIBLE, where, "new field", source)
        self._reservations(name, old_spans, old_names, new_spans, new_names, new)

    def _reservations(
        self,
        name: str,
        old_spans: list[tuple[int, int]],
        old_names: set[str],
        new_spans: list[tuple[int, int]],
        new_names: set[str],
        new: _Located,
    ) -> None:
        """A reservation that disappears lets a number or name be reused later."""
        lost = [s for s in old_spans if not any(a <= s[0] and s[1] <= b for a, b in new_spans)]
        if lost or old_names - new_names:
            shown = [f"{a}" if a == b else f"{a} to {b}" for a, b in lost]
            shown += sorted(f'"{n}"' for n in old_names - new_names)
            self._add(
                "proto.reserved-removed",
                Severity.BREAKING,
                name,
                f"reservation removed ({', '.join(shown)}): the numbers or names may be reused",
                self.new.source(new),
            )

    def _field(self, where: str, old: FieldProto, new: FieldProto, source: str) -> None:
        old_type, new_type = _field_type(old), _field_type(new)
        if old.name != new.name and old_type != new_type:
            self._add(
                "proto.field-number-reused",
                Severity.BREAKING,
                where,
                f"number {old.number} was {old.name} ({old_type}), now {new.name} ({new_type}): "
                "old data is misread",
                source,
            )
            return
        if old.name != new.name:
            self._add(
                "proto.field-renamed",
                Severity.BREAKING,
                where,
                f"renamed {old.name} → {new.name}: same bytes on the wire, but generated code "
                "and JSON names change",
                source,
            )
        elif old.json_name != new.json_name:
            self._add(
                "proto.field-json-name-changed",
                Severity.BREAKING,
                where,
                f"json_name {old.json_name} → {new.json_name}",
                source,
            )
        if old_type != new_type:
            self._add(
                "proto.field-type-changed",
                Severity.BREAKING,
                where,
                f"type {old_type} → {new_type}",
                source,
            )
        if _cardinality(old) != _cardinality(new):
            self._add(
                "proto.field-cardinality-changed",
                Severity.BREAKING,
                where,
                f"{_cardinality(old)} → {_cardinality(new)}",
                source,
            )
        old_oneof = (
            old.oneof_index if old.HasField("oneof_index") and not old.proto3_optional else None
        )
        new_oneof = (
            new.oneof_index if new.HasField("oneof_index") and not new.proto3_optional else None
        )
        if (old_oneof is None) != (new_oneof is None):
            self._add(
                "proto.field-oneof-changed",
                Severity.BREAKING,
                where,
                "moved into or out of a oneof",
                source,
            )

    def _enum(self, old: _Enum, new: _Enum) -> None:
        name = old.full_name
        new_spans, new_names = _reserved(
            new.proto.reserved_range, new.proto.reserved_name, end_inclusive=True
        )
        old_spans, old_names = _reserved(
            old.proto.reserved_range, old.proto.reserved_name, end_inclusive=True
        )
        old_values = {v.number: (i, v) for i, v in enumerate(old.proto.value)}
        new_values = {v.number: (i, v) for i, v in enumerate(new.proto.value)}
        for number, (i, value) in sorted(old_values.items()):
            where = f"{name}.{value.name} ({number})"
            if number not in new_values:
                if _in_spans(number, new_spans):
                    self._add(
                        "proto.enum-value-removed-reserved",
                        Severity.COMPATIBLE,
                        where,
                        "value removed, its number reserved",
                        self.old.source(old, _ENUM_VALUE, i),
                    )
                else:
                    self._add(
                        "proto.enum-value-removed",
                        Severity.BREAKING,
                        where,
                        "value removed: peers still send it",
                        self.old.source(old, _ENUM_VALUE, i),
                    )
                continue
            j, changed = new_values[number]
            if changed.name != value.name:
                self._add(
                    "proto.enum-value-renamed",
                    Severity.BREAKING,
                    where,
                    f"renamed {value.name} → {changed.name}: generated code and JSON break",
                    self.new.source(new, _ENUM_VALUE, j),
                )
        for number, (j, value) in sorted(new_values.items()):
            if number in old_values:
                continue
            where = f"{name}.{value.name} ({number})"
            source = self.new.source(new, _ENUM_VALUE, j)
            if _in_spans(number, old_spans) or value.name in old_names:
                self._add(
                    "proto.reserved-reused",
                    Severity.BREAKING,
                    where,
                    "new value takes a reserved number or name",
                    source,
                )
            else:
                self._add(
                    "proto.enum-value-added",
                    Severity.COMPATIBLE,
                    where,
                    "new value (old peers see it as unknown)",
                    source,
                )
        self._reservations(name, old_spans, old_names, new_spans, new_names, new)


def diff_protos(base_root: Path, head_root: Path) -> list[Change]:
    """Classified changes between ``base_root/specs/proto`` and ``head_root/specs/proto``."""
    old = _index(compile_protos(base_root / "specs" / "proto"))
    new = _index(compile_protos(head_root / "specs" / "proto"))
    return ProtoDiff(old, new).run()
