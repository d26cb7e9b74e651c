"""PostgreSQL: an asyncpg pool and numbered ``.sql`` migrations applied once each.

Migrations live in ``handwritten/<service>/migrations/NNN_name.sql``; shared runtime
components (event store, outbox…) keep their own folders and are applied into each
service database that uses them under their own ``component`` name. Each file runs
in its own transaction and is recorded in ``schema_migrations`` with its checksum; an
advisory lock makes concurrent starts (several replicas) apply each file once, and
an edited, already-applied file is refused rather than silently ignored.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from handwritten.runtime.logging import get_logger

log = get_logger(__name__)

_MIGRATION_NAME = re.compile(r"^(?P<version>\d{3,})_[a-z0-9_]+\.sql$")
#: Arbitrary constant: the advisory lock id guarding migrations in any service DB.
_MIGRATION_LOCK_ID = 0x4D435F4D  # "MC_M"


class MigrationError(RuntimeError):
    """A migration file is misnamed, duplicated, or changed after being applied."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(folder: Path) -> list[Migration]:
    """Every ``NNN_name.sql`` in ``folder``, ordered by version."""
    migrations: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration files are named NNN_snake_case.sql")
        version = int(match["version"])
        if version in migrations:
            raise MigrationError(f"{path}: version {version} is used twice")
        migrations[version] = Migration(version, path.name, path.read_text(encoding="utf-8"))
    return [migrations[v] for v in sorted(migrations)]


async def migrate(
    connection: asyncpg.Connection, folder: Path, *, component: str = "service"
) -> list[str]:
    """Apply the pending migrations of ``folder``; returns the names applied."""
    migrations = load_migrations(folder)
    applied: list[str] = []
    await connection.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK_ID)
    try:
        await connection.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                component text NOT NULL,
                version integer NOT NULL,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (component, version)
            )
            """
        )
        done = {
            row["version"]: row["checksum"]
            for row in await connection.fetch(
                "SELECT version, checksum FROM schema_migrations WHERE component = $1", component
            )
        }
        for migration in migrations:
            if migration.version in done:
                if done[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"{migration.name} changed after it was applied: add a new migration"
                    )
                continue
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO schema_migrations (component, version, name, checksum) "
                    "VALUES ($1, $2, $3, $4)",
                    component,
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            applied.append(migration.name)
            log.info("migration applied", component=component, migration=migration.name)
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK_ID)
    return applied


async def create_pool(url: str, *, min_size: int, max_size: int) -> asyncpg.Pool:
    """A connection pool; fails fast when the database cannot be reached."""
    pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, timeout=10)
    assert pool is not None
    return pool
