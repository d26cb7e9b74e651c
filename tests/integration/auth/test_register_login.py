"""Registration, login, the access token and the JWKS, through the HTTP API."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from handwritten.auth.settings import AuthSettings
from tests.integration.auth.conftest import (
    PASSWORD,
    assert_problem,
    login,
    register,
    token_pair,
    unique_email,
    verify_with_jwks,
)

pytestmark = pytest.mark.infra


async def test_register_returns_the_new_user(client: httpx.AsyncClient) -> None:
    email = unique_email("Ana.Mixed")
    response = await client.post(
        "/api/auth/register", json={"email": email, "password": PASSWORD, "name": "Ana Souza"}
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "email", "name", "createdAt"}
    assert uuid.UUID(body["id"])
    assert body["email"] == email.lower()
    assert body["name"] == "Ana Souza"
    assert PASSWORD not in response.text


async def test_duplicate_email_is_409_whatever_the_case(client: httpx.AsyncClient) -> None:
    email, _ = await register(client)
    response = await client.post(
        "/api/auth/register",
        json={"email": email.upper(), "password": "An0ther-Passw0rd", "name": "Other"},
    )
    body = assert_problem(response, 409)
    assert "already exists" in body["detail"]


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("alllowercaseletters", "must use at least 3 of"),
        ("Password123!", "is too common"),
        ("short1!A", "at least 10 characters"),
    ],
)
async def test_weak_password_is_422_with_field_messages(
    client: httpx.AsyncClient, password: str, message: str
) -> None:
    response = await client.post(
        "/api/auth/register",
        json={"email": unique_email(), "password": password, "name": "Ana"},
    )
    body = assert_problem(response, 422)
    assert [e["field"] for e in body["errors"]] == ["password"]
    assert message in body["errors"][0]["message"]


async def test_password_containing_the_email_name_is_422(client: httpx.AsyncClient) -> None:
    email = unique_email("carolina")
    local = email.split("@")[0]
    response = await client.post(
        "/api/auth/register",
        json={"email": email, "password": f"X1!{local.upper()}", "name": "Carolina"},
    )
    body = assert_problem(response, 422)
    assert body["errors"] == [
        {"field": "password", "message": "must not contain the part of the e-mail before the @"}
    ]


@pytest.mark.parametrize("email", ["not-an-email", "ana@", "ana@localhost", "a b@example.com"])
async def test_bad_email_is_422(client: httpx.AsyncClient, email: str) -> None:
    response = await client.post(
        "/api/auth/register", json={"email": email, "password": PASSWORD, "name": "Ana"}
    )
    body = assert_problem(response, 422)
    assert [e["field"] for e in body["errors"]] == ["email"]


async def test_extra_fields_are_422_so_roles_cannot_be_chosen(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/register",
        json={"email": unique_email(), "password": PASSWORD, "name": "Eve", "roles": ["admin"]},
    )
    body = assert_problem(response, 422)
    assert [e["field"] for e in body["errors"]] == ["roles"]


async def test_blank_name_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/register", json={"email": unique_email(), "password": PASSWORD, "name": "   "}
    )
    body = assert_problem(response, 422)
    assert [e["field"] for e in body["errors"]] == ["name"]


async def test_malformed_json_is_a_problem_not_a_500(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/auth/register", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 422)
    assert_problem(response, response.status_code)


async def test_login_returns_a_bearer_token_pair(
    client: httpx.AsyncClient, settings: AuthSettings
) -> None:
    email, user = await register(client)
    before = int(time.time())
    response = await login(client, email.upper())  # e-mails are case-insensitive
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    pair = response.json()
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert pair["token_type"] == "Bearer"
    assert pair["expires_in"] == 900
    assert len(pair["refresh_token"]) >= 43 and "." not in pair["refresh_token"]

    claims = await verify_with_jwks(client, pair["access_token"], settings)
    assert claims["iss"] == "microcommerce-auth"
    assert claims["aud"] == "microcommerce"
    assert claims["sub"] == user["id"]
    assert claims["roles"] == ["customer"]
    assert claims["nbf"] == claims["iat"]
    assert claims["exp"] - claims["iat"] == 900
    assert before - 1 <= claims["iat"] <= int(time.time()) + 1
    assert uuid.UUID(hex=claims["jti"])


async def test_every_login_gets_its_own_jti_and_refresh_token(client: httpx.AsyncClient) -> None:
    email, _ = await register(client)
    first, second = (await login(client, email)).json(), (await login(client, email)).json()
    assert first["refresh_token"] != second["refresh_token"]
    assert first["access_token"] != second["access_token"]


async def test_jwks_publishes_public_rsa_keys_only(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=60"
    keys = response.json()["keys"]
    assert 1 <= len(keys) <= 10
    for key in keys:
        assert set(key) == {"kty", "kid", "use", "alg", "n", "e"}
        assert (key["kty"], key["use"], key["alg"], key["e"]) == ("RSA", "sig", "RS256", "AQAB")
    assert len({key["kid"] for key in keys}) == len(keys)


async def test_wrong_password_and_unknown_email_answer_the_same_401(
    client: httpx.AsyncClient,
) -> None:
    email, _ = await register(client)
    wrong = await login(client, email, "Wrong-Passw0rd!")
    unknown = await login(client, unique_email("nobody"), "Wrong-Passw0rd!")
    assert_problem(wrong, 401)
    assert_problem(unknown, 401)
    assert wrong.json() == unknown.json()
    assert "www-authenticate" not in wrong.headers


async def test_login_with_an_empty_password_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/auth/login", json={"email": unique_email(), "password": ""})
    assert_problem(response, 422)


async def test_readiness_checks_postgres_redis_and_kafka(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ok",
        "checks": {"kafka": "ok", "postgres": "ok", "redis": "ok"},
    }


async def test_token_pair_helper_users_log_in(client: httpx.AsyncClient) -> None:
    _, pair = await token_pair(client)
    me = await client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"}
    )
    assert me.status_code == 200
