"""YAML documents that remember where each value came from.

Loading keeps a map from JSON pointer to source line so that every validation
error can name the file and the line, not only the path inside the document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from generator.errors import InvalidSpecsError, SpecError, escape_pointer_token


@dataclass(frozen=True)
class SourceDocument:
    """A parsed spec file with its pointer → line index."""

    path: Path
    relpath: str
    data: Any
    lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, pointer: str) -> int | None:
        """Line of the value at ``pointer``, or of its nearest existing ancestor."""
        current = pointer
        while True:
            if current in self.lines:
                return self.lines[current]
            if not current:
                return None
            current = current.rsplit("/", 1)[0]

    def error(self, pointer: str, message: str) -> SpecError:
        """Build an error located at ``pointer`` in this document."""
        return SpecError(self.relpath, pointer, message, self.line_of(pointer))


_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _index(node: yaml.Node, pointer: str, lines: dict[str, int]) -> None:
    lines[pointer] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            token = escape_pointer_token(str(key_node.value))
            _index(value_node, f"{pointer}/{token}", lines)
    elif isinstance(node, yaml.SequenceNode):
        for position, item in enumerate(node.value):
            _index(item, f"{pointer}/{position}", lines)


def load_document(path: Path, root: Path) -> SourceDocument:
    """Parse a YAML (or JSON) file, raising ``InvalidSpecsError`` on a syntax error."""
    relpath = path.relative_to(root).as_posix()
    text = path.read_text(encoding="utf-8")
    try:
        # The C loader (libyaml) when present: same data and marks, several times faster.
        node = yaml.compose(text, Loader=_LOADER)
        data = yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise InvalidSpecsError([SpecError(relpath, "", f"invalid YAML: {exc}", line)]) from exc
    lines: dict[str, int] = {}
    if node is not None:
        _index(node, "", lines)
    return SourceDocument(path=path, relpath=relpath, data=data, lines=lines)
