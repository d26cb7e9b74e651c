from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.integration.eventstore.database import Schema, throwaway_schema


@pytest.fixture(scope="module")
async def db() -> AsyncIterator[Schema]:
    async with throwaway_schema("test_eventstore") as schema:
        yield schema
