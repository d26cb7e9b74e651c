"""Helpers of the security suite: direct service URLs, own client addresses, orders."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from generated import catalog
from tests.e2e.conftest import GATEWAY_URL, Account
from tests.e2e.saga_support import order_body

#: Services that verify bearer tokens themselves, with a route of theirs that needs one.
SERVICE_PROTECTED_ROUTES: dict[str, tuple[str, str]] = {
    "auth": ("GET", "/api/auth/me"),
    "orders": ("GET", "/api/orders"),
    "payment": ("GET", f"/api/payments/orders/{uuid.UUID(int=1)}"),
    "shipping": ("GET", f"/api/shipping/orders/{uuid.UUID(int=1)}"),
    "inventory": ("POST", "/api/inventory/products"),
    "analytics": ("GET", "/api/analytics/sales-by-day?from=2026-01-01&to=2026-01-02"),
}


def service_url(service: str) -> str:
    """The service's own HTTP address (bypassing the gateway)."""
    return f"http://127.0.0.1:{catalog.SERVICES[service].http_port}"


def own_loopback_address() -> str:
    """A loopback address no other test uses (127.0.0.1 is everyone's, .2/.3 the fuzzer's).

    Any 127.0.0.0/8 address reaches the stack on 127.0.0.1, and the auth service
    counts failed logins per client address: a suite that fails logins on purpose
    from its own address can only throttle itself.
    """
    raw = uuid.uuid4().bytes
    return f"127.{100 + raw[0] % 100}.{raw[1]}.{max(raw[2], 1)}"


@asynccontextmanager
async def client_from(
    address: str, base_url: str = GATEWAY_URL
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose connections leave from ``address``."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(transport=transport, base_url=base_url, timeout=30) as client:
        yield client


def is_problem(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").startswith("application/problem+json")


async def create_order(gateway: httpx.AsyncClient, owner: Account, product_id: str) -> str:
    """A new order of ``owner``; its id."""
    response = await gateway.post(
        "/api/orders",
        json=order_body(product_id),
        headers={**owner.bearer, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 201, response.text
    order_id: str = response.json()["orderId"]
    return order_id
