"""Keep the process's chdb engine open for the whole session (opening takes a second)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from handwritten.analytics.adapters.clickhouse import ChdbClickHouse
from tests.unit.analytics.engine import chdb_path


@pytest.fixture(scope="session")
async def chdb_engine() -> AsyncIterator[ChdbClickHouse]:
    engine = await ChdbClickHouse.open(chdb_path())
    try:
        yield engine
    finally:
        await engine.close()
