"""What a spec diff finds: one ``Change`` per difference that matters to someone."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum


class Severity(StrEnum):
    """How a change is judged, from worst to harmless.

    ``ERROR`` is a broken rule that no flag can allow (an event payload changed in a
    backward-incompatible way without a new schema version and its upcaster).
    ``BREAKING`` fails the check unless ``--allow-breaking`` is given or the change
    is acknowledged; an acknowledged breaking change, or one the event versioning
    rule handles, becomes ``ACKNOWLEDGED``.
    """

    ERROR = "error"
    BREAKING = "breaking"
    ACKNOWLEDGED = "acknowledged"
    COMPATIBLE = "compatible"


#: Order in reports: the worst first.
SEVERITY_ORDER = (Severity.ERROR, Severity.BREAKING, Severity.ACKNOWLEDGED, Severity.COMPATIBLE)

#: Spec areas in report order (the first part of a change's kind).
AREAS = ("openapi", "asyncapi", "proto", "saga")


@dataclass(frozen=True)
class Change:
    """One classified difference between the base specs and the working tree.

    ``kind`` is ``<area>.<rule>`` (``openapi.response.property-removed``) and
    ``location`` a stable, line-number-free description of where; together they are
    what an acknowledgement names. ``source`` is ``file:line`` for readers (at the
    base when the thing no longer exists), ``affects`` lists who is concerned (the
    operations using a shared component, an event's consumer groups) and ``note``
    says why a breaking change is acknowledged.
    """

    kind: str
    severity: Severity
    location: str
    message: str
    source: str = ""
    affects: tuple[str, ...] = field(default=(), compare=False)
    note: str = ""

    @property
    def area(self) -> str:
        """``openapi``, ``asyncapi``, ``proto`` or ``saga``."""
        return self.kind.split(".", 1)[0]

    def acknowledged(self, note: str) -> Change:
        """This change, accepted on purpose for the reason ``note``."""
        return replace(self, severity=Severity.ACKNOWLEDGED, note=note)


class SpecDiffError(Exception):
    """The diff could not be computed (unknown git ref, unreadable specs...)."""


def sort_key(change: Change) -> tuple[int, int, str, str, str]:
    """Worst first, then by area, location and kind: a deterministic report."""
    area = AREAS.index(change.area) if change.area in AREAS else len(AREAS)
    return (
        SEVERITY_ORDER.index(change.severity),
        area,
        change.location,
        change.kind,
        change.message,
    )


def merge_duplicates(changes: list[Change]) -> list[Change]:
    """One change per (kind, severity, location, message), with ``affects`` merged.

    A shared component (``common.yaml``'s Problem, say) is reached from many
    operations; its change is reported once, naming every operation it affects.
    """
    merged: dict[tuple[str, Severity, str, str], Change] = {}
    for change in changes:
        key = (change.kind, change.severity, change.location, change.message)
        seen = merged.get(key)
        if seen is None:
            merged[key] = change
        else:
            affects = tuple(dict.fromkeys((*seen.affects, *change.affects)))
            merged[key] = replace(seen, affects=affects)
    return sorted(
        (replace(c, affects=tuple(sorted(c.affects))) for c in merged.values()), key=sort_key
    )
