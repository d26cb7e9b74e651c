"""Numbered SQL migrations: applied once, in order, safely under concurrent starts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from handwritten.runtime.db import MigrationError, load_migrations, migrate
from tests.integration.conftest import STACK

DATABASE = STACK["postgres"]["databases"][0]
URL = (
    f"postgresql://{DATABASE['user']}:{DATABASE['password']}@{STACK['postgres']['host']}:"
    f"{STACK['postgres']['port']}/{DATABASE['name']}"
)


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    """A throw-away schema so the test never touches a service's real tables."""
    name = f"test_migrations_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(URL)
    await connection.execute(f"CREATE SCHEMA {name}")
    try:
        yield name
    finally:
        await connection.execute(f"DROP SCHEMA {name} CASCADE")
        await connection.close()


async def _connect(schema: str) -> asyncpg.Connection:
    return await asyncpg.connect(URL, server_settings={"search_path": schema})


def _write(folder: Path, name: str, sql: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(sql)


async def test_pending_migrations_apply_once_in_order(schema: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    _write(folder, "002_add_column.sql", "ALTER TABLE things ADD COLUMN size int;")
    _write(folder, "001_create.sql", "CREATE TABLE things (id int PRIMARY KEY);")
    connection = await _connect(schema)
    try:
        assert await migrate(connection, folder) == ["001_create.sql", "002_add_column.sql"]
        assert await migrate(connection, folder) == []
        _write(folder, "003_index.sql", "CREATE INDEX things_size ON things (size);")
        assert await migrate(connection, folder) == ["003_index.sql"]
        versions = await connection.fetch("SELECT version FROM schema_migrations ORDER BY 1")
        assert [row["version"] for row in versions] == [1, 2, 3]
    finally:
        await connection.close()


async def test_an_edited_applied_migration_is_refused(schema: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    _write(folder, "001_create.sql", "CREATE TABLE things (id int PRIMARY KEY);")
    connection = await _connect(schema)
    try:
        await migrate(connection, folder)
        _write(folder, "001_create.sql", "CREATE TABLE things (id bigint PRIMARY KEY);")
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await migrate(connection, folder)
    finally:
        await connection.close()


async def test_a_failing_migration_leaves_nothing_half_done(schema: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    _write(folder, "001_create.sql", "CREATE TABLE things (id int PRIMARY KEY);")
    _write(folder, "002_broken.sql", "CREATE TABLE other (id int); SELECT no_such_function();")
    connection = await _connect(schema)
    try:
        with pytest.raises(asyncpg.UndefinedFunctionError):
            await migrate(connection, folder)
        applied = await connection.fetch("SELECT version FROM schema_migrations")
        assert [row["version"] for row in applied] == [1]
        assert await connection.fetchval("SELECT to_regclass('other')") is None
    finally:
        await connection.close()


async def test_concurrent_starts_apply_each_migration_once(schema: str, tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    _write(folder, "001_create.sql", "CREATE TABLE things (id int PRIMARY KEY);")
    _write(folder, "002_seed.sql", "INSERT INTO things VALUES (1);")
    connections = [await _connect(schema) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c, folder) for c in connections))
        assert sorted(name for result in results for name in result) == [
            "001_create.sql",
            "002_seed.sql",
        ]
        assert await connections[0].fetchval("SELECT count(*) FROM things") == 1
    finally:
        for connection in connections:
            await connection.close()


def test_misnamed_migration_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "1-create.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match="NNN_snake_case"):
        load_migrations(tmp_path)


async def test_components_keep_separate_version_sequences(schema: str, tmp_path: Path) -> None:
    service, shared = tmp_path / "service", tmp_path / "shared"
    _write(service, "001_things.sql", "CREATE TABLE things (id int);")
    _write(shared, "001_outbox.sql", "CREATE TABLE outbox_like (id int);")
    connection = await _connect(schema)
    try:
        assert await migrate(connection, service) == ["001_things.sql"]
        assert await migrate(connection, shared, component="outbox") == ["001_outbox.sql"]
        assert await migrate(connection, shared, component="outbox") == []
    finally:
        await connection.close()
