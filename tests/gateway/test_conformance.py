"""The gateway's observable contract, as kong.yml declares it (Kong 3.8 behaviour).

Runs against whatever gateway ``conftest.py`` provides (ours by default, or
``GATEWAY_URL``). Every request carries a unique ``probe`` query parameter, so what
the echo upstream received can be told apart per test and per run.
"""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest

from tests.gateway.conftest import KEY_SYNC_SECONDS, Echo, seconds_left_in_minute
from tests.gateway.support import (
    FORGED_CASES,
    ForgedCase,
    JwksApp,
    TestKeys,
    ThreadedServer,
    claims,
    header_values,
    wait_for,
)

pytestmark = pytest.mark.infra  # our gateway counts requests in Redis

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
JSON = "application/json; charset=utf-8"
LIMIT = 100  # kong.yml: rate-limiting minute on the orders route
RATE_HEADERS = (
    "X-RateLimit-Limit-Minute",
    "X-RateLimit-Remaining-Minute",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
)


def probe() -> str:
    return uuid.uuid4().hex


def user() -> str:
    return f"conformance-{uuid.uuid4().hex[:12]}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def forged_headers(case: ForgedCase, keys: TestKeys) -> dict[str, str]:
    authorization = case.authorization(keys)
    return {} if authorization is None else {"Authorization": authorization}


# ------------------------------------------------------------------ routing


def test_an_unknown_route_is_404(client: httpx.Client) -> None:
    response = client.get("/api/nowhere", params={"probe": probe()})
    assert response.status_code == 404
    assert response.headers["content-type"] == JSON
    assert response.json()["message"] == "no Route matched with those values"


def test_another_method_on_a_known_path_reaches_the_service_behind_the_same_auth(
    client: httpx.Client, echo: Echo, test_keys: TestKeys
) -> None:
    # Routes list methods only where plugins differ by method, so the service answers
    # a method it does not serve (405 + Allow) instead of Kong's 404 "no Route matched".
    assert client.delete("/api/shipping/orders/1").status_code == 401
    marker = probe()
    token = test_keys.sign(claims(user()))
    response = client.delete(
        "/api/shipping/orders/1", params={"probe": marker}, headers=bearer(token)
    )
    assert response.status_code not in (401, 404), response.text
    [seen] = echo.requests(marker)
    assert seen["method"] == "DELETE"


def test_only_product_writes_and_admin_endpoints_of_the_inventory_need_a_token(
    client: httpx.Client, echo: Echo
) -> None:
    # inventory-write lists POST and PATCH, so Kong prefers it for them; inventory-admin
    # has the longer path; every other request goes to the method-less public
    # inventory-read (the service answers 405 to a method it does not serve).
    for method in ("POST", "PATCH"):
        response = client.request(method, "/api/inventory/products")
        assert response.status_code == 401, (method, response.text)
    for method in ("GET", "PUT", "DELETE"):
        response = client.request(method, "/api/inventory/admin/faults/x.y")
        assert response.status_code == 401, (method, response.text)
    marker = probe()
    response = client.request("PUT", "/api/inventory/products", params={"probe": marker})
    assert response.status_code not in (401, 404), response.text
    [seen] = echo.requests(marker)
    assert seen["method"] == "PUT"


def test_the_public_route_needs_no_token(client: httpx.Client) -> None:
    response = client.get("/api/inventory/products", params={"probe": probe()})
    assert response.status_code not in (401, 404)


def test_the_public_route_strips_a_client_user_header(client: httpx.Client, echo: Echo) -> None:
    marker = probe()
    response = client.get(
        "/api/inventory/products",
        params={"probe": marker},
        headers=[("X-User-ID", "spoofed-admin"), ("x-user-id", "spoofed-2")],
    )
    assert response.status_code == 200
    [seen] = echo.requests(marker)
    assert seen["path"] == "/api/inventory/products"
    assert header_values(seen, "X-User-ID") == []


def test_writes_on_the_inventory_need_a_token(client: httpx.Client) -> None:
    response = client.post("/api/inventory/products", json={"name": "x"})
    assert response.status_code == 401
    assert response.json() == {"message": "Unauthorized"}


# ------------------------------------------------------------------ JWT


@pytest.mark.parametrize("case", FORGED_CASES, ids=[c.name for c in FORGED_CASES])
def test_a_forged_token_is_refused_with_401(
    case: ForgedCase, client: httpx.Client, test_keys: TestKeys
) -> None:
    response = client.get(
        "/api/orders", params={"probe": probe()}, headers=forged_headers(case, test_keys)
    )
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == JSON
    assert response.json() == case.body
    # Rejected before rate limiting: no quota was spent on it.
    assert "X-RateLimit-Remaining-Minute" not in response.headers


def test_forged_tokens_never_reach_the_upstream(
    client: httpx.Client, echo: Echo, test_keys: TestKeys
) -> None:
    marker = probe()
    for case in FORGED_CASES:
        for path in ("/api/orders", "/api/shipping/orders/1", "/graphql"):
            method = "POST" if path == "/graphql" else "GET"
            response = client.request(
                method,
                path,
                params={"probe": marker},
                headers={**forged_headers(case, test_keys), "X-User-ID": "spoofed-admin"},
            )
            assert response.status_code == 401, (case.name, path, response.text)
    assert echo.requests(marker) == []


def test_the_jwt_plugin_says_how_to_authenticate(client: httpx.Client, test_keys: TestKeys) -> None:
    missing = client.get("/api/orders")
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    expired = test_keys.sign(claims(user(), ttl=-10))
    invalid = client.get("/api/orders", headers=bearer(expired))
    assert invalid.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_a_valid_token_is_accepted(client: httpx.Client, test_keys: TestKeys) -> None:
    token = test_keys.sign(claims(user()))
    response = client.get("/api/orders", params={"probe": probe()}, headers=bearer(token))
    assert response.status_code not in (401, 403, 404, 429)


def test_the_user_header_is_the_token_subject_never_the_clients(
    client: httpx.Client, echo: Echo, test_keys: TestKeys
) -> None:
    subject, marker = user(), probe()
    token = test_keys.sign(claims(subject))
    response = client.get(
        "/api/orders",
        params={"probe": marker},
        headers=[
            ("Authorization", f"Bearer {token}"),
            ("X-User-ID", "spoofed-admin"),
            ("x-user-id", "spoofed-2"),
        ],
    )
    assert response.status_code == 200
    [seen] = echo.requests(marker)
    assert header_values(seen, "X-User-ID") == [subject]
    assert header_values(seen, "Authorization") == [f"Bearer {token}"]
    assert header_values(seen, "X-Consumer-Username") == ["microcommerce-users"]


def test_a_rotated_in_key_is_accepted(
    client: httpx.Client, jwks: tuple[JwksApp, ThreadedServer], test_keys: TestKeys
) -> None:
    """A kid the gateway has not seen yet, now in the JWKS: refetched, then accepted
    (for Kong: once the sync job pushed it)."""
    app, _ = jwks
    rotated = TestKeys()
    app.add(rotated)
    token = rotated.sign(claims(user()))
    statuses: list[int] = []

    def accepted() -> bool:
        response = client.get("/api/shipping/orders/1", headers=bearer(token))
        statuses.append(response.status_code)
        return response.status_code != 401

    wait_for(accepted, KEY_SYNC_SECONDS, "the rotated-in key to be accepted", 0.5)
    assert statuses[-1] not in (401, 403, 404)
    # The key that signed everything before still works alongside the new one.
    old = client.get("/api/shipping/orders/1", headers=bearer(test_keys.sign(claims(user()))))
    assert old.status_code != 401


# ------------------------------------------------------------------ rate limiting


def _wait_for_a_fresh_window(seconds_needed: float = 15) -> None:
    """Start a burst only if the current minute window cannot end during it.

    The limit counts per calendar minute (Kong's fixed window): a burst straddling
    a minute boundary would be split across two counters. When too little of this
    minute is left, wait (on the clock, polled) for the next one to begin.
    """
    if seconds_left_in_minute() >= seconds_needed:
        return
    this_minute = int(time.time() // 60)
    wait_for(lambda: int(time.time() // 60) > this_minute, 61, "the next minute", 0.1)


def test_the_101st_request_of_a_user_in_a_minute_is_429(
    client: httpx.Client, test_keys: TestKeys
) -> None:
    user_a, user_b = user(), user()
    token_a, token_b = test_keys.sign(claims(user_a)), test_keys.sign(claims(user_b))
    _wait_for_a_fresh_window()
    for number in range(1, LIMIT + 1):
        response = client.get("/api/orders", params={"probe": probe()}, headers=bearer(token_a))
        assert response.status_code != 429, f"request {number} was limited"
        assert response.headers["X-RateLimit-Limit-Minute"] == str(LIMIT)
        assert response.headers["X-RateLimit-Remaining-Minute"] == str(LIMIT - number)
        assert response.headers["RateLimit-Limit"] == str(LIMIT)
        assert response.headers["RateLimit-Remaining"] == str(LIMIT - number)
        assert 1 <= int(response.headers["RateLimit-Reset"]) <= 60
        assert "Retry-After" not in response.headers

    limited = client.get("/api/orders", params={"probe": probe()}, headers=bearer(token_a))
    assert limited.status_code == 429
    assert limited.headers["content-type"] == JSON
    assert limited.json()["message"] == "API rate limit exceeded"
    for name in RATE_HEADERS:
        assert name in limited.headers, name
    assert limited.headers["X-RateLimit-Remaining-Minute"] == "0"
    assert limited.headers["RateLimit-Remaining"] == "0"
    retry_after = int(limited.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert retry_after == int(limited.headers["RateLimit-Reset"])
    assert abs(retry_after - seconds_left_in_minute()) <= 2

    other = client.get("/api/orders", params={"probe": probe()}, headers=bearer(token_b))
    assert other.status_code != 429
    assert other.headers["X-RateLimit-Remaining-Minute"] == str(LIMIT - 1)


def test_the_limited_requests_never_reach_the_upstream(
    client: httpx.Client, echo: Echo, test_keys: TestKeys
) -> None:
    token = test_keys.sign(claims(user()))
    marker = probe()
    _wait_for_a_fresh_window()
    statuses = [
        client.get("/api/orders", params={"probe": marker}, headers=bearer(token)).status_code
        for _ in range(LIMIT + 5)
    ]
    assert statuses == [200] * LIMIT + [429] * 5
    assert len(echo.requests(marker)) == LIMIT


def test_the_rate_limit_is_not_on_unlimited_routes(
    client: httpx.Client, test_keys: TestKeys
) -> None:
    token = test_keys.sign(claims(user()))
    response = client.get("/api/shipping/orders/1", headers=bearer(token))
    assert response.status_code != 401
    assert "X-RateLimit-Limit-Minute" not in response.headers


# ------------------------------------------------------------------ correlation id


def test_a_sent_correlation_id_is_echoed(client: httpx.Client) -> None:
    sent = f"conformance-{uuid.uuid4()}"
    response = client.get(
        "/api/inventory/products", params={"probe": probe()}, headers={"X-Correlation-ID": sent}
    )
    assert response.headers["X-Correlation-ID"] == sent


def test_a_correlation_id_is_generated_when_absent(client: httpx.Client) -> None:
    first = client.get("/api/inventory/products", params={"probe": probe()})
    second = client.get("/api/inventory/products", params={"probe": probe()})
    assert UUID.match(first.headers["X-Correlation-ID"])
    assert first.headers["X-Correlation-ID"] != second.headers["X-Correlation-ID"]


def test_the_correlation_id_is_echoed_on_refusals_too(client: httpx.Client) -> None:
    sent = f"conformance-{uuid.uuid4()}"
    response = client.get("/api/orders", headers={"X-Correlation-ID": sent})
    assert response.status_code == 401
    assert response.headers["X-Correlation-ID"] == sent


def test_the_upstream_gets_the_same_correlation_id(client: httpx.Client, echo: Echo) -> None:
    sent, marker = f"conformance-{uuid.uuid4()}", probe()
    client.get(
        "/api/inventory/products", params={"probe": marker}, headers={"X-Correlation-ID": sent}
    )
    generated_marker = probe()
    response = client.get("/api/inventory/products", params={"probe": generated_marker})
    [with_id] = echo.requests(marker)
    [generated] = echo.requests(generated_marker)
    assert header_values(with_id, "X-Correlation-ID") == [sent]
    assert header_values(generated, "X-Correlation-ID") == [response.headers["X-Correlation-ID"]]
