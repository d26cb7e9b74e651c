"""Where the local stack listens, read from the same sources the stack is run from.

``infrastructure/local/stack.json`` (PostgreSQL, Redis, Kafka) and the generated
catalog (service ports). ``GATEWAY_URL``, ``KAFKA_BOOTSTRAP_SERVERS`` and
``MC_LOCAL_DIR`` override the defaults as they do for the test suites.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from generated import catalog

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCAL_DIR = Path(os.environ.get("MC_LOCAL_DIR", REPO_ROOT / ".local"))
#: Per-run scratch of the benchmarks (user cache, generated stubs, quick results).
SCRATCH_DIR = LOCAL_DIR / "bench"
HOST = "127.0.0.1"


@cache
def stack() -> dict[str, Any]:
    """The parsed ``stack.json`` (generated from the catalog and AsyncAPI)."""
    data: dict[str, Any] = json.loads(
        (REPO_ROOT / "infrastructure/local/stack.json").read_text(encoding="utf-8")
    )
    return data


def gateway_url() -> str:
    return os.environ.get("GATEWAY_URL", f"http://{HOST}:{catalog.GATEWAY_PORT}")


def service_url(name: str) -> str:
    """The HTTP base URL of one service, bypassing the gateway."""
    return f"http://{HOST}:{catalog.SERVICES[name].http_port}"


def grpc_port(name: str) -> int:
    port = catalog.SERVICES[name].grpc_port
    if port is None:
        raise ValueError(f"{name} serves no gRPC")
    return port


def kafka_bootstrap() -> str:
    kafka = stack()["kafka"]
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", f"{kafka['host']}:{kafka['port']}")


def redis_url() -> str:
    redis = stack()["redis"]
    return f"redis://{redis['host']}:{redis['port']}/0"


def postgres_address() -> tuple[str, int]:
    postgres = stack()["postgres"]
    return str(postgres["host"]), int(postgres["port"])


def service_databases() -> list[str]:
    """The service databases of the stack (one per service that has one)."""
    return [str(db["name"]) for db in stack()["postgres"]["databases"]]


def database_url(name: str) -> str:
    """The URL of a service database with that service's own role."""
    host, port = postgres_address()
    for db in stack()["postgres"]["databases"]:
        if db["name"] == name:
            user, password = quote(db["user"], safe=""), quote(db["password"], safe="")
            return f"postgresql://{user}:{password}@{host}:{port}/{name}"
    raise KeyError(f"no database {name!r} in stack.json")


def local_pid(path: Path) -> int | None:
    """The pid in a pid file, or ``None`` when it is missing or unreadable."""
    try:
        text = path.read_text(encoding="utf-8").split()
    except OSError:
        return None
    return int(text[0]) if text and text[0].isdigit() else None


async def not_ready() -> list[str]:
    """The services (and the gateway) that do not answer ready right now."""
    urls = {name: f"{service_url(name)}/health/ready" for name in catalog.SERVICES}
    urls["gateway"] = f"{gateway_url()}/.well-known/jwks.json"
    down = []
    async with httpx.AsyncClient(timeout=5) as client:
        for name, url in urls.items():
            try:
                if (await client.get(url)).status_code != 200:
                    down.append(name)
            except httpx.HTTPError:
                down.append(name)
    return down


async def wait_for_stack(seconds: float) -> list[str]:
    """Wait up to ``seconds`` for every process to be ready (one may be restarting);
    the ones still not ready then (empty: all good)."""
    deadline = time.monotonic() + seconds
    down = await not_ready()
    while down and time.monotonic() < deadline:
        await asyncio.sleep(2.0)
        down = await not_ready()
    return down
