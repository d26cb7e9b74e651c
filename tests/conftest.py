"""Fixtures shared by every suite: where the local infrastructure listens."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

STACK: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "infrastructure/local/stack.json").read_text()
)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    kafka = STACK["kafka"]
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", f"{kafka['host']}:{kafka['port']}")
