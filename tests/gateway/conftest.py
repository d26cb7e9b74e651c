"""The gateway conformance suite: one set of tests for any gateway enforcing kong.yml.

Default run: this conftest starts our gateway (``python -m handwritten.gateway``) as a
subprocess on free ports with the generated ``infrastructure/gateway/kong.yml``, a JWKS
server holding the suite's test key, and every Kong service pointed at an echo upstream
that records what it receives. It needs Redis (``make infra-up``) for rate limiting.

Against another gateway (e.g. real Kong under docker compose):

- ``GATEWAY_URL``: the gateway's proxy URL (``http://127.0.0.1:8000``);
- ``GATEWAY_TEST_JWKS_PORT``: the port of the suite's JWKS server, bound on all
  interfaces; point the JWKS sync job at it
  (``JWKS_URL=http://host.docker.internal:<port>/.well-known/jwks.json`` for
  ``kong-jwks-sync``) so Kong gets the suite's key;
- ``GATEWAY_ECHO_URL``: optional, the echo upstream the gateway's services point at
  (``python -m tests.gateway.echo_server``). Without it, only the tests that must see
  what the upstream received are skipped;
- ``GATEWAY_TEST_KEY_SYNC_SECONDS``: how long a new JWKS key may take to be accepted
  (default 30: the sync job checks every 10 s).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.gateway.support import (
    ECHO_PREFIX,
    EchoApp,
    JwksApp,
    TestKeys,
    ThreadedServer,
    claims,
    free_port,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
KONG_YML = ROOT / "infrastructure" / "gateway" / "kong.yml"
KEY_SYNC_SECONDS = float(os.environ.get("GATEWAY_TEST_KEY_SYNC_SECONDS", "30"))


@dataclass(frozen=True)
class Echo:
    """Reads what the echo upstream received (over HTTP, wherever it runs)."""

    url: str

    def requests(self, probe: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}{ECHO_PREFIX}/requests", params={"probe": probe})
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()["requests"]
        return found


@dataclass(frozen=True)
class GatewayUnderTest:
    url: str
    #: The echo upstream behind every service, when there is one.
    echo: Echo | None
    #: True when this conftest started the gateway (ours, known configuration).
    ours: bool


@pytest.fixture(scope="session")
def test_keys() -> TestKeys:
    return TestKeys()


@pytest.fixture(scope="session")
def jwks(test_keys: TestKeys) -> Iterator[tuple[JwksApp, ThreadedServer]]:
    app = JwksApp(test_keys)
    external = bool(os.environ.get("GATEWAY_URL"))
    port = int(os.environ.get("GATEWAY_TEST_JWKS_PORT", "0"))
    # An external gateway (in containers) must reach it: all interfaces then.
    host = "0.0.0.0" if external else "127.0.0.1"
    server = ThreadedServer(app, host=host, port=port).start()
    yield app, server
    server.stop()


@pytest.fixture(scope="session")
def gateway(
    jwks: tuple[JwksApp, ThreadedServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayUnderTest]:
    external = os.environ.get("GATEWAY_URL")
    if external:
        echo_url = os.environ.get("GATEWAY_ECHO_URL")
        yield GatewayUnderTest(
            external.rstrip("/"), Echo(echo_url.rstrip("/")) if echo_url else None, ours=False
        )
        return
    echo_server = ThreadedServer(EchoApp()).start()
    services = [s["name"] for s in yaml.safe_load(KONG_YML.read_text())["services"]]
    port, status_port = free_port(), free_port()
    env = {
        **os.environ,
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "GATEWAY_STATUS_PORT": str(status_port),
        "KONG_CONFIG": str(KONG_YML),
        "JWKS_URL": f"{jwks[1].url}/.well-known/jwks.json",
        # A rotated-in key must be accepted on its first use.
        "JWKS_MIN_REFETCH_SECONDS": "0",
        "GATEWAY_UPSTREAM_OVERRIDES": ",".join(f"{s}={echo_server.url}" for s in services),
        "LOG_LEVEL": "WARNING",
    }
    log_path = tmp_path_factory.mktemp("gateway") / "gateway.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "handwritten.gateway"],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(
            lambda: _answers(f"http://127.0.0.1:{status_port}/status") or _exited(process),
            30,
            "the gateway's /status",
            interval=0.05,
        )
        if process.poll() is not None:
            pytest.fail(f"the gateway exited at startup:\n{log_path.read_text()}")
        yield GatewayUnderTest(f"http://127.0.0.1:{port}", Echo(echo_server.url), ours=True)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        echo_server.stop()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _exited(process: subprocess.Popen[bytes]) -> bool:
    return process.poll() is not None


@pytest.fixture(scope="session")
def client(gateway: GatewayUnderTest, test_keys: TestKeys) -> Iterator[httpx.Client]:
    """A keep-alive client on the gateway, once the gateway accepts the suite's key
    (immediately for ours; after the JWKS sync job ran for Kong)."""
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        token = test_keys.sign(claims("conformance-probe"))

        def accepted() -> bool:
            response = http.get("/api/shipping/orders/probe", headers=_bearer(token))
            return response.status_code != 401

        wait_for(accepted, KEY_SYNC_SECONDS, "the gateway to accept the suite's key", 0.5)
        yield http


@pytest.fixture
def echo(gateway: GatewayUnderTest) -> Echo:
    """The echo upstream; tests needing it skip only against an external gateway
    run without GATEWAY_ECHO_URL."""
    if gateway.echo is None:
        pytest.skip("GATEWAY_ECHO_URL is not set: cannot see what the upstream received")
    return gateway.echo


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def seconds_left_in_minute() -> float:
    return 60 - time.time() % 60
