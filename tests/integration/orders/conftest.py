"""The orders app in-process against the real ``orders`` PostgreSQL database, Redis,
Kafka, and the real inventory service's gRPC server.

- Orders runs with its lifespan (migrations, outbox relay, gRPC server on a free
  port) in a schema of its own inside the ``orders`` database (``search_path`` in
  the URL): the rebuild test truncates ``orders_view`` and the relay takes a
  per-schema lock, neither of which may touch a stack running on ``public``.
- Inventory is the real ``handwritten.inventory`` app (its gRPC server on a free
  port, real ``inventory`` database); products are inserted with unique ids and
  deleted afterwards.
- Bearer tokens are signed with a test RSA key that a tiny local JWKS server
  publishes (JWKS_URL points at it), so the runtime's real verification runs.
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
from generated.grpc.orders.v1 import OrdersServiceStub
from handwritten.inventory.app import build_app as build_inventory_app
from handwritten.inventory.settings import InventorySettings
from handwritten.orders.app import OrdersRuntime, build_app
from handwritten.orders.service_layer.orders import OrdersService
from handwritten.orders.settings import OrdersSettings
from tests.integration.conftest import STACK
from tests.support.jwks import jwks_server

PROBLEM_JSON = "application/problem+json"
ORDERS = "/api/orders"
ADDRESS = {
    "street": "Av. Paulista, 1000",
    "city": "São Paulo",
    "state": "SP",
    "zipCode": "01310-100",
}

_ORDERS_DB = next(db for db in STACK["postgres"]["databases"] if db["name"] == "orders")
ORDERS_URL = (
    f"postgresql://{_ORDERS_DB['user']}:{_ORDERS_DB['password']}@{STACK['postgres']['host']}:"
    f"{STACK['postgres']['port']}/{_ORDERS_DB['name']}"
)


# --------------------------------------------------------------------------- tokens


@dataclass
class TokenIssuer:
    """Signs RS256 access tokens the way the auth service does (kid, iss, aud…)."""

    key: rsa.RSAPrivateKey
    kid: str

    def token(self, user_id: uuid.UUID, *, roles: Sequence[str] = ("customer",)) -> str:
        now = int(time.time())
        claims = {
            "iss": catalog.JWT_ISSUER,
            "aud": catalog.JWT_AUDIENCE,
            "sub": str(user_id),
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "jti": str(uuid.uuid4()),
            "roles": list(roles),
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})


@dataclass
class User:
    """A caller: its id and the headers that authenticate it."""

    user_id: uuid.UUID
    headers: dict[str, str]


@pytest.fixture(scope="session")
def issuer() -> TokenIssuer:
    return TokenIssuer(
        rsa.generate_private_key(public_exponent=65537, key_size=2048), kid="orders-test"
    )


@pytest.fixture(scope="session")
def jwks_url(issuer: TokenIssuer) -> Iterator[str]:
    """A local JWKS endpoint publishing the issuer's public key."""
    with jwks_server(issuer) as url:
        yield url


@pytest.fixture
def customer(issuer: TokenIssuer) -> User:
    user_id = uuid.uuid4()
    return User(user_id, {"Authorization": f"Bearer {issuer.token(user_id)}"})


@pytest.fixture
def other_customer(issuer: TokenIssuer) -> User:
    user_id = uuid.uuid4()
    return User(user_id, {"Authorization": f"Bearer {issuer.token(user_id)}"})


@pytest.fixture
def admin(issuer: TokenIssuer) -> User:
    user_id = uuid.uuid4()
    token = issuer.token(user_id, roles=("admin", "customer"))
    return User(user_id, {"Authorization": f"Bearer {token}"})


# ------------------------------------------------------------------------ inventory


@dataclass
class Inventory:
    """The real inventory app (gRPC on ``port``) and direct access to its products."""

    port: int
    db: asyncpg.Pool
    created: list[uuid.UUID] = field(default_factory=list)

    async def add_product(self, *, price: str, stock: int, name: str | None = None) -> uuid.UUID:
        product_id = uuid.uuid4()
        await self.db.execute(
            "INSERT INTO products (product_id, name, description, price, available_quantity)"
            " VALUES ($1, $2, '', $3, $4)",
            product_id,
            name or f"Orders test product {product_id.hex[:8]}",
            Decimal(price),
            stock,
        )
        self.created.append(product_id)
        return product_id

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


@pytest.fixture(scope="session")
async def inventory_service(jwks_url: str) -> AsyncIterator[Inventory]:
    settings = InventorySettings(
        grpc_port=0,
        jwks_url=jwks_url,
        inventory_cache_ttl_seconds=0,
        outbox_relay_enabled=False,
        seed_demo_products=False,
        shutdown_grace_seconds=2,
    )
    app = build_inventory_app(settings)
    async with app.router.lifespan_context(app):
        runtime = app.state.inventory
        assert runtime.grpc is not None and settings.database_url is not None
        db = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4)
        assert db is not None
        inventory = Inventory(runtime.grpc.port, db)
        try:
            yield inventory
        finally:
            await inventory.cleanup()
            await db.close()


@pytest.fixture
async def inventory(inventory_service: Inventory) -> AsyncIterator[Inventory]:
    """The shared inventory; the products a test adds are deleted after it."""
    try:
        yield inventory_service
    finally:
        await inventory_service.cleanup()


# --------------------------------------------------------------------------- orders


@dataclass(frozen=True)
class Schema:
    """A schema of the ``orders`` database of its own (``search_path`` in the URL)."""

    name: str

    @property
    def url(self) -> str:
        return f"{ORDERS_URL}?search_path={self.name}"

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.url)


@pytest.fixture(scope="session")
async def schema() -> AsyncIterator[Schema]:
    schema = Schema(f"test_orders_{uuid.uuid4().hex[:10]}")
    admin = await asyncpg.connect(ORDERS_URL)
    await admin.execute(f"CREATE SCHEMA {schema.name}")
    try:
        yield schema
    finally:
        await admin.execute(f"DROP SCHEMA {schema.name} CASCADE")
        await admin.close()


@dataclass
class Orders:
    """One started orders app and the ways to talk to it."""

    app: FastAPI
    http: httpx.AsyncClient
    grpc: OrdersServiceStub
    db: asyncpg.Pool
    settings: OrdersSettings

    @property
    def runtime(self) -> OrdersRuntime:
        runtime = self.app.state.orders
        assert isinstance(runtime, OrdersRuntime)
        return runtime

    @property
    def service(self) -> OrdersService:
        assert self.runtime.service is not None
        return self.runtime.service

    async def create(
        self,
        user: User,
        items: Sequence[tuple[uuid.UUID, int]],
        *,
        key: str | None = None,
        **extra: Any,
    ) -> httpx.Response:
        headers = dict(user.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        body = {
            "items": [{"productId": str(p), "quantity": q} for p, q in items],
            "shippingAddress": ADDRESS,
            **extra,
        }
        return await self.http.post(ORDERS, json=body, headers=headers)

    async def orders_of(self, user_id: uuid.UUID) -> int:
        """Orders of ``user_id`` in the event store (not only the view)."""
        count: int = await self.db.fetchval(
            "SELECT count(*) FROM events WHERE event_type = 'OrderCreated'"
            " AND event_data->>'userId' = $1",
            str(user_id),
        )
        return count


def orders_settings(
    schema: Schema, jwks_url: str, inventory_port: int, **overrides: Any
) -> OrdersSettings:
    values: dict[str, Any] = {
        "database_url": schema.url,
        "grpc_port": 0,
        "jwks_url": jwks_url,
        "inventory_grpc_target": f"127.0.0.1:{inventory_port}",
        "snapshot_every": 2,
        "orders_cache_ttl_seconds": 30,
        "shutdown_grace_seconds": 2,
        # These tests drive the aggregate by hand (confirm, ship…): the saga is
        # recorded with each order but not advanced, and nothing is consumed. The
        # saga tests (test_saga_flow.py) turn both on.
        "saga_worker_enabled": False,
        "consumer_enabled": False,
        "orders_consumer_group": f"test-orders-{uuid.uuid4()}",
    }
    return OrdersSettings(**{**values, **overrides})


@asynccontextmanager
async def running(settings: OrdersSettings) -> AsyncIterator[Orders]:
    """Start the app (lifespan: pool, migrations, relay, gRPC) and its clients."""
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        runtime = app.state.orders
        assert runtime.grpc is not None and settings.database_url is not None
        channel = Channel("127.0.0.1", runtime.grpc.port)
        db = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4)
        assert db is not None
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://orders.test"
            ) as http:
                yield Orders(app, http, OrdersServiceStub(channel, timeout=10), db, settings)
        finally:
            channel.close()
            await db.close()


@pytest.fixture(scope="session")
async def orders(
    schema: Schema, jwks_url: str, inventory_service: Inventory
) -> AsyncIterator[Orders]:
    async with running(orders_settings(schema, jwks_url, inventory_service.port)) as started:
        yield started


# --------------------------------------------------------------------------- helpers


async def eventually(
    condition: Callable[[], Awaitable[bool]], *, what: str, within: float = 30.0
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
