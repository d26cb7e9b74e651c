"""Suite results: one JSON file per suite and a Markdown summary of all of them.

A suite returns a ``SuiteResult``: its full numbers (``results``, free-form JSON),
the tables a reader wants first (``tables``) and ``notes`` on how to read them.
``write_suite`` stores ``<dir>/<suite>.json`` with the machine it ran on;
``write_summary`` renders ``<dir>/summary.md`` from every suite file in ``<dir>``,
so re-running one suite refreshes its section and keeps the others (each section
names its own date and commit).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.machine import describe

SUMMARY = "summary.md"


@dataclass(frozen=True)
class Table:
    """A small table for the summary: a title, column names and rows of cells."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[str]]

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(f"{self.title}: row {list(row)} does not match {self.columns}")


@dataclass
class SuiteResult:
    """What one suite measured."""

    suite: str
    title: str
    parameters: dict[str, Any]
    results: dict[str, Any]
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    duration_seconds: float = 0.0

    def to_json(self, machine: dict[str, Any]) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "title": self.title,
            "machine": machine,
            "duration_seconds": round(self.duration_seconds, 1),
            "parameters": self.parameters,
            "results": self.results,
            "tables": [asdict(table) for table in self.tables],
            "notes": self.notes,
        }


def write_suite(directory: Path, result: SuiteResult, machine: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{result.suite}.json"
    path.write_text(
        json.dumps(result.to_json(machine), indent=2, sort_keys=False) + "\n", encoding="utf-8"
    )
    return path


def load_suites(directory: Path, order: Sequence[str]) -> list[dict[str, Any]]:
    """Every suite file of ``directory``: the known suites in ``order``, then the rest."""
    found = {path.stem: path for path in directory.glob("*.json")}
    names = [name for name in order if name in found]
    names += sorted(name for name in found if name not in order)
    suites = []
    for name in names:
        data = json.loads(found[name].read_text(encoding="utf-8"))
        if isinstance(data, dict) and "suite" in data and "tables" in data:
            suites.append(data)
    return suites


def render_summary(suites: Iterable[dict[str, Any]], *, command: str) -> str:
    """The Markdown summary of suite files (as ``load_suites`` returns them)."""
    lines = [
        "# MicroCommerce benchmarks",
        "",
        f"Written by `{command}`. Full numbers: the `<suite>.json` files beside this one.",
        "",
    ]
    for suite in suites:
        machine = suite["machine"]
        lines += [
            f"## {suite['title']}",
            "",
            f"_{machine['date']}, {suite['duration_seconds']} s — {describe(machine)}_",
            "",
        ]
        for table in suite["tables"]:
            lines += _table(table["title"], table["columns"], table["rows"])
        for note in suite["notes"]:
            lines.append(f"- {note}")
        if suite["notes"]:
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_summary(directory: Path, order: Sequence[str], *, command: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / SUMMARY
    path.write_text(
        render_summary(load_suites(directory, order), command=command), encoding="utf-8"
    )
    return path


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def cells(values: Sequence[str]) -> str:
        return "| " + " | ".join(str(value).replace("|", "\\|") for value in values) + " |"

    return [
        f"**{title}**",
        "",
        cells(columns),
        "| " + " | ".join("---" for _ in columns) + " |",
        *(cells(row) for row in rows),
        "",
    ]


def unexpected_outcomes(
    measurements: dict[str, dict[str, int]], expected: Sequence[str]
) -> list[str]:
    """Warnings for measurements with outcomes other than ``expected`` (by label).

    Errors and unexpected statuses usually mean the stack was restarting or overloaded
    while it was measured: the reader must see that before trusting the numbers.
    """
    warnings = []
    for label, outcomes in measurements.items():
        other = {k: v for k, v in outcomes.items() if k not in expected}
        if other:
            total = sum(outcomes.values())
            listed = ", ".join(f"{k} ×{v}" for k, v in sorted(other.items()))
            warnings.append(
                f"WARNING — {label}: {sum(other.values())} of {total} calls ended {listed};"
                " its numbers are not comparable (was the stack restarting or overloaded?)."
            )
    return warnings


# ------------------------------------------------------------------ cell formats


def ms(value: float | None) -> str:
    """A latency in milliseconds for a table cell."""
    if value is None:
        return "–"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def per_second(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def times(value: float | None) -> str:
    """A ratio such as ``1.35×``."""
    return "–" if value is None else f"{value:.2f}×"


def mib(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f} MiB"
