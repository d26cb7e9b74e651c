"""Fixtures shared by every suite: where the local infrastructure listens, and the
spans a test records."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from handwritten.runtime import tracing

STACK: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "infrastructure/local/stack.json").read_text()
)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    kafka = STACK["kafka"]
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", f"{kafka['host']}:{kafka['port']}")


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """Every span the platform's tracer records during the test, in memory (the
    provider is put back to none afterwards)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracing.use_provider(provider)
    try:
        yield memory
    finally:
        tracing.use_provider(None)
        provider.shutdown()
