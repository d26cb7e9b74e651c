"""Token attacks the e2e suite does not cover: header-supplied keys, kid injection,
tokens after logout, and password guessing through the gateway.

Each forged token is tried at the gateway *and* at every service directly (each
service verifies tokens itself, so a misrouted or internal request is no way in).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from jwt.algorithms import RSAAlgorithm

from handwritten.auth.settings import AuthSettings
from tests.e2e import tokens
from tests.e2e.conftest import PASSWORD, Account, register_and_login
from tests.security.support import (
    SERVICE_PROTECTED_ROUTES,
    client_from,
    is_problem,
    own_loopback_address,
    service_url,
)

PROTECTED = f"/api/shipping/orders/{uuid.uuid4()}"
WRONG = "Wrong-Passw0rd!"


@pytest.fixture(scope="module")
async def signing_key() -> tuple[str, Any]:
    return await tokens.auth_signing_key()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _with_header(payload: dict[str, Any], key: Any, header: dict[str, Any]) -> str:
    """RS256 over ``payload`` with exactly ``header`` (any JSON types in it)."""
    head = _b64(json.dumps({"alg": "RS256", "typ": "JWT", **header}).encode())
    body = _b64(json.dumps(payload).encode())
    signature = jwt.get_algorithm_by_name("RS256").sign(f"{head}.{body}".encode(), key)
    return f"{head}.{body}.{_b64(signature)}"


def _hs256(payload: dict[str, Any], secret: bytes, header: dict[str, Any]) -> str:
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", **header}).encode())
    body = _b64(json.dumps(payload).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(mac)}"


def _public_jwk(key: Any, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256"}


Forge = Callable[[str, Any], str]


def _admin_claims() -> dict[str, Any]:
    # Admin role: a forged token that got through would be worth the most.
    return tokens.claims(roles=["customer", "admin"])


def _embedded_jwk(kid: str, _: Any) -> str:
    attacker = tokens.stranger_key()
    return _with_header(_admin_claims(), attacker, {"kid": kid, "jwk": _public_jwk(attacker, kid)})


def _embedded_jwk_own_kid(_: str, __: Any) -> str:
    attacker = tokens.stranger_key()
    kid = f"attacker-{uuid.uuid4().hex[:8]}"
    return _with_header(_admin_claims(), attacker, {"kid": kid, "jwk": _public_jwk(attacker, kid)})


def _remote_key_header(name: str) -> Forge:
    def forge(kid: str, _: Any) -> str:
        attacker = tokens.stranger_key()
        return _with_header(_admin_claims(), attacker, {"kid": kid, name: "http://127.0.0.1:9/k"})

    return forge


def _kid(value: Any) -> Forge:
    def forge(_: str, __: Any) -> str:
        return _with_header(_admin_claims(), tokens.stranger_key(), {"kid": value})

    return forge


#: Keys or key locations the token itself names, and hostile ``kid`` values. None may
#: be honoured: keys come only from the auth service's JWKS, looked up by exact kid.
FORGERIES: dict[str, Forge] = {
    "embedded-jwk-with-real-kid": _embedded_jwk,
    "embedded-jwk-with-its-own-kid": _embedded_jwk_own_kid,
    "jku-header": _remote_key_header("jku"),
    "x5u-header": _remote_key_header("x5u"),
    "x5c-header": lambda kid, _: _with_header(
        _admin_claims(), tokens.stranger_key(), {"kid": kid, "x5c": ["MIIBIjANBgkqhkiG9w0B"]}
    ),
    "kid-path-traversal": _kid("../../../../../../dev/null"),
    # The classic /dev/null trick: HMAC with an empty key, hoping kid selects a file.
    "kid-dev-null-hs256-empty-key": lambda kid, _: _hs256(
        _admin_claims(), b"", {"kid": "../../../../../../dev/null"}
    ),
    "kid-sql-injection": _kid("' OR 1=1 --"),
    "kid-sql-union": _kid("x' UNION SELECT 'key' --"),
    "kid-very-long": _kid("k" * 4000),
    "kid-integer": _kid(1),
    "kid-list": _kid(["a", "b"]),
    "kid-object": _kid({"$ne": None}),
    "kid-null": _kid(None),
    "kid-empty": _kid(""),
    "kid-nul-byte": lambda kid, _: _with_header(
        _admin_claims(), tokens.stranger_key(), {"kid": kid + "\u0000"}
    ),
}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("case", sorted(FORGERIES))
async def test_header_keys_and_kid_injection_are_rejected_by_the_gateway(
    gateway: httpx.AsyncClient, signing_key: tuple[str, Any], case: str
) -> None:
    token = FORGERIES[case](*signing_key)
    for path in (PROTECTED, "/api/orders", "/api/payments/admin/faults"):
        response = await gateway.get(path, headers=_bearer(token))
        assert response.status_code == 401, (case, path, response.status_code, response.text)


@pytest.mark.parametrize("case", sorted(FORGERIES))
async def test_header_keys_and_kid_injection_are_rejected_by_every_service(
    signing_key: tuple[str, Any], case: str
) -> None:
    token = FORGERIES[case](*signing_key)
    for service, (method, path) in sorted(SERVICE_PROTECTED_ROUTES.items()):
        async with httpx.AsyncClient(base_url=service_url(service), timeout=10) as client:
            response = await client.request(method, path, headers=_bearer(token), json={})
        assert response.status_code == 401, (case, service, response.status_code, response.text)
        assert is_problem(response), (case, service, response.text)


async def test_a_genuine_token_passes_every_service(account: Account) -> None:
    """The control for the test above: the same routes do accept a real token."""
    for service, (method, path) in sorted(SERVICE_PROTECTED_ROUTES.items()):
        async with httpx.AsyncClient(base_url=service_url(service), timeout=10) as client:
            response = await client.request(method, path, headers=account.bearer, json={})
        assert response.status_code != 401, (service, response.text)


# -- logout and refresh reuse ------------------------------------------------------------


async def test_after_logout_no_refresh_token_of_the_session_works(
    gateway: httpx.AsyncClient, account: Account
) -> None:
    """Logout revokes the whole refresh family: the current token and every ancestor."""
    first = account.tokens["refresh_token"]
    rotated = await gateway.post("/api/auth/refresh", json={"refresh_token": first})
    assert rotated.status_code == 200
    current = rotated.json()["refresh_token"]
    # A second session of the same user must survive this session's logout.
    other = await gateway.post(
        "/api/auth/login", json={"email": account.email, "password": account.password}
    )
    assert other.status_code == 200

    assert (
        await gateway.post("/api/auth/logout", json={"refresh_token": current})
    ).status_code == 204
    for token in (current, first):
        again = await gateway.post("/api/auth/refresh", json={"refresh_token": token})
        assert again.status_code == 401, again.text
    # Logging out twice is harmless, and the other session still refreshes.
    assert (
        await gateway.post("/api/auth/logout", json={"refresh_token": current})
    ).status_code == 204
    survivor = await gateway.post(
        "/api/auth/refresh", json={"refresh_token": other.json()["refresh_token"]}
    )
    assert survivor.status_code == 200


async def test_access_tokens_are_stateless_and_short_lived(
    gateway: httpx.AsyncClient, account: Account
) -> None:
    """What holds after logout for the access token (DESIGN.md §4: a 900 s RS256 JWT).

    Access tokens are verified offline by the gateway and every service, so logout
    cannot recall one: it stays valid until it expires. The bound on that exposure
    is its lifetime, which must stay the documented 15 minutes.
    """
    access = account.tokens["access_token"]
    claims = jwt.decode(access, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == account.tokens["expires_in"] == 900
    logout = await gateway.post(
        "/api/auth/logout", json={"refresh_token": account.tokens["refresh_token"]}
    )
    assert logout.status_code == 204
    assert (await gateway.get("/api/auth/me", headers=account.bearer)).status_code == 200
    refresh = await gateway.post(
        "/api/auth/refresh", json={"refresh_token": account.tokens["refresh_token"]}
    )
    assert refresh.status_code == 401


# -- password guessing -------------------------------------------------------------------


async def _login(client: httpx.AsyncClient, email: str, password: str, **kw: Any) -> httpx.Response:
    return await client.post("/api/auth/login", json={"email": email, "password": password}, **kw)


async def test_brute_force_on_one_account_is_throttled_without_locking_others(
    gateway: httpx.AsyncClient, admin: Account
) -> None:
    """Guessing one (throwaway) account's password from one address.

    The attack runs from a loopback address of its own, so the address counter it
    fills is nobody else's; the account counter is the throwaway account's.
    """
    limit = AuthSettings().login_max_failures_per_account
    victim = await register_and_login(gateway)
    bystander = await register_and_login(gateway)
    async with client_from(own_loopback_address()) as attacker:
        statuses = [(await _login(attacker, victim.email, WRONG)).status_code for _ in range(limit)]
        assert statuses == [401] * limit
        throttled = await _login(attacker, victim.email, WRONG)
        assert throttled.status_code == 429, throttled.text
        assert 0 < int(throttled.headers["retry-after"]) <= 15 * 60
        # The right password does not help during the window, from anywhere.
        assert (await _login(attacker, victim.email, PASSWORD)).status_code == 429
        assert (await _login(gateway, victim.email, PASSWORD)).status_code == 429
        # The attacker's address may still log in to other accounts (under its limit)…
        assert (await _login(attacker, bystander.email, PASSWORD)).status_code == 200
    # …and nobody else is locked out: other users and the admin log in.
    assert (await _login(gateway, bystander.email, PASSWORD)).status_code == 200
    assert (await _login(gateway, admin.email, admin.password)).status_code == 200


async def test_guessing_across_many_accounts_throttles_only_that_address(
    gateway: httpx.AsyncClient,
) -> None:
    """Credential stuffing: one address, a different account each time.

    A client-sent X-Forwarded-For does not get the attacker a fresh address: the
    gateway appends the real peer, and the auth service believes only that entry
    (and only when the gateway sent it).
    """
    limit = AuthSettings().login_max_failures_per_ip
    genuine = await register_and_login(gateway)
    address = own_loopback_address()
    async with client_from(address) as attacker:
        for _ in range(limit):
            ghost = f"ghost-{uuid.uuid4().hex[:12]}@example.com"
            assert (await _login(attacker, ghost, WRONG)).status_code == 401
        refused = await _login(attacker, genuine.email, PASSWORD)
        assert refused.status_code == 429, refused.text
        spoofed = {"X-Forwarded-For": "203.0.113.50", "X-Real-IP": "203.0.113.50"}
        assert (await _login(attacker, genuine.email, PASSWORD, headers=spoofed)).status_code == 429
    # Straight to the auth service, not through the gateway: the header is not believed
    # from a peer that is not the gateway either.
    async with client_from(address, base_url=service_url("auth")) as direct:
        assert (await _login(direct, genuine.email, PASSWORD, headers=spoofed)).status_code == 429
    # Everyone else, the same account included, is unaffected.
    assert (await _login(gateway, genuine.email, PASSWORD)).status_code == 200
    async with client_from(own_loopback_address()) as elsewhere:
        assert (await _login(elsewhere, genuine.email, PASSWORD)).status_code == 200


async def test_a_failed_login_never_took_a_shared_address_over_its_limit(
    gateway: httpx.AsyncClient, admin: Account
) -> None:
    """Runs after the guessing tests above: the shared 127.0.0.1 still logs in."""
    started = time.monotonic()
    response = await _login(gateway, admin.email, admin.password)
    assert response.status_code == 200, response.text
    assert time.monotonic() - started < 30
