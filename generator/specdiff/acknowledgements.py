"""Breaking changes made on purpose, listed in ``specs/breaking-changes.yaml``.

Each entry names one change by its ``kind`` and ``location`` exactly as the report
prints them, and says why it is acceptable::

    acknowledged:
      - kind: openapi.response.property-removed
        location: "orders: GET /api/orders/{orderId}, response 200 application/json: legacyId"
        reason: Never populated since 2026-01; clients were told in the changelog.

A matching breaking change is reported as acknowledged and does not fail the check.
Errors (the event versioning rule) cannot be acknowledged. The file is read from
the working tree only: acknowledging is part of the change under review.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from generator.specdiff.model import Change, Severity, SpecDiffError

ACKNOWLEDGEMENTS_FILE = Path("specs") / "breaking-changes.yaml"


@dataclass(frozen=True)
class Acknowledgement:
    """One breaking change accepted on purpose."""

    kind: str
    location: str
    reason: str


def load_acknowledgements(root: Path) -> list[Acknowledgement]:
    """The entries of ``root/specs/breaking-changes.yaml`` (none when it is absent)."""
    path = root / ACKNOWLEDGEMENTS_FILE
    if not path.is_file():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise SpecDiffError(f"{ACKNOWLEDGEMENTS_FILE}: invalid YAML: {exc}") from exc
    entries = (data.get("acknowledged") or []) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise SpecDiffError(f"{ACKNOWLEDGEMENTS_FILE}: expected a list under 'acknowledged'")
    found = []
    for index, entry in enumerate(entries):
        fields = {
            key: entry.get(key) if isinstance(entry, dict) else None
            for key in ("kind", "location", "reason")
        }
        missing = [
            key for key, value in fields.items() if not isinstance(value, str) or not value.strip()
        ]
        if missing:
            raise SpecDiffError(
                f"{ACKNOWLEDGEMENTS_FILE}: entry {index + 1} needs a non-empty "
                + ", ".join(missing)
            )
        found.append(Acknowledgement(**{key: str(value).strip() for key, value in fields.items()}))
    return found


def apply_acknowledgements(
    changes: list[Change], acknowledgements: list[Acknowledgement]
) -> list[Change]:
    """``changes`` with the acknowledged breaking ones marked, plus unused entries.

    An entry that matches no change is reported (as compatible) so stale entries get
    removed; one that matches an error says that errors cannot be acknowledged.
    """
    by_key = {(a.kind, a.location): a for a in acknowledgements}
    used: set[tuple[str, str]] = set()
    result = []
    for change in changes:
        key = (change.kind, change.location)
        entry = by_key.get(key)
        if entry is not None and change.severity is Severity.BREAKING:
            used.add(key)
            result.append(change.acknowledged(entry.reason))
        elif entry is not None and change.severity is Severity.ERROR:
            used.add(key)
            result.append(
                Change(
                    change.kind,
                    change.severity,
                    change.location,
                    change.message + " (errors cannot be acknowledged)",
                    change.source,
                    change.affects,
                )
            )
        else:
            if entry is not None:
                used.add(key)
            result.append(change)
    for entry in acknowledgements:
        if (entry.kind, entry.location) not in used:
            result.append(
                Change(
                    "meta.unused-acknowledgement",
                    Severity.COMPATIBLE,
                    entry.location,
                    f"{entry.kind} is acknowledged but did not happen: remove the entry",
                    str(ACKNOWLEDGEMENTS_FILE),
                )
            )
    return result
