"""Suite result files and the Markdown summary rendered from them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.results import (
    SuiteResult,
    Table,
    load_suites,
    mib,
    ms,
    per_second,
    render_summary,
    times,
    unexpected_outcomes,
    write_suite,
    write_summary,
)

MACHINE: dict[str, Any] = {
    "date": "2026-11-29T10:00:00+00:00",
    "cpu": "Test CPU",
    "cores": 2,
    "memory_gib": 24.0,
    "os": "Debian",
    "kernel": "6.1",
    "python": "3.11.7",
    "postgresql": "15.18",
    "redis": "7.0.15",
    "kafka": "3.9.1",
    "commit": "abc123",
    "dirty": False,
    "load_average": [0.1, 0.2, 0.3],
}


def result(suite: str, title: str = "A suite") -> SuiteResult:
    return SuiteResult(
        suite=suite,
        title=title,
        parameters={"quick": True},
        results={"answer": 42},
        tables=[Table("Numbers", ["name", "value"], [["x", "1"], ["a|b", "2"]])],
        notes=["Read me first."],
        duration_seconds=12.345,
    )


def test_a_table_row_must_match_its_columns() -> None:
    with pytest.raises(ValueError, match="does not match"):
        Table("Broken", ["a", "b"], [["only one"]])


def test_write_suite_stores_results_with_the_machine(tmp_path: Path) -> None:
    path = write_suite(tmp_path, result("orders"), MACHINE)
    data = json.loads(path.read_text())
    assert path.name == "orders.json"
    assert data["machine"]["cpu"] == "Test CPU"
    assert data["results"] == {"answer": 42}
    assert data["duration_seconds"] == 12.3
    assert data["tables"][0]["rows"][1] == ["a|b", "2"]


def test_summary_has_machine_tables_and_notes(tmp_path: Path) -> None:
    write_suite(tmp_path, result("orders", "End to end"), MACHINE)
    text = render_summary(load_suites(tmp_path, ["orders"]), command="make bench")
    assert "Written by `make bench`" in text
    assert "## End to end" in text
    assert "Test CPU, 2 cores, 24.0 GiB" in text
    assert "commit abc123" in text
    assert "| name | value |" in text
    assert "| a\\|b | 2 |" in text  # a pipe inside a cell does not break the table
    assert "- Read me first." in text


def test_summary_lists_known_suites_in_order_then_the_rest(tmp_path: Path) -> None:
    for name in ("zeta", "grpc", "orders"):
        write_suite(tmp_path, result(name, f"Suite {name}"), MACHINE)
    (tmp_path / "not-a-suite.json").write_text('{"hello": 1}')
    suites = load_suites(tmp_path, ["orders", "eventstore", "grpc"])
    assert [s["suite"] for s in suites] == ["orders", "grpc", "zeta"]
    path = write_summary(tmp_path, ["orders", "grpc"], command="python -m bench")
    text = path.read_text()
    assert text.index("Suite orders") < text.index("Suite grpc") < text.index("Suite zeta")


def test_dirty_trees_are_flagged_in_the_summary(tmp_path: Path) -> None:
    write_suite(tmp_path, result("orders"), {**MACHINE, "dirty": True})
    text = render_summary(load_suites(tmp_path, ["orders"]), command="make bench")
    assert "(with local changes)" in text


def test_cell_formats() -> None:
    assert ms(None) == "–"
    assert ms(1.234) == "1.23"
    assert ms(123.45) == "123.5"
    assert per_second(12.34) == "12.3"
    assert per_second(1234.5) == "1,234"
    assert per_second(None) == "–"
    assert times(1.5) == "1.50×"
    assert times(None) == "–"
    assert mib(1536.4) == "1,536 MiB"


def test_unexpected_outcomes_are_flagged_per_measurement() -> None:
    warnings = unexpected_outcomes(
        {"gateway 5/s": {"201": 98, "502": 2}, "direct 5/s": {"201": 100}}, expected=["201"]
    )
    assert len(warnings) == 1
    assert warnings[0].startswith("WARNING — gateway 5/s: 2 of 100 calls ended 502 ×2")
