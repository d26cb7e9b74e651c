"""The outcome of a spec diff: its exit code, a Markdown summary and a JSON form.

The Markdown is meant to be pasted (or posted by CI) as a pull request comment:
a verdict line, then one table per severity, compatible changes folded away.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from generator.specdiff.acknowledgements import ACKNOWLEDGEMENTS_FILE
from generator.specdiff.model import SEVERITY_ORDER, Change, Severity

EXIT_OK = 0
EXIT_BREAKING = 1  # breaking changes not allowed, or errors
EXIT_FAILED = 2  # the diff could not be computed

_AREA_TITLES = {
    "openapi": "OpenAPI",
    "asyncapi": "AsyncAPI",
    "proto": "proto",
    "saga": "saga",
    "meta": "acknowledgements",
}
_SECTION_TITLES = {
    Severity.ERROR: "❌ Errors",
    Severity.BREAKING: "⚠️ Breaking changes",
    Severity.ACKNOWLEDGED: "☑️ Acknowledged breaking changes",
    Severity.COMPATIBLE: "✅ Compatible changes",
}
_MAX_AFFECTS = 5


@dataclass(frozen=True)
class DiffResult:
    """Every change between the specs at ``base`` and the working tree."""

    base: str  # the ref as given
    base_commit: str
    changes: tuple[Change, ...]
    head: str = "working tree"

    def count(self, severity: Severity) -> int:
        """How many changes have ``severity``."""
        return sum(1 for change in self.changes if change.severity is severity)


def exit_code(result: DiffResult, *, allow_breaking: bool) -> int:
    """0 when the check passes, 1 when it fails."""
    if result.count(Severity.ERROR):
        return EXIT_BREAKING
    if result.count(Severity.BREAKING) and not allow_breaking:
        return EXIT_BREAKING
    return EXIT_OK


def _cell(text: str) -> str:
    """Text safe inside a GitHub Markdown table cell."""
    return (
        text.replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("*", "\\*")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\n", " ")
    )


def _row(change: Change) -> str:
    where = _cell(change.location)
    if change.source:
        where += f"<br>`{change.source}`"
    what = _cell(change.message)
    if change.note:
        what += f"<br>**Why:** {_cell(change.note)}"
    if change.affects:
        shown = ", ".join(_cell(a) for a in change.affects[:_MAX_AFFECTS])
        more = len(change.affects) - _MAX_AFFECTS
        what += f"<br>Affects: {shown}" + (f" (+{more} more)" if more > 0 else "")
    area = _AREA_TITLES.get(change.area, change.area)
    return f"| {area} | `{change.kind}` | {where} | {what} |"


def _verdict(result: DiffResult, *, allow_breaking: bool) -> str:
    if exit_code(result, allow_breaking=allow_breaking) != EXIT_OK:
        return "❌ **fails**"
    if result.count(Severity.BREAKING):
        return "✅ **passes** (breaking changes allowed with --allow-breaking)"
    return "✅ **passes**"


def render_markdown(result: DiffResult, *, allow_breaking: bool) -> str:
    """The summary for a pull request comment."""
    title = f"## Spec diff: `{result.base}` (`{result.base_commit[:12]}`) → {result.head}"
    if not result.changes:
        return f"{title}\n\n✅ **passes**: no spec changes.\n"
    counts = ", ".join(
        f"{result.count(severity)} {severity.value}"
        + ("s" if severity is Severity.ERROR and result.count(severity) > 1 else "")
        for severity in SEVERITY_ORDER
        if result.count(severity)
    )
    areas = Counter(_AREA_TITLES.get(c.area, c.area) for c in result.changes)
    by_area = ", ".join(f"{area} {n}" for area, n in sorted(areas.items()))
    lines = [
        title,
        "",
        f"{_verdict(result, allow_breaking=allow_breaking)}: {counts} ({by_area}).",
    ]
    if result.count(Severity.ERROR) or result.count(Severity.BREAKING):
        lines += [
            "",
            "Errors break the event versioning rule (bump `x-schema-version` and declare "
            "`x-upcasters`) and cannot be allowed. Breaking changes fail the check unless "
            f"acknowledged with a reason in `{ACKNOWLEDGEMENTS_FILE.as_posix()}` or allowed "
            "with `--allow-breaking` (`ALLOW_BREAKING=1`).",
        ]
    for severity in SEVERITY_ORDER:
        changes = [c for c in result.changes if c.severity is severity]
        if not changes:
            continue
        table = [
            "| Spec | Change | Where | What |",
            "| --- | --- | --- | --- |",
            *(_row(change) for change in changes),
        ]
        heading = f"### {_SECTION_TITLES[severity]} ({len(changes)})"
        if severity is Severity.COMPATIBLE:
            lines += [
                "",
                heading,
                "",
                "<details><summary>Show them</summary>",
                "",
                *table,
                "",
                "</details>",
            ]
        else:
            lines += ["", heading, "", *table]
    return "\n".join(lines) + "\n"


def render_json(result: DiffResult, *, allow_breaking: bool) -> str:
    """The same, for tools."""
    code = exit_code(result, allow_breaking=allow_breaking)
    payload = {
        "base": result.base,
        "base_commit": result.base_commit,
        "head": result.head,
        "passed": code == EXIT_OK,
        "exit_code": code,
        "allow_breaking": allow_breaking,
        "counts": {severity.value: result.count(severity) for severity in SEVERITY_ORDER},
        "changes": [
            {
                "kind": change.kind,
                "area": change.area,
                "severity": change.severity.value,
                "location": change.location,
                "message": change.message,
                "source": change.source,
                "affects": list(change.affects),
                "note": change.note,
            }
            for change in result.changes
        ],
    }
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
