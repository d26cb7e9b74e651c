"""The BFF in-process (httpx ASGITransport + its lifespan) against real gRPC servers.

- Orders, inventory and shipping are grpclib servers started by the tests on free
  ports, implementing the generated ``*ServiceBase`` classes over in-memory data.
  They are test doubles of the downstreams, on purpose: these tests are about the
  BFF's calling pattern (batching, deadlines, breakers, degradation), which needs
  per-method call counters and failures on demand. Every call really goes over
  HTTP/2 through the BFF's grpclib channels.
- Redis is the real local one: breaker state and the summary cache live under a
  per-test key prefix, deleted afterwards, so runs never see each other's state
  (nor a running local BFF's).
- Bearer tokens are signed with a test RSA key published by a local JWKS server,
  so the runtime's real verification runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from grpclib import GRPCError
from grpclib.const import Status
from redis.asyncio import Redis

from generated.grpc.inventory import v1 as inventory_pb
from generated.grpc.orders import v1 as orders_pb
from generated.grpc.shipping import v1 as shipping_pb
from handwritten.bff.app import build_app
from handwritten.bff.settings import BffSettings
from handwritten.runtime.grpc_server import GrpcServer
from tests.conftest import STACK
from tests.support.jwks import TokenIssuer, jwks_server

REDIS_URL = f"redis://{STACK['redis']['host']}:{STACK['redis']['port']}/0"
DEADLINE = 10.0
#: The deadline the BFF gives each downstream call in these tests (seconds). Generous:
#: on a busy 2-core machine a healthy local call must never hit it, and "fails fast"
#: checks compare against it (an attempted call would cost a whole deadline).
CALL_TIMEOUT = 2.0


async def wait_for(
    condition: Callable[[], Awaitable[bool]], *, within: float = DEADLINE, what: str
) -> None:
    """Poll ``condition`` until true; fail the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


# ------------------------------------------------------------------ test doubles


class Behaviour:
    """Per-method call counters, recorded requests, and failures on demand."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.requests: defaultdict[str, list[Any]] = defaultdict(list)
        #: Answer every call with this status.
        self.fail_with: Status | None = None
        #: Hold every call this long first (longer than the BFF's deadline: a hang).
        self.delay = 0.0

    async def enter(self, method: str, message: Any) -> None:
        self.calls[method] += 1
        self.requests[method].append(message)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_with is not None:
            raise GRPCError(self.fail_with, "injected failure")


def timestamp(minutes_ago: int) -> dt.datetime:
    return dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC) - dt.timedelta(minutes=minutes_ago)


class FakeOrders(orders_pb.OrdersServiceBase, Behaviour):
    """OrdersService over a dict, honouring the ``user_id`` scope like the real one."""

    def __init__(self, inventory: FakeInventory) -> None:
        Behaviour.__init__(self)
        self.orders: dict[str, orders_pb.Order] = {}
        self.inventory = inventory

    def add(
        self,
        user_id: str,
        lines: list[tuple[str, int]],
        *,
        minutes_ago: int = 0,
        status: orders_pb.OrderStatus = orders_pb.OrderStatus.CONFIRMED,
        product_names: dict[str, str] | None = None,
    ) -> orders_pb.Order:
        items = [
            orders_pb.OrderItem(
                product_id=product_id,
                product_name=(product_names or {}).get(
                    product_id, f"{self.inventory.products[product_id].name} (at order time)"
                ),
                quantity=quantity,
                unit_price=self.inventory.products[product_id].price,
            )
            for product_id, quantity in lines
        ]
        total = sum((Decimal(item.unit_price) * item.quantity for item in items), Decimal("0.00"))
        order = orders_pb.Order(
            order_id=str(uuid.uuid4()),
            user_id=user_id,
            status=status,
            items=items,
            total_amount=f"{total:.2f}",
            currency="BRL",
            shipping_address=orders_pb.ShippingAddress(
                street="Av. Paulista, 1000", city="São Paulo", state="SP", zip_code="01310-100"
            ),
            payment=orders_pb.PaymentInfo(
                status=orders_pb.PaymentStatus.PROCESSED,
                payment_id=str(uuid.uuid4()),
                processed_at=timestamp(minutes_ago - 1),
            ),
            created_at=timestamp(minutes_ago),
            updated_at=timestamp(minutes_ago - 1),
        )
        self.orders[order.order_id] = order
        return order

    def _visible(self, order: orders_pb.Order, scope: str) -> bool:
        return not scope or order.user_id == scope

    def _find(self, order_id: str, scope: str) -> orders_pb.Order:
        order = self.orders.get(order_id)
        if order is None or not self._visible(order, scope):
            raise GRPCError(Status.NOT_FOUND, f"order {order_id} not found")
        return order

    async def get_orders(self, message: orders_pb.GetOrdersRequest) -> orders_pb.GetOrdersResponse:
        await self.enter("GetOrders", message)
        if not 1 <= len(message.order_ids) <= 100:
            raise GRPCError(Status.INVALID_ARGUMENT, "order_ids: between 1 and 100 ids")
        found = [
            self.orders[order_id]
            for order_id in dict.fromkeys(message.order_ids)
            if order_id in self.orders and self._visible(self.orders[order_id], message.user_id)
        ]
        return orders_pb.GetOrdersResponse(orders=found)

    async def get_order(self, message: orders_pb.GetOrderRequest) -> orders_pb.GetOrderResponse:
        await self.enter("GetOrder", message)
        return orders_pb.GetOrderResponse(order=self._find(message.order_id, message.user_id))

    async def list_orders(
        self, message: orders_pb.ListOrdersRequest
    ) -> orders_pb.ListOrdersResponse:
        await self.enter("ListOrders", message)
        matching = sorted(
            (
                order
                for order in self.orders.values()
                if self._visible(order, message.user_id)
                and message.status in (orders_pb.OrderStatus.UNSPECIFIED, order.status)
            ),
            key=lambda order: (order.created_at, order.order_id),
            reverse=True,
        )
        start = int(message.page_token or 0)
        size = message.page_size or 20
        page = matching[start : start + size]
        more = start + size < len(matching)
        return orders_pb.ListOrdersResponse(
            orders=page,
            next_page_token=str(start + size) if more else "",
            total_size=len(matching),
        )

    async def get_order_summary(
        self, message: orders_pb.GetOrderSummaryRequest
    ) -> orders_pb.GetOrderSummaryResponse:
        await self.enter("GetOrderSummary", message)
        order = self._find(message.order_id, message.user_id)
        return orders_pb.GetOrderSummaryResponse(
            summary=orders_pb.OrderSummary(
                order_id=order.order_id,
                user_id=order.user_id,
                status=order.status,
                total_amount=order.total_amount,
                currency=order.currency,
                item_count=sum(item.quantity for item in order.items),
                payment_status=orders_pb.PaymentStatus.PROCESSED,
                shipping_status=orders_pb.ShippingStatus.SCHEDULED,
                tracking_code="BR123",
                created_at=order.created_at,
                updated_at=order.updated_at,
            )
        )

    async def create_order(
        self, message: orders_pb.CreateOrderRequest
    ) -> orders_pb.CreateOrderResponse:
        await self.enter("CreateOrder", message)
        short = [
            orders_pb.UnavailableProduct(
                product_id=item.product_id,
                requested_quantity=item.quantity,
                available_quantity=self.inventory.stock(item.product_id),
            )
            for item in message.items
            if self.inventory.stock(item.product_id) < item.quantity
        ]
        if short:
            return orders_pb.CreateOrderResponse(unavailable_products=short)
        order = self.add(
            message.user_id,
            [(item.product_id, item.quantity) for item in message.items],
            status=orders_pb.OrderStatus.PENDING,
        )
        order.payment = None
        return orders_pb.CreateOrderResponse(order=order)

    async def cancel_order(
        self, message: orders_pb.CancelOrderRequest
    ) -> orders_pb.CancelOrderResponse:
        await self.enter("CancelOrder", message)
        order = self._find(message.order_id, message.user_id)
        if order.status in (orders_pb.OrderStatus.SHIPPED, orders_pb.OrderStatus.DELIVERED):
            raise GRPCError(Status.FAILED_PRECONDITION, "order already shipped")
        order.status = orders_pb.OrderStatus.CANCELED
        order.cancel_reason = orders_pb.CancelReason.CUSTOMER_REQUEST
        return orders_pb.CancelOrderResponse(order=order)


class FakeInventory(inventory_pb.InventoryServiceBase, Behaviour):
    def __init__(self) -> None:
        Behaviour.__init__(self)
        self.products: dict[str, inventory_pb.Product] = {}

    def add(self, name: str, price: str, available: int = 10) -> str:
        product_id = str(uuid.uuid4())
        self.products[product_id] = inventory_pb.Product(
            product_id=product_id,
            name=name,
            description=f"{name}, described",
            price=price,
            available_quantity=available,
        )
        return product_id

    def stock(self, product_id: str) -> int:
        product = self.products.get(product_id)
        return 0 if product is None else product.available_quantity

    async def get_products(
        self, message: inventory_pb.GetProductsRequest
    ) -> inventory_pb.GetProductsResponse:
        await self.enter("GetProducts", message)
        if not 1 <= len(message.product_ids) <= 100:
            raise GRPCError(Status.INVALID_ARGUMENT, "product_ids: between 1 and 100 ids")
        return inventory_pb.GetProductsResponse(
            products=[
                self.products[product_id]
                for product_id in dict.fromkeys(message.product_ids)
                if product_id in self.products
            ]
        )


class FakeShipping(shipping_pb.ShippingServiceBase, Behaviour):
    def __init__(self) -> None:
        Behaviour.__init__(self)
        self.shipments: dict[str, shipping_pb.Shipment] = {}

    def add(self, order_id: str, *, delivered: bool = False) -> shipping_pb.Shipment:
        history = [
            shipping_pb.ShipmentStatusChange(
                status=shipping_pb.ShipmentStatus.SCHEDULED,
                location="São Paulo, SP",
                occurred_at=timestamp(30),
            )
        ]
        if delivered:
            history.append(
                shipping_pb.ShipmentStatusChange(
                    status=shipping_pb.ShipmentStatus.DELIVERED, occurred_at=timestamp(5)
                )
            )
        shipment = shipping_pb.Shipment(
            shipment_id=str(uuid.uuid4()),
            order_id=order_id,
            tracking_code=f"BR{order_id[:8].upper()}",
            status=shipping_pb.ShipmentStatus.DELIVERED
            if delivered
            else shipping_pb.ShipmentStatus.SCHEDULED,
            estimated_delivery_date="2025-03-05",
            delivered_at=timestamp(5) if delivered else None,
            history=history,
            created_at=timestamp(30),
            updated_at=timestamp(5),
        )
        self.shipments[order_id] = shipment
        return shipment

    async def get_shipments(
        self, message: shipping_pb.GetShipmentsRequest
    ) -> shipping_pb.GetShipmentsResponse:
        await self.enter("GetShipments", message)
        if not 1 <= len(message.order_ids) <= 100:
            raise GRPCError(Status.INVALID_ARGUMENT, "order_ids: between 1 and 100 ids")
        return shipping_pb.GetShipmentsResponse(
            shipments=[
                self.shipments[order_id]
                for order_id in dict.fromkeys(message.order_ids)
                if order_id in self.shipments
            ]
        )


@dataclass
class Served:
    """A test double served by a real grpclib server; ``stop``/``start`` on the same port."""

    name: str
    service: Any
    port: int = 0
    server: GrpcServer | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        server = GrpcServer([self.service], service=f"test-{self.name}")
        await server.start("127.0.0.1", self.port)
        self.port = server.port
        self.server = server

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(grace_seconds=0.1)
            self.server = None


# ----------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def issuer() -> TokenIssuer:
    return TokenIssuer()


@pytest.fixture(scope="session")
def jwks_url(issuer: TokenIssuer) -> Iterator[str]:
    with jwks_server(issuer) as url:
        yield url


@dataclass
class Downstreams:
    orders: FakeOrders
    inventory: FakeInventory
    shipping: FakeShipping
    served: dict[str, Served] = field(default_factory=dict)

    def calls(self) -> dict[str, int]:
        """Calls per ``Service/Method`` so far (only those made)."""
        counts: dict[str, int] = {}
        for name, fake in (
            ("orders", self.orders),
            ("inventory", self.inventory),
            ("shipping", self.shipping),
        ):
            for method, count in fake.calls.items():
                counts[f"{name}/{method}"] = count
        return counts

    def reset_counters(self) -> None:
        for fake in (self.orders, self.inventory, self.shipping):
            fake.calls.clear()
            fake.requests.clear()


@pytest.fixture
async def downstreams() -> AsyncIterator[Downstreams]:
    inventory = FakeInventory()
    found = Downstreams(orders=FakeOrders(inventory), inventory=inventory, shipping=FakeShipping())
    for name, service in (
        ("orders", found.orders),
        ("inventory", found.inventory),
        ("shipping", found.shipping),
    ):
        served = found.served[name] = Served(name, service)
        await served.start()
    yield found
    for served in found.served.values():
        await served.stop()


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@dataclass
class Bff:
    """The BFF app in-process, with helpers to query it as a given user."""

    app: FastAPI
    client: httpx.AsyncClient
    issuer: TokenIssuer
    settings: BffSettings

    async def post(
        self,
        query: str,
        *,
        user: str | None = None,
        admin: bool = False,
        variables: dict[str, Any] | None = None,
        path: str = "/graphql",
    ) -> httpx.Response:
        roles = ["admin", "customer"] if admin else ["customer"]
        headers = self.issuer.headers(user or str(uuid.uuid4()), roles=roles)
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        return await self.client.post(path, json=body, headers=headers)

    async def graphql(self, query: str, **options: Any) -> dict[str, Any]:
        response = await self.post(query, **options)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def breaker_key(self, downstream: str, field: str = "state") -> str:
        return f"{self.settings.breaker_namespace}:{downstream}:{field}"


BffFactory = Callable[..., Any]


@pytest.fixture
async def start_bff(
    downstreams: Downstreams, issuer: TokenIssuer, jwks_url: str, redis: Redis
) -> AsyncIterator[Callable[..., Any]]:
    """``async with start_bff(**settings) as bff``: a BFF on the test's downstreams.

    Apps started by one test share the test's Redis prefixes unless told otherwise
    (like replicas do); everything under them is deleted afterwards.
    """
    prefix = f"test:bff:{uuid.uuid4().hex}"

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[Bff]:
        values: dict[str, Any] = {
            "orders_grpc_target": downstreams.served["orders"].target,
            "inventory_grpc_target": downstreams.served["inventory"].target,
            "shipping_grpc_target": downstreams.served["shipping"].target,
            "orders_timeout_seconds": CALL_TIMEOUT,
            "inventory_timeout_seconds": CALL_TIMEOUT,
            "shipping_timeout_seconds": CALL_TIMEOUT,
            "breaker_fail_max": 3,
            "breaker_reset_timeout_seconds": 1.0,
            "breaker_namespace": f"{prefix}:breaker",
            "summary_cache_prefix": f"{prefix}:summary",
            "redis_url": REDIS_URL,
            "jwks_url": jwks_url,
            **overrides,
        }
        settings = BffSettings(**values)
        app = build_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bff.test", timeout=30
            ) as client:
                yield Bff(app=app, client=client, issuer=issuer, settings=settings)

    yield start
    keys = [key async for key in redis.scan_iter(match=f"{prefix}:*")]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
async def bff(start_bff: Callable[..., Any]) -> AsyncIterator[Bff]:
    async with start_bff() as running:
        yield running


# ------------------------------------------------------------------------- data


@dataclass
class Catalogue:
    """Data every test can build on: products, one customer with orders, shipments."""

    products: list[str]
    customer: str
    orders: list[orders_pb.Order]


def seed(downstreams: Downstreams, *, orders: int = 20, shipped_every: int = 2) -> Catalogue:
    """``orders`` orders of one customer over five products (products repeat across
    orders, so batching must also dedupe), every ``shipped_every``-th with a shipment."""
    inventory = downstreams.inventory
    products = [
        inventory.add("Notebook", "3500.00"),
        inventory.add("Mouse", "89.90"),
        inventory.add("Keyboard", "249.90"),
        inventory.add("Monitor", "1299.00"),
        inventory.add("Cable", "19.99"),
    ]
    customer = str(uuid.uuid4())
    placed = []
    for index in range(orders):
        lines = [(products[index % 5], 1 + index % 3), (products[(index + 2) % 5], 1)]
        order = downstreams.orders.add(customer, lines, minutes_ago=index + 10)
        if index % shipped_every == 0:
            downstreams.shipping.add(order.order_id, delivered=index % 4 == 0)
        placed.append(order)
    return Catalogue(products=products, customer=customer, orders=placed)
