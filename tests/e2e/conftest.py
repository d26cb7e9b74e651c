"""End-to-end tests: everything through the gateway of the running local stack.

`make test` starts the stack (`make up`) first; GATEWAY_URL points elsewhere.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from generated import catalog

GATEWAY_URL = os.environ.get("GATEWAY_URL", "http://127.0.0.1:8000")
REPO_ROOT = Path(__file__).resolve().parents[2]
LOG_DIR = Path(os.environ.get("MC_LOCAL_DIR", REPO_ROOT / ".local")) / "logs"
PASSWORD = "Sturdy-Passw0rd!"


async def wait_for(
    condition: Callable[[], Awaitable[bool]], *, seconds: float = 30, what: str = "condition"
) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.fixture(scope="session")
async def gateway() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=GATEWAY_URL, timeout=10) as client:

        async def jwks_served() -> bool:
            try:
                return (await client.get("/.well-known/jwks.json")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_for(jwks_served, what=f"the gateway at {GATEWAY_URL}")
        yield client


@dataclass
class Account:
    """A registered user and its current token pair."""

    id: str
    email: str
    password: str
    tokens: dict[str, Any]

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['access_token']}"}


async def register_and_login(client: httpx.AsyncClient) -> Account:
    email = f"e2e-{uuid.uuid4().hex[:12]}@example.com"
    created = await client.post(
        "/api/auth/register", json={"email": email, "password": PASSWORD, "name": "E2E User"}
    )
    assert created.status_code == 201, created.text
    login = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return Account(created.json()["id"], email, PASSWORD, login.json())


@pytest.fixture
async def account(gateway: httpx.AsyncClient) -> Account:
    return await register_and_login(gateway)


@pytest.fixture(scope="session")
async def admin(gateway: httpx.AsyncClient) -> Account:
    """The seeded admin account (catalog defaults unless ADMIN_* are set)."""
    defaults = {v.name: v.default for v in catalog.SERVICES["auth"].env}
    email = os.environ.get("ADMIN_EMAIL", defaults["ADMIN_EMAIL"])
    password = os.environ.get("ADMIN_PASSWORD", defaults["ADMIN_PASSWORD"])
    login = await gateway.post("/api/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    me = await gateway.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
    )
    return Account(me.json()["id"], email, password, login.json())
