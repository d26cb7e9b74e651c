"""No secret reaches the logs: passwords, tokens, their signatures, Authorization values.

The test records where every log of the local stack ends, runs the flows that
handle secrets (register, a failed and a good login, refresh, /me, an order with a
payment token, logout) with values it can recognise, and then reads only what was
written after its start.

Payment tokens (``tok_visa``…) are the simulated gateway's *test* tokens, shared by
every client and printed in the README, so they are not secret here; a real
deployment would treat them as card-data references. The test therefore uses a
made-up token of its own and requires that it is not logged either.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx

from tests.e2e.conftest import LOG_DIR, Account, wait_for
from tests.e2e.saga_support import new_product, order_body


def _offsets() -> dict[Path, int]:
    return {log: log.stat().st_size for log in LOG_DIR.glob("*.log")}


def _written_since(offsets: dict[Path, int]) -> dict[str, str]:
    written: dict[str, str] = {}
    for log in LOG_DIR.glob("*.log"):
        start = offsets.get(log, 0)
        with log.open("rb") as handle:
            if log.stat().st_size < start:  # rotated or truncated meanwhile: read it all
                start = 0
            handle.seek(start)
            written[log.name] = handle.read().decode("utf-8", errors="replace")
    return written


async def test_secrets_never_reach_the_logs(gateway: httpx.AsyncClient, admin: Account) -> None:
    product = await new_product(gateway, admin, stock=10)
    offsets = _offsets()
    assert offsets, f"no logs in {LOG_DIR}"
    marker = uuid.uuid4().hex
    password = f"Secret-{marker}-Pw!"
    wrong_password = f"Wrong-{marker}-Pw!"
    email = f"secrets-{marker[:10]}@example.com"

    registered = await gateway.post(
        "/api/auth/register", json={"email": email, "password": password, "name": "Sec"}
    )
    assert registered.status_code == 201, registered.text
    failed = await gateway.post(
        "/api/auth/login", json={"email": email, "password": wrong_password}
    )
    assert failed.status_code == 401
    login = await gateway.post("/api/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    first = login.json()
    refreshed = await gateway.post(
        "/api/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    pair = refreshed.json()
    bearer = {"Authorization": f"Bearer {pair['access_token']}"}
    assert (await gateway.get("/api/auth/me", headers=bearer)).status_code == 200
    payment_token = f"tok_{marker}"
    order = await gateway.post(
        "/api/orders",
        json=order_body(product, token=payment_token),
        headers={**bearer, "Idempotency-Key": str(uuid.uuid4()), "X-Correlation-ID": marker},
    )
    assert order.status_code == 201, order.text
    order_id = order.json()["orderId"]
    # Reuse of a rotated refresh token (logged as a warning) and a bad bearer.
    assert (
        await gateway.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).status_code == 401
    forged = pair["access_token"][:-4] + "AAAA"
    assert (
        await gateway.get("/api/auth/me", headers={"Authorization": f"Bearer {forged}"})
    ).status_code == 401
    assert (
        await gateway.post("/api/auth/logout", json={"refresh_token": pair["refresh_token"]})
    ).status_code == 204

    async def settled() -> bool:
        # Wait until the saga ran (the payment service saw the payment token) and
        # the order's lines are in the logs, so the scan covers the whole flow.
        got = await gateway.get(f"/api/orders/{order_id}", headers=bearer)
        return got.status_code == 200 and got.json()["status"] != "PENDING"

    await wait_for(settled, seconds=90, what="the order to leave PENDING")

    async def logged() -> bool:
        return any(marker in text for text in _written_since(offsets).values())

    await wait_for(logged, seconds=10, what="this test's requests in the logs")

    secrets = {
        "password": password,
        "wrong password": wrong_password,
        "payment token": payment_token,
    }
    for name, token in (
        ("first access token", first["access_token"]),
        ("first refresh token", first["refresh_token"]),
        ("access token", pair["access_token"]),
        ("refresh token", pair["refresh_token"]),
        ("forged token", forged),
    ):
        secrets[name] = token
        if token.count(".") == 2:
            secrets[f"{name} signature"] = token.rsplit(".", 1)[1]
    written = _written_since(offsets)
    leaks = [
        f"{name} in {log}"
        for log, text in sorted(written.items())
        for name, value in sorted(secrets.items())
        if value in text
    ]
    leaks += [
        f"an Authorization header value in {log}"
        for log, text in sorted(written.items())
        if "Bearer ey" in text or "bearer ey" in text.lower()
    ]
    assert not leaks, leaks
