"""The local PostgreSQL cluster from a benchmark's side: a scratch database, pgbench,
and commit counters.

Creating a database needs the superuser, which the local cluster only admits over
its unix socket as the OS user that owns it (``infrastructure/local/postgres.sh``:
peer authentication, ``postgres`` when running as root). The scratch database gets
a role of its own with a password, so everything else (asyncpg, psycopg, pgbench)
connects over TCP like the services do. One scratch database at a time: a run drops
a leftover of an interrupted run before creating its own.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench.stack import LOCAL_DIR, database_url, postgres_address, service_databases

SCRATCH_NAME = "mc_bench"
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PostgresToolError(RuntimeError):
    """A PostgreSQL client program (psql, pgbench) failed."""


@dataclass(frozen=True)
class Cluster:
    """How to reach the local cluster as the superuser, and its client programs."""

    bin_dir: Path
    socket_dir: Path
    port: int
    os_user: str | None  # run the programs as this OS user (when we are root)

    @classmethod
    def local(cls) -> Cluster:
        data = LOCAL_DIR / "postgres" / "data"
        version = (data / "PG_VERSION").read_text(encoding="utf-8").strip()
        bin_dir = Path(os.environ.get("MC_PG_BIN", f"/usr/lib/postgresql/{version}/bin"))
        os_user = os.environ.get("MC_PG_OS_USER", "postgres") if os.geteuid() == 0 else None
        return cls(bin_dir, LOCAL_DIR / "postgres" / "run", postgres_address()[1], os_user)

    def command(self, program: str, *args: str) -> list[str]:
        """A command line running ``program`` from the cluster's bin dir (as its owner)."""
        argv = [str(self.bin_dir / program), *args]
        return ["runuser", "-u", self.os_user, "--", *argv] if self.os_user else argv

    async def superuser_sql(self, sql: str, *, database: str = "postgres") -> str:
        """Run ``sql`` (one statement per line allowed) as the superuser; its output."""
        argv = self.command(
            "psql",
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.socket_dir),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            database,
        )
        return await run_program(argv, stdin=sql, cwd=Path("/"))


@dataclass(frozen=True)
class ScratchDatabase:
    """A throw-away database and the role that owns it."""

    name: str
    user: str
    password: str
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.name}"

    async def connect(self, *, schema: str | None = None) -> asyncpg.Connection:
        settings = {"search_path": schema} if schema else None
        return await asyncpg.connect(self.url, server_settings=settings)

    async def pool(self, *, schema: str | None = None, size: int = 10) -> asyncpg.Pool:
        settings = {"search_path": schema} if schema else None
        pool = await asyncpg.create_pool(
            self.url, min_size=1, max_size=size, server_settings=settings
        )
        assert pool is not None
        return pool


@asynccontextmanager
async def scratch_database(
    cluster: Cluster | None = None, name: str = SCRATCH_NAME
) -> AsyncIterator[ScratchDatabase]:
    """Create ``name`` (and its role) afresh; drop both on exit."""
    if not _IDENT.match(name):
        raise ValueError(f"{name!r} is not a plain identifier")
    cluster = cluster or Cluster.local()
    host, port = postgres_address()
    database = ScratchDatabase(name, name, name, host, port)
    await _drop(cluster, name)
    await cluster.superuser_sql(
        f"CREATE ROLE {name} LOGIN PASSWORD '{name}';\nCREATE DATABASE {name} OWNER {name};"
    )
    try:
        yield database
    finally:
        await _drop(cluster, name)


async def _drop(cluster: Cluster, name: str) -> None:
    await cluster.superuser_sql(
        f"DROP DATABASE IF EXISTS {name} WITH (FORCE);\nDROP ROLE IF EXISTS {name};"
    )


@dataclass(frozen=True)
class PgbenchResult:
    """One pgbench run: the built-in TPC-B-like script, one commit per transaction."""

    clients: int
    threads: int
    seconds: int
    scale: int
    transactions: int
    tps: float
    latency_ms: float | None


async def pgbench(
    cluster: Cluster,
    database: ScratchDatabase,
    *,
    clients: int,
    seconds: int,
    scale: int = 10,
) -> PgbenchResult:
    """Initialise ``scale`` in ``database`` and run the default script for ``seconds``."""
    env = {"PGPASSWORD": database.password}
    common = ["-h", database.host, "-p", str(database.port), "-U", database.user]
    await run_program(
        [str(cluster.bin_dir / "pgbench"), "-i", "-q", "-s", str(scale), *common, database.name],
        env=env,
    )
    threads = min(clients, os.cpu_count() or 1)
    output = await run_program(
        [
            str(cluster.bin_dir / "pgbench"),
            "-n",
            "-M",
            "prepared",
            "-c",
            str(clients),
            "-j",
            str(threads),
            "-T",
            str(seconds),
            *common,
            database.name,
        ],
        env=env,
    )
    return parse_pgbench(output, clients=clients, threads=threads, seconds=seconds, scale=scale)


def parse_pgbench(
    output: str, *, clients: int, threads: int, seconds: int, scale: int
) -> PgbenchResult:
    """The numbers of pgbench's report (TPS without the initial connection time)."""
    tps = re.search(r"^tps = ([0-9.]+)", output, re.MULTILINE)
    done = re.search(r"number of transactions actually processed: (\d+)", output)
    latency = re.search(r"latency average = ([0-9.]+) ms", output)
    if tps is None or done is None:
        raise PostgresToolError(f"unexpected pgbench output:\n{output}")
    return PgbenchResult(
        clients=clients,
        threads=threads,
        seconds=seconds,
        scale=scale,
        transactions=int(done.group(1)),
        tps=float(tps.group(1)),
        latency_ms=float(latency.group(1)) if latency else None,
    )


async def commits(databases: Sequence[str] | None = None) -> dict[str, int]:
    """``pg_stat_database.xact_commit`` of each service database (cumulative counters).

    Read-only transactions count too: a commit is what PostgreSQL has to process,
    whatever it wrote. Counters are flushed by each backend at most once a second, so
    read them a couple of seconds after the work of interest.
    """
    names = list(databases or service_databases())
    connection = await asyncpg.connect(database_url(names[0]))
    try:
        # Outside a transaction snapshot: each read sees the latest flushed counters.
        rows = await connection.fetch(
            "SELECT datname, xact_commit FROM pg_stat_database WHERE datname = ANY($1::text[])",
            names,
        )
    finally:
        await connection.close()
    return {row["datname"]: int(row["xact_commit"]) for row in rows}


async def run_program(
    argv: Sequence[str],
    *,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> str:
    """Run a program to completion; its stdout, or ``PostgresToolError`` with stderr."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    out, err = await process.communicate(stdin.encode() if stdin is not None else None)
    if process.returncode != 0:
        raise PostgresToolError(
            f"{Path(argv[0]).name} {' '.join(argv[1:3])}… exited {process.returncode}: "
            f"{err.decode(errors='replace').strip()}"
        )
    # pgbench prints its report on stdout and progress on stderr: keep both.
    return out.decode(errors="replace") + err.decode(errors="replace")
