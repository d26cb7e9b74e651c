"""Chaos scenarios drive the running local stack like the end-to-end suite, and break it.

Knobs (environment): CHAOS_ORDERS (orders per scenario, default 16) and
CHAOS_DURATION (seconds they are spread over, default 8; the load goes on at that pace
while a fault timeline lasts longer) keep `make test` short; `make chaos` raises both.
CHAOS_SAGA_BOUND_SECONDS (90) bounds every saga, CHAOS_PAYMENT_FAILURE_RATE the
payment scenario's rate. Routes of the chaos proxy listen on fixed local ports
(CHAOS_*_PORT) because the Kafka route must match the broker's advertised port.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from handwritten.chaos import ChaosControl
from tests.chaos import stack
from tests.e2e.conftest import GATEWAY_URL, Account, account, admin, register_and_login
from tests.e2e.saga_support import LOCAL_DIR, REPO_ROOT, poll

LOG_DIR = LOCAL_DIR / "logs"

__all__ = ["account", "admin"]

CHAOS_ORDERS = int(os.environ.get("CHAOS_ORDERS", "16"))
CHAOS_DURATION = float(os.environ.get("CHAOS_DURATION", "8"))
#: Every saga must be terminal this long after it started (payment timeout is 30 s).
CHAOS_SAGA_BOUND = float(os.environ.get("CHAOS_SAGA_BOUND_SECONDS", "90"))

CONTROL_PORT = int(os.environ.get("CHAOS_CONTROL_PORT", "18199"))
POSTGRES_PORT = int(os.environ.get("CHAOS_POSTGRES_PORT", "15432"))
REDIS_PORT = int(os.environ.get("CHAOS_REDIS_PORT", "16379"))
INVENTORY_GRPC_PORT = int(os.environ.get("CHAOS_INVENTORY_GRPC_PORT", "15053"))
#: infrastructure/local/kafka.sh: the broker's chaos listener and its advertised port.
KAFKA_CHAOS_PORT = int(os.environ.get("MC_KAFKA_CHAOS_PORT", "9094"))
KAFKA_PROXY_PORT = int(os.environ.get("MC_KAFKA_CHAOS_ADVERTISED_PORT", "19094"))
HOST = "127.0.0.1"


def spawn_proxy(arguments: list[str]) -> subprocess.Popen[bytes]:
    """``python -m handwritten.chaos <arguments>``, logging to .local/logs/chaos-proxy.log."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with (LOG_DIR / "chaos-proxy.log").open("ab") as log:
        return subprocess.Popen(  # our own interpreter and module
            [sys.executable, "-m", "handwritten.chaos", *arguments],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def stop_proxy(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (graceful: its connections are dropped), SIGKILL if it lingers."""
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(15)


@dataclass(frozen=True)
class Proxy:
    """The running chaos proxy: its control client and where each route listens."""

    control: ChaosControl
    postgres: str
    redis: str
    inventory_grpc: str
    kafka: str

    def database_url(self, database: str) -> str:
        return f"postgresql://{database}:{database}@{self.postgres}/{database}"


@pytest.fixture(scope="session")
async def gateway() -> AsyncIterator[httpx.AsyncClient]:
    """The gateway client (as in tests/e2e), patient: the local stack is shared and
    may be restarting when the chaos tests begin."""
    async with httpx.AsyncClient(base_url=GATEWAY_URL, timeout=10) as client:

        async def jwks_served() -> bool:
            try:
                return (await client.get("/.well-known/jwks.json")).status_code == 200
            except httpx.TransportError:
                return False

        await poll(jwks_served, seconds=stack.READY_SECONDS, what=f"the gateway at {GATEWAY_URL}")
        yield client


@pytest.fixture(scope="session")
async def chaos_stack(gateway: httpx.AsyncClient) -> AsyncIterator[None]:
    """The stack as the scenarios expect it: no service left rewired by a dead run."""
    repaired = await stack.restore_leftovers()
    if repaired:
        print(f"[chaos] restored services a previous run left rewired: {repaired}")
    yield
    repaired = await stack.restore_leftovers()
    assert not repaired, f"scenarios left services rewired: {repaired}"


@pytest.fixture
async def stack_ready(chaos_stack: None) -> None:
    """A scenario starts on a whole stack (the local stack is shared and others may be
    restarting it)."""
    await stack.wait_all_ready()


@pytest.fixture(scope="session")
async def proxy(chaos_stack: None) -> AsyncIterator[Proxy]:
    """One chaos proxy process (routes to PostgreSQL, Redis, inventory gRPC, Kafka)."""
    routes = {
        "postgres": (POSTGRES_PORT, 5432),
        "redis": (REDIS_PORT, 6379),
        "inventory-grpc": (INVENTORY_GRPC_PORT, 50053),
        "kafka": (KAFKA_PROXY_PORT, KAFKA_CHAOS_PORT),
    }
    for name, (port, _) in {**routes, "control": (CONTROL_PORT, 0)}.items():
        if stack.port_open(HOST, port):
            raise RuntimeError(f"port {port} for the chaos route {name} is taken")
    arguments = [f"--route={n}={HOST}:{p}={HOST}:{u}" for n, (p, u) in routes.items()]
    process = spawn_proxy(["--control", f"{HOST}:{CONTROL_PORT}", "proxy", *arguments])
    control = ChaosControl(f"http://{HOST}:{CONTROL_PORT}")
    try:
        await poll(control.healthy, seconds=30, what="the chaos proxy", interval=0.2)
        yield Proxy(
            control=control,
            postgres=f"{HOST}:{POSTGRES_PORT}",
            redis=f"{HOST}:{REDIS_PORT}",
            inventory_grpc=f"{HOST}:{INVENTORY_GRPC_PORT}",
            kafka=f"{HOST}:{KAFKA_PROXY_PORT}",
        )
    finally:
        await control.close()
        await asyncio.to_thread(stop_proxy, process)


@pytest.fixture
async def clear_faults(proxy: Proxy) -> AsyncIterator[Proxy]:
    """The proxy with no fault before the test, and none left after it, whatever happens."""
    await proxy.control.clear_all()
    try:
        yield proxy
    finally:
        await proxy.control.clear_all()


@pytest.fixture(scope="session")
async def shoppers(gateway: httpx.AsyncClient) -> list[Account]:
    """Accounts the scenarios order with (the gateway allows 100 order calls/min each)."""
    count = max(4, CHAOS_ORDERS * 60 // int(max(CHAOS_DURATION, 1.0)) // 40 + 1)
    return list(await asyncio.gather(*(register_and_login(gateway) for _ in range(count))))


@pytest.fixture(scope="session")
async def kafka_chaos_listener(chaos_stack: None) -> None:
    """The local broker with its chaos listener (kafka.sh). A broker started before the
    listener existed is restarted once, gracefully, to pick it up."""
    if stack.port_open(HOST, KAFKA_CHAOS_PORT):
        return
    print("[chaos] restarting the local broker once to add its chaos listener")
    await stack.kafka_down()
    await stack.kafka_up()
    assert stack.port_open(HOST, KAFKA_CHAOS_PORT), "the broker has no chaos listener"
