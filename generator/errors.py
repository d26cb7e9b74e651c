"""Spec errors that point at the exact place in the exact file."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, order=True)
class SpecError:
    """One problem in one spec file.

    ``pointer`` is an RFC 6901 JSON pointer into the document (``""`` is the root);
    ``line`` is 1-based when known.
    """

    file: str
    pointer: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        pointer = self.pointer or "/"
        return f"{where}: {pointer}: {self.message}"


@dataclass
class InvalidSpecsError(Exception):
    """Raised when the spec set is invalid; carries every problem found."""

    errors: list[SpecError] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{len(self.errors)} spec error(s):"]
        lines.extend(f"  {error}" for error in sorted(self.errors))
        return "\n".join(lines)


def escape_pointer_token(token: str | int) -> str:
    """Escape one reference token per RFC 6901."""
    return str(token).replace("~", "~0").replace("/", "~1")


def join_pointer(*tokens: str | int) -> str:
    """Build a JSON pointer from raw tokens."""
    return "".join("/" + escape_pointer_token(token) for token in tokens)
