"""The seeded admin account, and GET /api/auth/me verifying bearer tokens itself."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from handwritten.auth.app import AuthRuntime
from handwritten.auth.settings import AuthSettings
from tests.integration.auth.conftest import (
    assert_problem,
    login,
    register,
    token_pair,
    unique_email,
    verify_with_jwks,
)

pytestmark = pytest.mark.infra


async def test_admin_is_seeded_with_the_admin_role(
    client: httpx.AsyncClient, settings: AuthSettings, db: asyncpg.Connection
) -> None:
    row = await db.fetchrow("SELECT roles FROM users WHERE email = $1", settings.admin_email)
    assert row is not None and "admin" in row["roles"]
    response = await login(client, settings.admin_email, settings.admin_password.get_secret_value())
    assert response.status_code == 200, response.text
    claims = await verify_with_jwks(client, response.json()["access_token"], settings)
    assert claims["roles"] == ["admin", "customer"]
    me = await client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
    )
    assert me.json()["email"] == "admin@microcommerce.local"
    assert "admin" in me.json()["roles"]


async def test_seeding_again_is_harmless(
    runtime: AuthRuntime, settings: AuthSettings, db: asyncpg.Connection
) -> None:
    assert runtime.service is not None
    before = await db.fetchrow(
        "SELECT id, password_hash FROM users WHERE email = $1", settings.admin_email
    )
    created = await runtime.service.seed_admin(
        email=settings.admin_email.upper(), password="Some-0ther-Passw0rd", name="Someone"
    )
    assert created is False
    after = await db.fetch(
        "SELECT id, password_hash FROM users WHERE email = $1", settings.admin_email
    )
    assert [tuple(r) for r in after] == [tuple(before)]


async def test_concurrent_seeding_creates_one_account(
    runtime: AuthRuntime, db: asyncpg.Connection
) -> None:
    assert runtime.service is not None
    email = unique_email("admin")
    results = await asyncio.gather(
        *(
            runtime.service.seed_admin(email=email, password="Adm1n-Passw0rd!", name="Admin")
            for _ in range(3)
        )
    )
    assert sorted(results) == [False, False, True]
    assert await db.fetchval("SELECT count(*) FROM users WHERE email = $1", email) == 1


async def test_seeding_never_promotes_an_existing_account(
    client: httpx.AsyncClient, runtime: AuthRuntime, db: asyncpg.Connection
) -> None:
    assert runtime.service is not None
    email, _ = await register(client)
    assert (
        await runtime.service.seed_admin(email=email, password="Adm1n-Passw0rd!", name="x") is False
    )
    assert await db.fetchval("SELECT roles FROM users WHERE email = $1", email) == ["customer"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_me_returns_the_token_owner(client: httpx.AsyncClient) -> None:
    email, user = await register(client)
    pair = (await login(client, email)).json()
    response = await client.get("/api/auth/me", headers=bearer(pair["access_token"]))
    assert response.status_code == 200
    assert response.json() == {
        "id": user["id"],
        "email": email,
        "name": "Ana Souza",
        "roles": ["customer"],
    }


def claims_for(user_id: str, settings: AuthSettings, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": user_id,
        "iat": now,
        "nbf": now,
        "exp": now + 900,
        "jti": uuid.uuid4().hex,
        "roles": ["customer", "admin"],
    }
    claims.update(changes)
    return claims


async def sign_with_current_key(runtime: AuthRuntime, claims: dict[str, Any]) -> str:
    assert runtime.keys is not None
    kid, private_key = await runtime.keys.signing_key()
    return jwt.encode(claims, private_key, algorithm="RS256", headers={"kid": kid})


async def test_me_rejects_bad_tokens(
    client: httpx.AsyncClient, runtime: AuthRuntime, settings: AuthSettings
) -> None:
    _, pair = await token_pair(client)
    user_id = jwt.decode(pair["access_token"], options={"verify_signature": False})["sub"]
    kid = jwt.get_unverified_header(pair["access_token"])["kid"]
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    header, payload, signature = pair["access_token"].split(".")
    bad_tokens = {
        # Signed by someone else's key under the real kid.
        "forged": jwt.encode(
            claims_for(user_id, settings), forger, algorithm="RS256", headers={"kid": kid}
        ),
        "tampered": f"{header}.{payload[:-4]}AAAA.{signature}",
        "wrong audience": await sign_with_current_key(
            runtime, claims_for(user_id, settings, aud="someone-else")
        ),
        "wrong issuer": await sign_with_current_key(
            runtime, claims_for(user_id, settings, iss="evil")
        ),
        "expired": await sign_with_current_key(
            runtime, claims_for(user_id, settings, iat=now - 1000, nbf=now - 1000, exp=now - 60)
        ),
        "not yet valid": await sign_with_current_key(
            runtime, claims_for(user_id, settings, nbf=now + 600)
        ),
        "unknown kid": jwt.encode(
            claims_for(user_id, settings), forger, algorithm="RS256", headers={"kid": "nope"}
        ),
        "alg none": jwt.encode(claims_for(user_id, settings), "", algorithm="none"),
        "garbage": "not-a-jwt",
    }
    for name, token in bad_tokens.items():
        response = await client.get("/api/auth/me", headers=bearer(token))
        body = assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer"), name
        assert body["detail"] == "A valid bearer token is required.", name


async def test_me_for_a_deleted_user_is_401(
    client: httpx.AsyncClient, runtime: AuthRuntime, settings: AuthSettings
) -> None:
    token = await sign_with_current_key(runtime, claims_for(str(uuid.uuid4()), settings))
    assert_problem(await client.get("/api/auth/me", headers=bearer(token)), 401)


async def test_me_without_authorization_is_401_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/auth/me")
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == 'Bearer realm="microcommerce"'
    basic = await client.get("/api/auth/me", headers={"Authorization": "Basic YTpi"})
    assert_problem(basic, 401)
