"""Upcasters: old stored event shapes are brought to the current one on load.

Events are immutable, so a changed event schema is handled when reading: each
upcaster turns the ``data`` of one event type from schema version ``n`` into
version ``n + 1``, and ``Upcasters.upcast`` chains them until no step is left.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

#: Turns the data of one schema version into the next (pure, no I/O).
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class Upcasters:
    """A registry of ``(event_type, from_schema_version) → upcaster``."""

    def __init__(self) -> None:
        self._steps: dict[tuple[str, int], Upcaster] = {}

    def register(
        self, event_type: str, from_version: int, upcaster: Upcaster | None = None
    ) -> Callable[[Upcaster], Upcaster]:
        """Register the step ``from_version → from_version + 1`` of ``event_type``.

        Usable directly (``register("X", 1, fn)``) or as a decorator
        (``@upcasters.register("X", 1)``).
        """
        if from_version < 1:
            raise ValueError("schema versions start at 1")

        def add(function: Upcaster) -> Upcaster:
            key = (event_type, from_version)
            if key in self._steps:
                raise ValueError(f"{event_type} v{from_version} already has an upcaster")
            self._steps[key] = function
            return function

        if upcaster is not None:
            add(upcaster)
        return add

    def current_version(self, event_type: str) -> int:
        """The schema version the chain of ``event_type`` ends at (1 if it has none)."""
        versions = [version for (kind, version) in self._steps if kind == event_type]
        return max(versions, default=0) + 1

    def upcast(
        self, event_type: str, schema_version: int, data: Mapping[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """``data`` brought from ``schema_version`` as far as the chain goes.

        Returns the resulting version and data; the input is never mutated (the chain
        works on a deep copy), so callers' objects stay untouched.
        """
        version, current = schema_version, copy.deepcopy(dict(data))
        while (step := self._steps.get((event_type, version))) is not None:
            current = step(current)
            version += 1
        return version, current
