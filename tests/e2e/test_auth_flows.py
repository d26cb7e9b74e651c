"""Register → login → refresh → logout through the gateway, on the real stack."""

from __future__ import annotations

import uuid

import httpx
import jwt

from tests.e2e.conftest import LOG_DIR, PASSWORD, Account, wait_for


async def test_register_returns_the_user_without_secrets(gateway: httpx.AsyncClient) -> None:
    email = f"e2e-{uuid.uuid4().hex[:12]}@Example.com"
    response = await gateway.post(
        "/api/auth/register", json={"email": email, "password": PASSWORD, "name": "Ana"}
    )
    assert response.status_code == 201
    body = response.json()
    assert body["email"] == email.lower()
    assert body["name"] == "Ana"
    assert uuid.UUID(body["id"])
    assert "password" not in response.text.lower()


async def test_duplicate_email_is_409(gateway: httpx.AsyncClient, account: Account) -> None:
    response = await gateway.post(
        "/api/auth/register", json={"email": account.email, "password": PASSWORD, "name": "Again"}
    )
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_weak_password_and_bad_email_are_422_with_field_messages(
    gateway: httpx.AsyncClient,
) -> None:
    weak = await gateway.post(
        "/api/auth/register",
        json={
            "email": f"w-{uuid.uuid4().hex[:8]}@example.com",
            "password": "aaaaaaaaaa",
            "name": "W",
        },
    )
    assert weak.status_code == 422
    assert any(error["field"] == "password" for error in weak.json()["errors"])
    bad = await gateway.post(
        "/api/auth/register", json={"email": "not-an-email", "password": PASSWORD, "name": "B"}
    )
    assert bad.status_code == 422
    assert any(error["field"] == "email" for error in bad.json()["errors"])


async def test_login_returns_an_rs256_token_pair(
    gateway: httpx.AsyncClient, account: Account
) -> None:
    tokens = account.tokens
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 900
    header = jwt.get_unverified_header(tokens["access_token"])
    assert header["alg"] == "RS256"
    jwks = (await gateway.get("/.well-known/jwks.json")).json()
    assert header["kid"] in {key["kid"] for key in jwks["keys"]}
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["sub"] == account.id
    assert {"iss", "aud", "sub", "exp", "iat", "nbf", "jti", "roles"} <= set(claims)
    assert claims["exp"] - claims["iat"] == 900


async def test_wrong_password_is_401(gateway: httpx.AsyncClient, account: Account) -> None:
    response = await gateway.post(
        "/api/auth/login", json={"email": account.email, "password": "Wrong-Passw0rd!"}
    )
    assert response.status_code == 401


async def test_services_verify_the_token_themselves(
    gateway: httpx.AsyncClient, account: Account
) -> None:
    me = await gateway.get("/api/auth/me", headers=account.bearer)
    assert me.status_code == 200
    assert me.json()["id"] == account.id
    # A spoofed X-User-ID changes nothing: identity comes from the verified token only.
    spoofed = await gateway.get(
        "/api/auth/me", headers={**account.bearer, "X-User-ID": str(uuid.uuid4())}
    )
    assert spoofed.json()["id"] == account.id
    anonymous = await gateway.get("/api/auth/me")
    assert anonymous.status_code == 401


async def test_refresh_rotates_and_reuse_revokes_the_family(
    gateway: httpx.AsyncClient, account: Account
) -> None:
    first = account.tokens["refresh_token"]
    rotated = await gateway.post("/api/auth/refresh", json={"refresh_token": first})
    assert rotated.status_code == 200
    second = rotated.json()["refresh_token"]
    assert second != first
    reuse = await gateway.post("/api/auth/refresh", json={"refresh_token": first})
    assert reuse.status_code == 401
    # Theft detected: the whole family is revoked, the latest token included.
    after = await gateway.post("/api/auth/refresh", json={"refresh_token": second})
    assert after.status_code == 401


async def test_logout_revokes_the_refresh_token(
    gateway: httpx.AsyncClient, account: Account
) -> None:
    token = account.tokens["refresh_token"]
    assert (
        await gateway.post("/api/auth/logout", json={"refresh_token": token})
    ).status_code == 204
    assert (
        await gateway.post("/api/auth/refresh", json={"refresh_token": token})
    ).status_code == 401


async def test_correlation_id_is_echoed_and_logged_by_the_service(
    gateway: httpx.AsyncClient, account: Account
) -> None:
    correlation = f"e2e-{uuid.uuid4()}"
    response = await gateway.get(
        "/api/auth/me", headers={**account.bearer, "X-Correlation-ID": correlation}
    )
    assert response.headers["x-correlation-id"] == correlation
    log = LOG_DIR / "auth.log"

    async def logged() -> bool:
        return log.exists() and correlation in log.read_text(errors="replace")

    await wait_for(logged, seconds=10, what="the correlation id in the auth log")


async def test_absent_correlation_id_is_generated(gateway: httpx.AsyncClient) -> None:
    response = await gateway.get("/.well-known/jwks.json")
    assert uuid.UUID(response.headers["x-correlation-id"])
