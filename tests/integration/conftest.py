"""Connection settings for the local infrastructure (started by `make infra-up`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

STACK = json.loads(
    (Path(__file__).resolve().parents[2] / "infrastructure/local/stack.json").read_text()
)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    kafka = STACK["kafka"]
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", f"{kafka['host']}:{kafka['port']}")
