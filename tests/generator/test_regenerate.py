"""Regeneration is deterministic and touches exactly what a spec edit affects."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.cli import main
from generator.pipeline import build, diff, write

from .conftest import replace_in


def _generate(root: Path) -> list[str]:
    return write(build(root), root)


def test_two_runs_give_identical_bytes(shop: Path) -> None:
    assert build(shop).files == build(shop).files


def test_second_generate_changes_nothing(shop: Path) -> None:
    assert _generate(shop)
    assert _generate(shop) == []


def test_saga_timeout_edit_changes_only_the_saga_outputs(shop: Path) -> None:
    _generate(shop)
    replace_in(
        shop / "specs" / "sagas" / "place_order.saga.yaml", "timeout: 500ms", "timeout: 750ms"
    )
    # The saga module, its fault points (they carry the step timeout) and its diagrams.
    assert sorted(_generate(shop)) == [
        "docs/generated/sagas.md",
        "generated/sagas/place_order.py",
        "generated/sagas/place_order_faults.py",
    ]
    assert "timeout_ms=750" in (shop / "generated/sagas/place_order.py").read_text()


def test_openapi_constraint_edit_changes_only_that_services_models(shop: Path) -> None:
    _generate(shop)
    replace_in(shop / "specs" / "openapi" / "orders.yaml", "maximum: 10}", "maximum: 20}")
    assert sorted(_generate(shop)) == ["generated/models/orders.py"]
    assert "le=20" in (shop / "generated/models/orders.py").read_text()


def test_partition_edit_changes_registry_and_deployment_files(shop: Path) -> None:
    _generate(shop)
    replace_in(shop / "specs" / "asyncapi" / "microcommerce.yaml", "partitions: 4", "partitions: 6")
    changed = set(_generate(shop))
    assert "generated/events/registry.py" in changed
    assert "infrastructure/local/stack.json" in changed
    assert "generated/models/events.py" not in changed


def test_check_reports_a_hand_edit_and_a_stray_file(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _generate(shop)
    assert main(["check", "--root", str(shop)]) == 0
    assert "up to date" in capsys.readouterr().out
    saga = shop / "generated/sagas/place_order.py"
    saga.write_text(saga.read_text().replace("timeout_ms=500", "timeout_ms=1"))
    (shop / "generated/stray.py").write_text("x = 1\n")
    assert main(["check", "--root", str(shop)]) == 1
    printed = capsys.readouterr().out
    assert (
        '-            action=GrpcAction(method="stock.v1.StockService/Commit", timeout_ms=1)'
        in printed
    )
    assert "a/generated/stray.py" in printed
    assert diff(build(shop), shop) == printed


def test_generate_removes_files_no_spec_asks_for(shop: Path) -> None:
    _generate(shop)
    (shop / "generated/stray.py").write_text("x = 1\n")
    assert "generated/stray.py" in _generate(shop)
    assert not (shop / "generated/stray.py").exists()
