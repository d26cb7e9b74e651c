"""The inventory app in-process against the real ``inventory`` PostgreSQL database,
Redis and Kafka of the local infrastructure.

REST goes through httpx's ASGITransport with the app's lifespan started; gRPC goes
over a real grpclib channel to the server that lifespan starts on a free port.
Bearer tokens are signed with a test RSA key that a tiny local JWKS server
publishes (JWKS_URL points at it), so the runtime's real verification runs.
Every test creates its own products (unique names) and they are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from grpclib.client import Channel

from generated import catalog
from generated.grpc.inventory.v1 import InventoryServiceStub, ProductQuantity
from handwritten.inventory.app import InventoryRuntime, build_app
from handwritten.inventory.settings import InventorySettings
from tests.support.jwks import jwks_server

PROBLEM_JSON = "application/problem+json"
PRODUCTS = "/api/inventory/products"


# --------------------------------------------------------------------------- tokens


@dataclass
class TokenIssuer:
    """Signs RS256 access tokens the way the auth service does (kid, iss, aud…)."""

    key: rsa.RSAPrivateKey
    kid: str

    def token(
        self,
        *,
        roles: Sequence[str] = ("customer",),
        expires_in: int = 300,
        issuer: str = catalog.JWT_ISSUER,
        audience: str = catalog.JWT_AUDIENCE,
        key: rsa.RSAPrivateKey | None = None,
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": audience,
            "sub": str(uuid.uuid4()),
            "iat": now,
            "nbf": now,
            "exp": now + expires_in,
            "jti": str(uuid.uuid4()),
            "roles": list(roles),
        }
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": self.kid})

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(roles=['admin', 'customer'])}"}

    def customer_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}


@pytest.fixture(scope="session")
def issuer() -> TokenIssuer:
    return TokenIssuer(
        rsa.generate_private_key(public_exponent=65537, key_size=2048), kid="inventory-test"
    )


@pytest.fixture(scope="session")
def jwks_url(issuer: TokenIssuer) -> Iterator[str]:
    """A local JWKS endpoint publishing the issuer's public key."""
    with jwks_server(issuer) as url:
        yield url


# --------------------------------------------------------------------------- service


@dataclass
class Inventory:
    """One started inventory app and the ways to talk to it."""

    app: FastAPI
    http: httpx.AsyncClient
    stub: InventoryServiceStub
    channel: Channel
    db: asyncpg.Pool
    settings: InventorySettings
    created: list[uuid.UUID] = field(default_factory=list)

    @property
    def runtime(self) -> InventoryRuntime:
        runtime = self.app.state.inventory
        assert isinstance(runtime, InventoryRuntime)
        return runtime

    async def add_product(
        self, *, stock: int, price: str = "10.00", name: str | None = None
    ) -> uuid.UUID:
        """A fresh product inserted directly (fast set-up for stock tests)."""
        product_id = uuid.uuid4()
        await self.db.execute(
            "INSERT INTO products (product_id, name, description, price, available_quantity)"
            " VALUES ($1, $2, '', $3, $4)",
            product_id,
            name or f"Test product {product_id.hex[:8]}",
            Decimal(price),
            stock,
        )
        self.created.append(product_id)
        return product_id

    async def stock_of(self, product_id: uuid.UUID) -> tuple[int, int]:
        """(available, reserved) straight from the database."""
        row = await self.db.fetchrow(
            "SELECT available_quantity, reserved_quantity FROM products WHERE product_id = $1",
            product_id,
        )
        assert row is not None
        return row["available_quantity"], row["reserved_quantity"]

    async def reservation_status(self, order_id: uuid.UUID) -> set[str]:
        rows = await self.db.fetch(
            "SELECT status FROM inventory_reservations WHERE order_id = $1", order_id
        )
        return {row["status"] for row in rows}

    async def cleanup(self) -> None:
        if self.created:
            await self.db.execute(
                "DELETE FROM inventory_reservations WHERE product_id = ANY($1::uuid[])",
                self.created,
            )
            await self.db.execute(
                "DELETE FROM products WHERE product_id = ANY($1::uuid[])", self.created
            )
            self.created.clear()


def make_settings(jwks_url: str, **overrides: Any) -> InventorySettings:
    values: dict[str, Any] = {
        "grpc_port": 0,
        "jwks_url": jwks_url,
        "reservation_ttl_seconds": 600,
        # The job is exercised by test_expiry with its own app; elsewhere it stays out
        # of the way so that tests observing RESERVED states are deterministic.
        "reservation_expiry_interval_seconds": 3600,
        "inventory_cache_ttl_seconds": 30,
        "shutdown_grace_seconds": 2,
    }
    return InventorySettings(**{**values, **overrides})


@asynccontextmanager
async def running(settings: InventorySettings) -> AsyncIterator[Inventory]:
    """Start the app (lifespan: pool, migrations, seed, gRPC, jobs) and clients."""
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        runtime = app.state.inventory
        assert runtime.grpc is not None
        channel = Channel("127.0.0.1", runtime.grpc.port)
        assert settings.database_url is not None
        db = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4)
        assert db is not None
        transport = httpx.ASGITransport(app=app)
        inventory: Inventory | None = None
        try:
            async with httpx.AsyncClient(
                transport=transport, base_url="http://inventory.test"
            ) as http:
                inventory = Inventory(
                    app, http, InventoryServiceStub(channel, timeout=10), channel, db, settings
                )
                yield inventory
        finally:
            if inventory is not None:
                await inventory.cleanup()
            channel.close()
            await db.close()


@pytest.fixture(scope="session")
async def service(jwks_url: str) -> AsyncIterator[Inventory]:
    async with running(make_settings(jwks_url)) as inventory:
        yield inventory


@pytest.fixture
async def inventory(service: Inventory) -> AsyncIterator[Inventory]:
    """The shared service; the products a test creates are deleted after it."""
    try:
        yield service
    finally:
        await service.cleanup()


# --------------------------------------------------------------------------- helpers


def items(*pairs: tuple[uuid.UUID, int]) -> list[ProductQuantity]:
    return [ProductQuantity(product_id=str(p), quantity=q) for p, q in pairs]


async def wait_for(
    condition: Callable[[], Awaitable[bool]], *, within: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``condition`` until true; fail the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert "Traceback" not in response.text
    return body
