"""Bad tokens stop at the gateway (401, Kong's body) and never reach a service."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest

from tests.e2e import tokens
from tests.e2e.conftest import Account, register_and_login, wait_for

#: A JWT route whose upstream answers with problem+json (or is not running yet, 502):
#: a 401 with Kong's plain JSON body (``{"message": …}`` or ``{"exp": "token expired"}``)
#: can only come from the gateway.
PROTECTED = f"/api/shipping/orders/{uuid.uuid4()}"


@pytest.fixture(scope="module")
async def signing_key() -> tuple[str, Any]:
    return await tokens.auth_signing_key()


def _is_gateway_401(response: httpx.Response) -> bool:
    from_service = response.headers["content-type"].startswith("application/problem+json")
    return response.status_code == 401 and not from_service and bool(response.json())


Forge = Callable[[str, Any], str]
FORGERIES: dict[str, Forge] = {
    "alg-none": lambda kid, key: tokens.unsigned(tokens.claims(), "none", kid),
    "alg-None": lambda kid, key: tokens.unsigned(tokens.claims(), "None", kid),
    "alg-NONE": lambda kid, key: tokens.unsigned(tokens.claims(), "NONE", kid),
    "alg-nOnE": lambda kid, key: tokens.unsigned(tokens.claims(), "nOnE", kid),
    "hs256-with-public-key": lambda kid, key: tokens.hs256_with_public_key(
        tokens.claims(), key, kid
    ),
    "expired": lambda kid, key: tokens.sign(
        tokens.claims(
            iat=int(time.time()) - 3600, nbf=int(time.time()) - 3600, exp=int(time.time()) - 60
        ),
        key,
        kid,
    ),
    "not-yet-valid": lambda kid, key: tokens.sign(
        tokens.claims(nbf=int(time.time()) + 3600), key, kid
    ),
    "wrong-iss": lambda kid, key: tokens.sign(tokens.claims(iss="someone-else"), key, kid),
    "wrong-aud": lambda kid, key: tokens.sign(tokens.claims(aud="another-api"), key, kid),
    "tampered": lambda kid, key: tokens.tampered(
        tokens.sign(tokens.claims(), key, kid), roles=["admin"]
    ),
    "unknown-kid": lambda kid, key: tokens.sign(
        tokens.claims(), tokens.stranger_key(), f"unknown-{uuid.uuid4().hex[:8]}"
    ),
    "signed-by-stranger-with-real-kid": lambda kid, key: tokens.sign(
        tokens.claims(), tokens.stranger_key(), kid
    ),
    "malformed-one-part": lambda kid, key: "not-a-jwt",
    "malformed-garbage-parts": lambda kid, key: "abc.def.ghi",
    "malformed-bad-json": lambda kid, key: "eyJhbGciOi.eyJzdWIi.c2ln",
}


@pytest.mark.parametrize("case", sorted(FORGERIES))
async def test_forged_token_is_rejected_by_the_gateway(
    gateway: httpx.AsyncClient, signing_key: tuple[str, Any], case: str
) -> None:
    kid, key = signing_key
    token = FORGERIES[case](kid, key)
    response = await gateway.get(PROTECTED, headers={"Authorization": f"Bearer {token}"})
    assert _is_gateway_401(response), (response.status_code, response.text)


async def test_missing_token_is_rejected_by_the_gateway(gateway: httpx.AsyncClient) -> None:
    assert _is_gateway_401(await gateway.get(PROTECTED))


async def test_a_genuine_token_passes_the_gateway(
    gateway: httpx.AsyncClient, signing_key: tuple[str, Any], account: Account
) -> None:
    response = await gateway.get(PROTECTED, headers=account.bearer)
    assert response.status_code != 401, response.text
    kid, key = signing_key
    forged_but_valid = tokens.sign(tokens.claims(account.id), key, kid)
    response = await gateway.get(PROTECTED, headers={"Authorization": f"Bearer {forged_but_valid}"})
    assert response.status_code != 401


async def test_services_reject_bad_tokens_that_bypass_the_gateway_check(
    gateway: httpx.AsyncClient, signing_key: tuple[str, Any]
) -> None:
    """/api/auth is a public route at the gateway: the service checks tokens itself."""
    kid, key = signing_key
    for token in (
        tokens.sign(tokens.claims(aud="another-api"), key, kid),
        tokens.sign(tokens.claims(iss="someone-else"), key, kid),
        tokens.unsigned(tokens.claims(), "none", kid),
    ):
        response = await gateway.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")


async def test_a_token_from_before_a_key_rotation_stays_valid(
    gateway: httpx.AsyncClient, account: Account
) -> None:
    old_kid = jwt.get_unverified_header(account.tokens["access_token"])["kid"]
    rotate = await _run_rotate_keys()
    assert rotate == 0

    async def login_uses_a_new_kid() -> bool:
        login = await gateway.post(
            "/api/auth/login", json={"email": account.email, "password": account.password}
        )
        new_token = login.json()["access_token"]
        return jwt.get_unverified_header(new_token)["kid"] != old_kid

    await wait_for(login_uses_a_new_kid, seconds=20, what="tokens signed with the new key")
    fresh = await register_and_login(gateway)
    assert jwt.get_unverified_header(fresh.tokens["access_token"])["kid"] != old_kid
    for bearer in (account.bearer, fresh.bearer):
        assert (await gateway.get("/api/auth/me", headers=bearer)).status_code == 200
        assert (await gateway.get(PROTECTED, headers=bearer)).status_code != 401
    kids = {key["kid"] for key in (await gateway.get("/.well-known/jwks.json")).json()["keys"]}
    assert old_kid in kids


async def _run_rotate_keys() -> int:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "handwritten.auth", "rotate-keys"
    )
    return await process.wait()
