"""Refresh-token rotation, reuse detection (family revocation) and logout."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest

from handwritten.auth.domain.tokens import refresh_token_digest
from handwritten.auth.settings import AuthSettings
from tests.integration.auth.conftest import assert_problem, token_pair, verify_with_jwks

pytestmark = pytest.mark.infra


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/auth/refresh", json={"refresh_token": token})


async def family_rows(db: asyncpg.Connection, token: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await db.fetch(
        """
        SELECT id, parent_id, rotated_at, revoked_at, revoke_reason FROM refresh_tokens
        WHERE family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)
        ORDER BY created_at, rotated_at NULLS LAST
        """,
        refresh_token_digest(token),
    )
    return rows


async def test_refresh_rotates_and_reuse_revokes_the_family(
    client: httpx.AsyncClient, settings: AuthSettings, db: asyncpg.Connection
) -> None:
    _, first = await token_pair(client)
    response = await refresh(client, first["refresh_token"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    second = response.json()
    assert second["token_type"] == "Bearer" and second["expires_in"] == 900
    assert second["refresh_token"] != first["refresh_token"]
    old_claims = await verify_with_jwks(client, first["access_token"], settings)
    new_claims = await verify_with_jwks(client, second["access_token"], settings)
    assert new_claims["sub"] == old_claims["sub"]
    assert new_claims["jti"] != old_claims["jti"]

    # Only hashes are stored, chained parent -> child in one family.
    rows = await family_rows(db, second["refresh_token"])
    assert len(rows) == 2
    assert rows[0]["rotated_at"] is not None and rows[1]["parent_id"] == rows[0]["id"]
    stored = await db.fetchval(
        "SELECT count(*) FROM refresh_tokens WHERE token_hash = $1",
        second["refresh_token"].encode(),
    )
    assert stored == 0

    # The rotated token presented again: 401, and the whole family is revoked…
    assert_problem(await refresh(client, first["refresh_token"]), 401)
    rows = await family_rows(db, second["refresh_token"])
    assert all(row["revoked_at"] is not None for row in rows)
    assert {row["revoke_reason"] for row in rows} == {"reuse_detected"}
    # …so the newest token, never used, no longer works either.
    assert_problem(await refresh(client, second["refresh_token"]), 401)


async def test_a_chain_of_refreshes_keeps_working(client: httpx.AsyncClient) -> None:
    _, pair = await token_pair(client)
    for _ in range(3):
        response = await refresh(client, pair["refresh_token"])
        assert response.status_code == 200
        pair = response.json()


async def test_unknown_refresh_token_is_401(client: httpx.AsyncClient) -> None:
    body = assert_problem(await refresh(client, "x" * 43), 401)
    assert body["detail"] == "The refresh token is invalid, expired or revoked."


async def test_malformed_refresh_token_is_422(client: httpx.AsyncClient) -> None:
    assert_problem(await refresh(client, "not a token!"), 422)


async def test_expired_refresh_token_is_401(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    _, pair = await token_pair(client)
    await db.execute(
        "UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
        refresh_token_digest(pair["refresh_token"]),
    )
    assert_problem(await refresh(client, pair["refresh_token"]), 401)


async def test_logout_revokes_and_is_idempotent(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    _, pair = await token_pair(client)
    response = await client.post("/api/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert response.status_code == 204
    assert response.content == b""
    rows = await family_rows(db, pair["refresh_token"])
    assert [row["revoke_reason"] for row in rows] == ["logout"]
    assert_problem(await refresh(client, pair["refresh_token"]), 401)
    again = await client.post("/api/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert again.status_code == 204
    unknown = await client.post("/api/auth/logout", json={"refresh_token": "y" * 43})
    assert unknown.status_code == 204


async def test_logout_after_a_refresh_revokes_the_family(client: httpx.AsyncClient) -> None:
    _, first = await token_pair(client)
    second = (await refresh(client, first["refresh_token"])).json()
    response = await client.post(
        "/api/auth/logout", json={"refresh_token": second["refresh_token"]}
    )
    assert response.status_code == 204
    assert_problem(await refresh(client, second["refresh_token"]), 401)


async def test_concurrent_refreshes_with_one_token_let_exactly_one_through(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    _, pair = await token_pair(client)
    responses = await asyncio.gather(
        refresh(client, pair["refresh_token"]), refresh(client, pair["refresh_token"])
    )
    assert sorted(r.status_code for r in responses) == [200, 401]
    winner = next(r for r in responses if r.status_code == 200).json()
    loser = next(r for r in responses if r.status_code == 401)
    assert_problem(loser, 401)
    # The loser was a reuse of a rotated token: the family, the winner's new token
    # included, is revoked (documented: a client racing itself must log in again).
    rows = await family_rows(db, pair["refresh_token"])
    assert len(rows) == 2
    assert all(row["revoke_reason"] == "reuse_detected" for row in rows)
    assert_problem(await refresh(client, winner["refresh_token"]), 401)
