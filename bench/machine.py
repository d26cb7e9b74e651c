"""What machine and software a benchmark ran on: printed and stored with every result.

Numbers from one machine mean little without it: CPU model and cores, memory,
kernel and OS, Python, the PostgreSQL, Redis and Kafka versions of the stack, the
git commit (and whether the tree had local changes), and the load average when the
run started (a busy machine shows there, not in the numbers).
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bench.stack import LOCAL_DIR, REPO_ROOT, database_url, redis_url


def cpu_model(cpuinfo: str) -> str:
    """The first ``model name`` of ``/proc/cpuinfo`` text (``unknown`` without one)."""
    match = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    return match.group(1).strip() if match else "unknown"


def memory_gib(meminfo: str) -> float | None:
    """``MemTotal`` of ``/proc/meminfo`` text, in GiB."""
    match = re.search(r"^MemTotal:\s+(\d+) kB", meminfo, re.MULTILINE)
    return round(int(match.group(1)) / 1024 / 1024, 1) if match else None


def os_name(os_release: str) -> str:
    match = re.search(r'^PRETTY_NAME="?([^"\n]+)"?', os_release, re.MULTILINE)
    return match.group(1) if match else platform.system()


def kafka_version(libs: Path) -> str | None:
    """The version of the ``kafka_2.13-X.jar`` the local broker runs from."""
    for jar in sorted(libs.glob("kafka_*.jar")):
        match = re.match(r"kafka_[0-9.]+-(.+)\.jar$", jar.name)
        if match:
            return match.group(1)
    return None


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def git_commit() -> dict[str, Any]:
    """HEAD and whether tracked files differ from it (the numbers may not be HEAD's)."""
    try:
        head = _git("rev-parse", "--short=12", "HEAD")
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": head, "dirty": dirty}


def _git(*args: str) -> str:
    result = subprocess.run(  # noqa: S603 - fixed git arguments, no shell
        ["git", *args],  # noqa: S607 - git from PATH, as a developer runs it
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return result.stdout.strip()


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return ""


async def machine_info() -> dict[str, Any]:
    """Everything above, as one JSON-ready dict (services that do not answer: ``None``)."""
    info: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu": cpu_model(_read("/proc/cpuinfo")),
        "cores": os.cpu_count(),
        "memory_gib": memory_gib(_read("/proc/meminfo")),
        "kernel": platform.release(),
        "os": os_name(_read("/etc/os-release")),
        "python": platform.python_version(),
        "postgresql": await _postgres_version(),
        "redis": await _redis_version(),
        "kafka": kafka_version(LOCAL_DIR / "kafka" / "libs"),
        "load_average": load_average(),
    }
    info.update(git_commit())
    return info


async def _postgres_version() -> str | None:
    try:
        connection = await asyncpg.connect(database_url("orders"), timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        version: str = await connection.fetchval("SHOW server_version")
        return version
    finally:
        await connection.close()


async def _redis_version() -> str | None:
    client = Redis.from_url(redis_url(), socket_timeout=5, socket_connect_timeout=5)
    try:
        server = await client.info("server")
        return str(server.get("redis_version"))
    except (OSError, RedisError):
        return None
    finally:
        await client.aclose()


def describe(info: dict[str, Any]) -> str:
    """One line for the console and the summary's header."""
    dirty = " (with local changes)" if info.get("dirty") else ""
    return (
        f"{info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, {info['os']},"
        f" kernel {info['kernel']}, Python {info['python']}, PostgreSQL {info['postgresql']},"
        f" Redis {info['redis']}, Kafka {info['kafka']}; commit {info['commit']}{dirty};"
        f" load average at start {info['load_average']}"
    )
