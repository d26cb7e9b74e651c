"""Throw-away PostgreSQL schemas in the ``orders`` database for runtime tests.

Each test module gets its own schema (via ``search_path``) with the event store,
outbox and inbox tables, so nothing collides with a running service or another
module, and the schema is dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from handwritten.runtime.eventstore import migrate_event_store
from handwritten.runtime.inbox import migrate_inbox
from handwritten.runtime.outbox import migrate_outbox
from tests.integration.conftest import STACK

_ORDERS = next(db for db in STACK["postgres"]["databases"] if db["name"] == "orders")
URL = (
    f"postgresql://{_ORDERS['user']}:{_ORDERS['password']}@{STACK['postgres']['host']}:"
    f"{STACK['postgres']['port']}/{_ORDERS['name']}"
)


@dataclass(frozen=True)
class Schema:
    """A schema of its own: connections and pools whose search_path is that schema."""

    name: str

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(URL, server_settings={"search_path": self.name})

    async def pool(self, **options: Any) -> asyncpg.Pool:
        pool = await asyncpg.create_pool(URL, server_settings={"search_path": self.name}, **options)
        assert pool is not None
        return pool

    async def fetchval(self, query: str, *args: Any) -> Any:
        connection = await self.connect()
        try:
            return await connection.fetchval(query, *args)
        finally:
            await connection.close()


@asynccontextmanager
async def throwaway_schema(prefix: str) -> AsyncIterator[Schema]:
    """A fresh schema with the eventstore, outbox and inbox migrations applied."""
    schema = Schema(f"{prefix}_{uuid.uuid4().hex[:10]}")
    admin = await asyncpg.connect(URL)
    await admin.execute(f"CREATE SCHEMA {schema.name}")
    try:
        connection = await schema.connect()
        try:
            await migrate_event_store(connection)
            await migrate_outbox(connection)
            await migrate_inbox(connection)
        finally:
            await connection.close()
        yield schema
    finally:
        await admin.execute(f"DROP SCHEMA {schema.name} CASCADE")
        await admin.close()
