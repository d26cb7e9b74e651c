"""JSON Schema compared as sets of values: what does the new schema reject or admit?

Every difference is a ``Delta`` that says whether the new schema *narrows* (rejects
some value the old one accepted) and/or *widens* (accepts some value the old one
rejected). Callers judge that by direction: a server reading requests must not
narrow, a client reading responses must not see them widen, and a consumer on the
new event schema must still read old events (a schema registry's BACKWARD mode:
no narrowing).

``$ref`` is followed across documents (``./common.yaml#/components/...``). When
both sides reference the same component, deltas inside it are *anchored* to that
component, so a change of a shared schema is reported once, not per use.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from generator.specdiff.model import SpecDiffError
from generator.yamlsource import SourceDocument

_ANY = frozenset({"any"})
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")


@dataclass(frozen=True)
class Node:
    """A value inside a spec document, with the document and pointer it sits at."""

    doc: str  # repository-relative path of the document
    pointer: str
    value: Any

    def child(self, *tokens: str | int) -> Node:
        """The node under ``tokens`` (``None`` value when absent)."""
        value, pointer = self.value, self.pointer
        for token in tokens:
            pointer += "/" + str(token).replace("~", "~0").replace("/", "~1")
            if isinstance(value, Mapping):
                value = value.get(token)
            elif isinstance(value, list) and isinstance(token, int) and token < len(value):
                value = value[token]
            else:
                value = None
        return Node(self.doc, pointer, value)


class Documents:
    """The spec documents of one side of the diff, for ``$ref`` resolution and lines."""

    def __init__(self, documents: Mapping[str, SourceDocument], label: str) -> None:
        self._documents = dict(documents)
        self.label = label  # "base" or "head", for error messages

    def root(self, relpath: str) -> Node:
        """The whole document at ``relpath``."""
        return Node(relpath, "", self._documents[relpath].data)

    def source(self, node: Node) -> str:
        """``file:line`` of ``node`` (the file alone when the line is unknown)."""
        document = self._documents.get(node.doc)
        line = document.line_of(node.pointer) if document is not None else None
        return f"{node.doc}:{line}" if line is not None else node.doc

    def _target(self, node: Node, ref: str) -> Node:
        file_part, _, fragment = ref.partition("#")
        doc = node.doc
        if file_part:
            doc = posixpath.normpath(posixpath.join(posixpath.dirname(node.doc), file_part))
        document = self._documents.get(doc)
        if document is None:
            raise SpecDiffError(f"{self.label}: {node.doc}{node.pointer}: $ref {ref!r} not found")
        value: Any = document.data
        for raw in [t for t in fragment.split("/") if t] if fragment else []:
            token = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(value, Mapping) and token in value:
                value = value[token]
            elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
                value = value[int(token)]
            else:
                raise SpecDiffError(
                    f"{self.label}: {node.doc}{node.pointer}: $ref {ref!r} not found"
                )
        return Node(doc, fragment, value)

    def resolve(self, node: Node) -> tuple[Node, str | None]:
        """Follow ``$ref`` chains; the resolved node and the last target's anchor.

        Keywords beside a ``$ref`` (allowed in OpenAPI 3.1) are laid over the target.
        The anchor is ``doc#pointer`` of the referenced component, or ``None`` when
        ``node`` is no reference.
        """
        anchor: str | None = None
        seen: set[str] = set()
        while isinstance(node.value, Mapping) and isinstance(node.value.get("$ref"), str):
            siblings = {k: v for k, v in node.value.items() if k != "$ref"}
            target = self._target(node, node.value["$ref"])
            anchor = f"{target.doc}#{target.pointer}"
            if anchor in seen:
                raise SpecDiffError(f"{self.label}: $ref cycle through {anchor}")
            seen.add(anchor)
            if siblings and isinstance(target.value, Mapping):
                target = Node(target.doc, target.pointer, {**target.value, **siblings})
            node = target
        return node, anchor


@dataclass(frozen=True)
class Delta:
    """One difference between two schemas, judged as value sets.

    ``path`` is where inside the compared schema (``items[].quantity``; ``""`` for
    the schema itself), relative to ``anchor`` when the difference lies inside a
    component both sides reference; ``full_path`` is always from the compared
    schema's root. ``source`` is ``file:line`` of the new side (of the old side for
    something removed).
    """

    rule: str
    path: str
    anchor: str | None
    narrows: bool
    widens: bool
    message: str
    source: str
    full_path: str = ""

    @property
    def neutral(self) -> bool:
        """Neither narrows nor widens (a new default, a deprecation)."""
        return not (self.narrows or self.widens)


@dataclass(frozen=True)
class _At:
    """Where the comparison is: path from the anchor, path from the root, anchor."""

    path: str = ""
    full: str = ""
    anchor: str | None = None

    def prop(self, name: str) -> _At:
        return _At(_join(self.path, name), _join(self.full, name), self.anchor)

    def suffix(self, text: str) -> _At:
        return _At(self.path + text, self.full + text, self.anchor)

    def anchored(self, anchor: str) -> _At:
        return _At("", self.full, anchor)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _show(values: Any) -> str:
    if isinstance(values, (list, tuple, set, frozenset)):
        return ", ".join(sorted(_json(v) for v in values))
    return _json(values)


def _types(schema: Mapping[str, Any]) -> frozenset[str]:
    declared = schema.get("type")
    if declared is None:
        return _ANY
    types = {declared} if isinstance(declared, str) else set(declared)
    if schema.get("nullable") is True:
        types.add("null")
    return frozenset(types)


def _only_in(first: frozenset[str], second: frozenset[str]) -> frozenset[str]:
    """Types of ``first`` that ``second`` does not admit (``integer`` ⊂ ``number``)."""
    if second == _ANY:
        return frozenset()
    if first == _ANY:
        return _ANY
    missing = first - second
    if "number" in second:
        missing -= {"integer"}
    return missing


def _overlap(old: frozenset[str], new: frozenset[str]) -> bool:
    """Whether some value has a type both sides admit."""
    if _ANY in (old, new):
        return True
    return (
        bool(old & new)
        or ("integer" in old and "number" in new)
        or ("integer" in new and "number" in old)
    )


def _canonical_pattern(pattern: str) -> str:
    """``pattern`` with ``\\d`` spelled ``[0-9]``: the same in ECMA-262 (JSON Schema's
    regex dialect), so rewriting one as the other is no change."""
    out, in_class, index = [], False, 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            escaped = pattern[index + 1]
            out.append(("0-9" if in_class else "[0-9]") if escaped == "d" else char + escaped)
            index += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        out.append(char)
        index += 1
    return "".join(out)


def _closed(schema: Mapping[str, Any]) -> bool:
    return schema.get("additionalProperties") is False or (
        schema.get("unevaluatedProperties") is False
    )


def _schema(value: Any) -> Mapping[str, Any]:
    """Boolean schemas as objects: ``true`` admits everything, ``false`` nothing."""
    if value is True or value is None:
        return {}
    if value is False:
        return {"not": {}}
    return value if isinstance(value, Mapping) else {}


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class _Emit(Protocol):
    """Builds a delta located at the schema being compared."""

    def __call__(
        self, rule: str, message: str, *, narrows: bool, widens: bool, removed: bool = False
    ) -> Delta: ...


_Visiting = frozenset[tuple[str | None, str | None]]


class SchemaComparer:
    """Compares schemas of the base (``old``) and head (``new``) documents."""

    def __init__(self, old: Documents, new: Documents) -> None:
        self.old = old
        self.new = new

    def compare(self, old: Node, new: Node) -> list[Delta]:
        """Every difference between the schemas at ``old`` and ``new``."""
        return list(self._walk(old, new, _At(), frozenset()))

    def _delta(
        self,
        rule: str,
        at: _At,
        message: str,
        where: Node,
        *,
        narrows: bool,
        widens: bool,
        removed: bool = False,
    ) -> Delta:
        return Delta(
            rule=rule,
            path=at.path,
            anchor=at.anchor,
            narrows=narrows,
            widens=widens,
            message=message,
            source=(self.old if removed else self.new).source(where),
            full_path=at.full,
        )

    def _walk(
        self, old_node: Node, new_node: Node, at: _At, visiting: _Visiting
    ) -> Iterator[Delta]:
        old_original, new_original = old_node, new_node
        old_node, old_anchor = self.old.resolve(old_node)
        new_node, new_anchor = self.new.resolve(new_node)
        if old_anchor is not None and old_anchor == new_anchor:
            # The same component on both sides: locate what changes inside it there.
            at = at.anchored(old_anchor)
        pair = (old_anchor, new_anchor)
        if pair != (None, None):
            if pair in visiting:  # a recursive schema, already being compared
                return
            visiting = visiting | {pair}
        # No shortcut on equal text here: equal text can hold a $ref whose target changed.
        old, new = _schema(old_node.value), _schema(new_node.value)

        def delta(
            rule: str, message: str, *, narrows: bool, widens: bool, removed: bool = False
        ) -> Delta:
            return self._delta(
                rule,
                at,
                message,
                old_node if removed else new_node,
                narrows=narrows,
                widens=widens,
                removed=removed,
            )

        for keyword in ("anyOf", "oneOf"):
            lone = new if keyword in old else old
            if (keyword in old) != (keyword in new) and not {"anyOf", "oneOf"} & set(lone):
                # One side wraps the other in alternatives ({$ref: X} ↔ anyOf: [{$ref:
                # X}, {type: null}]): compare the lone schema as a single alternative.
                yield from self._alternatives(
                    keyword,
                    self._items(old_node, keyword) if keyword in old else [old_original],
                    self._items(new_node, keyword) if keyword in new else [new_original],
                    at,
                    visiting,
                )
                return

        old_types, new_types = _types(old), _types(new)
        if old_types != new_types:
            lost, gained = _only_in(old_types, new_types), _only_in(new_types, old_types)
            if lost or gained:
                rule, message = _type_change(old_types, new_types, lost, gained)
                yield delta(rule, message, narrows=bool(lost), widens=bool(gained))
            if not _overlap(old_types, new_types):
                return  # nothing in common: the keywords below would only add noise

        yield from _values(old, new, delta)
        yield from _constraints(old, new, delta)
        yield from self._object(old_node, new_node, old, new, at, visiting)
        yield from self._array(old_node, new_node, old, new, at, visiting, delta)
        for keyword in ("anyOf", "oneOf"):
            if keyword in old and keyword in new:
                yield from self._alternatives(
                    keyword,
                    self._items(old_node, keyword),
                    self._items(new_node, keyword),
                    at,
                    visiting,
                )
        yield from self._all_of(old_node, new_node, at, visiting, delta)
        if _json(old.get("not")) != _json(new.get("not")):
            yield delta("not-changed", "'not' schema changed", narrows=True, widens=True)
        if _json(old.get("default")) != _json(new.get("default")):
            yield delta(
                "default-changed",
                f"default {_json(old.get('default'))} → {_json(new.get('default'))}",
                narrows=False,
                widens=False,
            )
        if new.get("deprecated") is True and old.get("deprecated") is not True:
            yield delta("deprecated", "deprecated", narrows=False, widens=False)

    def _object(
        self,
        old_node: Node,
        new_node: Node,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        at: _At,
        visiting: _Visiting,
    ) -> Iterator[Delta]:
        old_props = old.get("properties") or {}
        new_props = new.get("properties") or {}
        old_required = set(old.get("required") or [])
        new_required = set(new.get("required") or [])
        old_closed, new_closed = _closed(old), _closed(new)
        for name in [*old_props, *(n for n in new_props if n not in old_props)]:
            here = at.prop(name)
            old_prop = old_node.child("properties", name)
            new_prop = new_node.child("properties", name)
            has_default = "default" in _schema(self.new.resolve(new_prop)[0].value)
            if name not in new_props:
                was_required = name in old_required
                yield self._delta(
                    "property-removed",
                    here,
                    f"property '{name}' removed"
                    + (" (it was required)" if was_required else "")
                    + (": objects carrying it are now rejected" if new_closed else ""),
                    old_prop,
                    narrows=new_closed,
                    widens=was_required or not new_closed,
                    removed=True,
                )
            elif name not in old_props:
                if name in new_required:
                    yield self._delta(
                        "required-property-added",
                        here,
                        f"new required property '{name}'"
                        + (" (with a default)" if has_default else ""),
                        new_prop,
                        narrows=not has_default,
                        widens=old_closed,
                    )
                else:
                    yield self._delta(
                        "property-added",
                        here,
                        f"new optional property '{name}'",
                        new_prop,
                        narrows=False,
                        widens=old_closed,
                    )
            else:
                yield from self._walk(old_prop, new_prop, here, visiting)
                if name in new_required and name not in old_required:
                    yield self._delta(
                        "required-added",
                        here,
                        f"property '{name}' is now required"
                        + (" (with a default)" if has_default else ""),
                        new_prop,
                        narrows=not has_default,
                        widens=False,
                    )
                elif name in old_required and name not in new_required:
                    yield self._delta(
                        "required-removed",
                        here,
                        f"property '{name}' is now optional",
                        new_prop,
                        narrows=False,
                        widens=True,
                    )
        for name in sorted((new_required - old_required) - set(new_props)):
            yield self._delta(
                "required-added",
                at.prop(name),
                f"'{name}' is now required",
                new_node,
                narrows=True,
                widens=False,
            )
        old_extra, new_extra = old.get("additionalProperties"), new.get("additionalProperties")
        if old_closed != new_closed:
            yield self._delta(
                "additional-properties-forbidden"
                if new_closed
                else "additional-properties-allowed",
                at,
                "unknown properties are now rejected"
                if new_closed
                else "unknown properties are now accepted",
                new_node,
                narrows=new_closed,
                widens=not new_closed,
            )
        elif isinstance(old_extra, Mapping) and isinstance(new_extra, Mapping):
            yield from self._walk(
                old_node.child("additionalProperties"),
                new_node.child("additionalProperties"),
                at.suffix("{*}"),
                visiting,
            )

    def _array(
        self,
        old_node: Node,
        new_node: Node,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        at: _At,
        visiting: _Visiting,
        delta: _Emit,
    ) -> Iterator[Delta]:
        if "items" in old and "items" in new:
            yield from self._walk(
                old_node.child("items"), new_node.child("items"), at.suffix("[]"), visiting
            )
        elif "items" in new:
            yield delta(
                "items-constrained", "array items are now constrained", narrows=True, widens=False
            )
        elif "items" in old:
            yield delta(
                "items-unconstrained",
                "array items are no longer constrained",
                narrows=False,
                widens=True,
            )

    @staticmethod
    def _items(node: Node, keyword: str) -> list[Node]:
        values = node.value.get(keyword) if isinstance(node.value, Mapping) else None
        return [node.child(keyword, i) for i in range(len(values or []))]

    @staticmethod
    def _branch_key(side: Documents, node: Node, index: int) -> str:
        _, anchor = side.resolve(node)
        return anchor or f"#{index}"

    @staticmethod
    def _branch_name(key: str, branch: Node) -> str:
        """A referenced alternative by its component name, an inline one by its type."""
        if not key.startswith("#"):
            return key.rsplit("/", 1)[-1]
        value = branch.value if isinstance(branch.value, Mapping) else {}
        return f"type {value['type']}" if "type" in value else f"inline schema {key}"

    def _alternatives(
        self,
        keyword: str,
        old_branches: list[Node],
        new_branches: list[Node],
        at: _At,
        visiting: _Visiting,
    ) -> Iterator[Delta]:
        """anyOf/oneOf: alternatives matched by the component they reference."""
        old_keys = {self._branch_key(self.old, b, i): b for i, b in enumerate(old_branches)}
        new_keys = {self._branch_key(self.new, b, i): b for i, b in enumerate(new_branches)}
        for key, branch in old_keys.items():
            if key in new_keys:
                yield from self._walk(branch, new_keys[key], at, visiting)
            else:
                yield self._delta(
                    "alternative-removed",
                    at,
                    f"{keyword} alternative {self._branch_name(key, branch)} removed",
                    branch,
                    narrows=True,
                    widens=False,
                    removed=True,
                )
        for key, branch in new_keys.items():
            if key not in old_keys:
                yield self._delta(
                    "alternative-added",
                    at,
                    f"new {keyword} alternative {self._branch_name(key, branch)}",
                    branch,
                    narrows=False,
                    widens=True,
                )

    def _all_of(
        self, old_node: Node, new_node: Node, at: _At, visiting: _Visiting, delta: _Emit
    ) -> Iterator[Delta]:
        old_parts, new_parts = self._items(old_node, "allOf"), self._items(new_node, "allOf")
        for old_part, new_part in zip(old_parts, new_parts, strict=False):
            yield from self._walk(old_part, new_part, at, visiting)
        if len(new_parts) > len(old_parts):
            yield delta("all-of-added", "new allOf member(s)", narrows=True, widens=False)
        elif len(old_parts) > len(new_parts):
            yield delta("all-of-removed", "allOf member(s) removed", narrows=False, widens=True)


def _type_change(
    old: frozenset[str], new: frozenset[str], lost: frozenset[str], gained: frozenset[str]
) -> tuple[str, str]:
    if gained == {"null"} and not lost:
        return "nullable-added", "now also accepts null"
    if lost == {"null"} and not gained:
        return "nullable-removed", "no longer accepts null"

    def show(types: frozenset[str]) -> str:
        return "any" if types == _ANY else "|".join(sorted(types))

    return "type-changed", f"type {show(old)} → {show(new)}"


def _values(old: Mapping[str, Any], new: Mapping[str, Any], delta: _Emit) -> Iterator[Delta]:
    """enum and const: the set of allowed values."""

    def allowed(schema: Mapping[str, Any]) -> dict[str, Any] | None:
        if "const" in schema:
            return {_json(schema["const"]): schema["const"]}
        if isinstance(schema.get("enum"), list):
            return {_json(v): v for v in schema["enum"]}
        return None

    before, after = allowed(old), allowed(new)
    if before is None and after is not None:
        yield delta(
            "enum-added",
            f"restricted to {_show(list(after.values()))}",
            narrows=True,
            widens=False,
        )
    elif before is not None and after is None:
        yield delta(
            "enum-removed",
            f"no longer restricted to {_show(list(before.values()))}",
            narrows=False,
            widens=True,
        )
    elif before is not None and after is not None:
        removed = [before[k] for k in before if k not in after]
        added = [after[k] for k in after if k not in before]
        if removed:
            yield delta(
                "enum-value-removed",
                f"value(s) {_show(removed)} no longer allowed",
                narrows=True,
                widens=False,
            )
        if added:
            yield delta(
                "enum-value-added", f"new value(s) {_show(added)}", narrows=False, widens=True
            )


def _constraints(old: Mapping[str, Any], new: Mapping[str, Any], delta: _Emit) -> Iterator[Delta]:
    """format, pattern, bounds, multipleOf, uniqueItems."""
    for keyword in ("format", "pattern"):
        before, after = old.get(keyword), new.get(keyword)
        if before == after:
            continue
        if (
            keyword == "pattern"
            and isinstance(before, str)
            and isinstance(after, str)
            and _canonical_pattern(before) == _canonical_pattern(after)
        ):
            yield delta(
                "pattern-rewritten",
                f"pattern {before} → {after} (the same in ECMA-262, JSON Schema's dialect)",
                narrows=False,
                widens=False,
            )
        elif before is None:
            yield delta(f"{keyword}-added", f"{keyword} {after} added", narrows=True, widens=False)
        elif after is None:
            yield delta(
                f"{keyword}-removed", f"{keyword} {before} removed", narrows=False, widens=True
            )
        else:
            # Two regular expressions (or formats) cannot be compared: assume the worst
            # in both directions.
            yield delta(
                f"{keyword}-changed", f"{keyword} {before} → {after}", narrows=True, widens=True
            )
    for keyword in _LOWER_BOUNDS + _UPPER_BOUNDS:
        before, after = old.get(keyword), new.get(keyword)
        if before == after or isinstance(before, bool) or isinstance(after, bool):
            continue
        if before is None:
            yield delta("bound-added", f"{keyword} {after} added", narrows=True, widens=False)
        elif after is None:
            yield delta("bound-removed", f"{keyword} {before} removed", narrows=False, widens=True)
        else:
            tighter = after > before if keyword in _LOWER_BOUNDS else after < before
            yield delta(
                "bound-tightened" if tighter else "bound-relaxed",
                f"{keyword} {before} → {after}",
                narrows=tighter,
                widens=not tighter,
            )
    before, after = old.get("multipleOf"), new.get("multipleOf")
    if before != after:
        yield delta(
            "multiple-of-changed",
            f"multipleOf {before} → {after}",
            narrows=after is not None,
            widens=before is not None,
        )
    if bool(old.get("uniqueItems")) != bool(new.get("uniqueItems")):
        unique = bool(new.get("uniqueItems"))
        yield delta(
            "unique-items-changed",
            "items must now be unique" if unique else "items may now repeat",
            narrows=unique,
            widens=not unique,
        )
