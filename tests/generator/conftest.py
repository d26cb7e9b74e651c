"""Fixtures for generator tests: a private copy of the small 'shop' spec set."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "shop"


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A writable copy of the shop fixture; tests may edit its specs."""
    root = tmp_path / "shop"
    shutil.copytree(FIXTURE, root)
    return root


def replace_in(path: Path, old: str, new: str) -> int:
    """Replace the single occurrence of ``old``; returns its 1-based line number."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} must occur once in {path}"
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new), encoding="utf-8")
    return line
