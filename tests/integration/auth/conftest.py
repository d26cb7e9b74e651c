"""The auth app in-process (httpx ASGITransport + its lifespan) against the real
``auth`` PostgreSQL database and Redis of the local infrastructure."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from fastapi import FastAPI

from handwritten.auth.app import AuthRuntime, build_app
from handwritten.auth.settings import AuthSettings

#: Cheap argon2 (the production default is t=3, 64 MiB, p=4) and no key caching,
#: so a rotation done by another process is seen at once.
FAST: dict[str, Any] = {
    "argon2_time_cost": 1,
    "argon2_memory_cost_kib": 1024,
    "argon2_parallelism": 1,
    "key_cache_seconds": 0.0,
    # The in-process client's peer address plays the gateway: its X-Forwarded-For
    # (each test's own client address) is believed.
    "trusted_proxies": "192.0.2.10/32",
}
PASSWORD = "Tr0ub4dor&3x-42"
PROBLEM_JSON = "application/problem+json"
REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat", "nbf", "jti"]


def make_settings(**overrides: Any) -> AuthSettings:
    return AuthSettings(**{**FAST, **overrides})


@asynccontextmanager
async def running(settings: AuthSettings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Start the app (its lifespan: pool, migrations, keys, admin seed) and a client."""
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("192.0.2.10", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://auth.test") as client:
            yield app, client


@pytest.fixture(scope="session")
def settings() -> AuthSettings:
    return make_settings()


@pytest.fixture(scope="session")
async def app_and_client(
    settings: AuthSettings,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with running(settings) as started:
        yield started


@pytest.fixture(scope="session")
def app(app_and_client: tuple[FastAPI, httpx.AsyncClient]) -> FastAPI:
    return app_and_client[0]


@pytest.fixture(scope="session")
def client(app_and_client: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return app_and_client[1]


@pytest.fixture(scope="session")
def runtime(app: FastAPI) -> AuthRuntime:
    value: AuthRuntime = app.state.auth
    return value


@pytest.fixture
async def db(settings: AuthSettings) -> AsyncIterator[asyncpg.Connection]:
    assert settings.database_url
    connection = await asyncpg.connect(settings.database_url)
    try:
        yield connection
    finally:
        await connection.close()


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


def unique_ip() -> str:
    """A client address of its own per test, so throttle counters never collide."""
    raw = uuid.uuid4().bytes
    return f"10.{raw[0]}.{raw[1]}.{max(raw[2], 1)}"


async def register(
    client: httpx.AsyncClient, email: str | None = None, password: str = PASSWORD
) -> tuple[str, dict[str, Any]]:
    email = email or unique_email()
    response = await client.post(
        "/api/auth/register", json={"email": email, "password": password, "name": "Ana Souza"}
    )
    assert response.status_code == 201, response.text
    return email, response.json()


async def login(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, *, ip: str | None = None
) -> httpx.Response:
    return await client.post(
        "/api/auth/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": ip or unique_ip()},
    )


async def token_pair(client: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    """A registered user's e-mail and a fresh token pair."""
    email, _ = await register(client)
    response = await login(client, email)
    assert response.status_code == 200, response.text
    return email, response.json()


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """A problem+json answer with ``status``, and never a stack trace."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert "Traceback" not in response.text and 'File "' not in response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body


async def verify_with_jwks(
    client: httpx.AsyncClient, token: str, settings: AuthSettings
) -> dict[str, Any]:
    """Verify ``token`` as any other service would: pyjwt, RS256, the served JWKS."""
    jwks = (await client.get("/.well-known/jwks.json")).json()
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    matching = [entry for entry in jwks["keys"] if entry["kid"] == header["kid"]]
    assert len(matching) == 1, f"kid {header['kid']} is not published"
    claims: dict[str, Any] = jwt.decode(
        token,
        jwt.PyJWK(matching[0]).key,
        algorithms=["RS256"],
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        options={"require": REQUIRED_CLAIMS},
    )
    return claims
