"""What the load generator's virtual customers do, one scenario per arrival.

Each scenario is a short visit through the gateway: browse the catalogue, sign up,
log in, place an order (with a payment token drawn from the mix), cancel one of
their orders, look at their orders and a shipment, or query the BFF. ``Traffic``
sends the requests and records every one of them (endpoint template, status,
latency); orders placed are remembered so that the run can report how their sagas
ended.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.accounts import GRAPHQL, ORDERS, Auth, Product, User, UserPool, new_email

#: Payment test tokens of the simulated gateway, by the short names of ``--tokens``.
PAYMENT_TOKENS = {
    "visa": "tok_visa",
    "declined": "tok_chargeDeclined",
    "timeout": "tok_timeout",
}
ADDRESSES = (
    {"street": "Av. Paulista, 1000", "city": "São Paulo", "state": "SP", "zipCode": "01310-100"},
    {"street": "Rua XV de Novembro, 10", "city": "Curitiba", "state": "PR", "zipCode": "80020-310"},
    {
        "street": "Av. Atlântica, 1702",
        "city": "Rio de Janeiro",
        "state": "RJ",
        "zipCode": "22021-001",
    },
)
WEB_ORDERS = (
    "query Mine { orders(first: 10) { id status totalAmount items { productName quantity } } }"
)
MOBILE_ORDERS = "query Mine { orders(first: 5) { id status totalAmount } }"
SUMMARY_QUERY = "query One($id: ID!) { orderSummary(id: $id) { id status totalAmount } }"
#: Endpoint label suffix of the requests that collect outcomes after the traffic.
SETTLE_SUFFIX = " (settle)"


class NoBudgetError(Exception):
    """No user may send more requests on a rate-limited route this minute."""


@dataclass
class PlacedOrder:
    """An order the run created: whose, with which payment token, what became of it."""

    order_id: str
    user: User
    token: str
    status: str = "PENDING"
    cancel_reason: str | None = None
    cancel_requested: bool = False


@dataclass
class Recorder:
    """Every request: latency (seconds) and status by endpoint template."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))

    def record(self, endpoint: str, status: str, seconds: float) -> None:
        self.latencies[endpoint].append(seconds)
        self.statuses[endpoint][status] += 1


class Traffic:
    """The shared state of a load run and the HTTP calls its scenarios make."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        pool: UserPool,
        products: list[Product],
        *,
        tokens: Mapping[str, float],
        rng: random.Random,
    ) -> None:
        self.client = client
        self.pool = pool
        self.products = products
        self.tokens = dict(tokens)
        self.rng = rng
        self.recorder = Recorder()
        self.orders: list[PlacedOrder] = []

    # --------------------------------------------------------------- requests

    async def call(
        self,
        method: str,
        path: str,
        endpoint: str,
        *,
        user: User | None = None,
        **options: Any,
    ) -> httpx.Response | None:
        """Send one request and record it; ``None`` when it failed in transport."""
        headers = dict(options.pop("headers", {}))
        if user is not None:
            await self.pool.auth.ensure_fresh(user)
            headers.update(user.bearer)
        started = time.perf_counter()
        try:
            response = await self.client.request(method, path, headers=headers, **options)
        except httpx.HTTPError as exc:
            self.recorder.record(endpoint, f"error:{type(exc).__name__}", _since(started))
            return None
        status = str(response.status_code)
        if (
            path.startswith("/graphql")
            and response.status_code == 200
            and response.json().get("errors")
        ):
            status = "200+errors"
        self.recorder.record(endpoint, status, _since(started))
        return response

    def user_for(self, route: str, count: int = 1) -> User:
        user = self.pool.take(route, count)
        if user is None:
            raise NoBudgetError(route)
        return user

    def product(self) -> Product:
        return self.rng.choice(self.products)

    def payment_token(self) -> str:
        names = list(self.tokens)
        return PAYMENT_TOKENS[self.rng.choices(names, weights=[self.tokens[n] for n in names])[0]]

    def my_order(self, user: User) -> PlacedOrder | None:
        mine = [order for order in self.orders if order.user is user]
        return self.rng.choice(mine) if mine else None


# ------------------------------------------------------------------ scenarios


async def browse(traffic: Traffic) -> None:
    """The catalogue, then one product page."""
    await traffic.call(
        "GET", "/api/inventory/products", "GET /api/inventory/products", params={"limit": 20}
    )
    product = traffic.product()
    await traffic.call(
        "GET",
        f"/api/inventory/products/{product.product_id}",
        "GET /api/inventory/products/{id}",
    )


async def signup(traffic: Traffic) -> None:
    """A new customer registers and logs in (two argon2id hashes on the server)."""
    user = User(new_email("load"))
    auth = Auth(traffic.client)
    started = time.perf_counter()
    registered = await auth.register(user)
    traffic.recorder.record(
        "POST /api/auth/register", "201" if registered else "409", _since(started)
    )
    started = time.perf_counter()
    logged_in = await auth.login(user)
    traffic.recorder.record("POST /api/auth/login", "200" if logged_in else "401", _since(started))
    if logged_in:
        traffic.pool.add(user, persist=False)


async def login(traffic: Traffic) -> None:
    """A returning customer logs in again (new token pair)."""
    user = traffic.rng.choice(traffic.pool.users)
    response = await traffic.call(
        "POST",
        "/api/auth/login",
        "POST /api/auth/login",
        json={"email": user.email, "password": user.password},
    )
    if response is not None and response.status_code == 200:
        async with user._lock:
            traffic.pool.auth.take_tokens(user, response.json())


async def place_order(traffic: Traffic) -> None:
    """One to three products, a payment token from the mix, an Idempotency-Key."""
    user = traffic.user_for(ORDERS)
    chosen = traffic.rng.sample(traffic.products, k=traffic.rng.randint(1, 3))
    token = traffic.payment_token()
    response = await traffic.call(
        "POST",
        "/api/orders",
        "POST /api/orders",
        user=user,
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={
            "items": [
                {"productId": p.product_id, "quantity": traffic.rng.randint(1, 2)} for p in chosen
            ],
            "shippingAddress": traffic.rng.choice(ADDRESSES),
            "paymentMethod": {"token": token},
        },
    )
    if response is not None and response.status_code == 201:
        traffic.orders.append(PlacedOrder(str(response.json()["orderId"]), user, token))


async def cancel_order(traffic: Traffic) -> None:
    """A customer cancels one of the orders the run placed (409 once it shipped)."""
    open_orders = [o for o in traffic.orders if not o.cancel_requested and o.status != "CANCELED"]
    if not open_orders:
        return
    order = traffic.rng.choice(open_orders)
    if not traffic.pool.budget.try_take(order.user.email, ORDERS):
        raise NoBudgetError(ORDERS)
    order.cancel_requested = True
    response = await traffic.call(
        "POST",
        f"/api/orders/{order.order_id}/cancel",
        "POST /api/orders/{id}/cancel",
        user=order.user,
    )
    if response is not None and response.status_code == 200:
        order.status = "CANCELED"
        order.cancel_reason = response.json().get("cancelReason")


async def my_orders(traffic: Traffic) -> None:
    """The customer's order list, then one order and its shipment."""
    user = traffic.user_for(ORDERS, 2)
    await traffic.call("GET", "/api/orders", "GET /api/orders", user=user, params={"limit": 10})
    order = traffic.my_order(user)
    if order is None:
        return
    await traffic.call("GET", f"/api/orders/{order.order_id}", "GET /api/orders/{id}", user=user)
    await traffic.call(
        "GET",
        f"/api/shipping/orders/{order.order_id}",
        "GET /api/shipping/orders/{id}",
        user=user,
    )


async def bff(traffic: Traffic) -> None:
    """The web or mobile GraphQL shape of "my orders", or one order's summary."""
    user = traffic.user_for(GRAPHQL)
    order = traffic.my_order(user)
    roll = traffic.rng.random()
    if order is not None and roll < 0.3:
        body: dict[str, Any] = {"query": SUMMARY_QUERY, "variables": {"id": order.order_id}}
        await traffic.call("POST", "/graphql", "POST /graphql orderSummary", user=user, json=body)
    elif roll < 0.65:
        await traffic.call(
            "POST", "/graphql", "POST /graphql orders", user=user, json={"query": WEB_ORDERS}
        )
    else:
        await traffic.call(
            "POST",
            "/graphql/mobile",
            "POST /graphql/mobile orders",
            user=user,
            json={"query": MOBILE_ORDERS},
        )


Scenario = Callable[[Traffic], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {
    "browse": browse,
    "signup": signup,
    "login": login,
    "order": place_order,
    "cancel": cancel_order,
    "my_orders": my_orders,
    "bff": bff,
}
#: The default mix (relative weights): mostly browsing and ordering, a few sign-ups.
DEFAULT_MIX = {
    "browse": 30.0,
    "order": 25.0,
    "bff": 15.0,
    "my_orders": 15.0,
    "cancel": 7.0,
    "signup": 4.0,
    "login": 4.0,
}
DEFAULT_TOKENS = {"visa": 85.0, "declined": 10.0, "timeout": 5.0}


def _since(started: float) -> float:
    return time.perf_counter() - started


async def settle(traffic: Traffic, *, seconds: float, interval: float = 2.0) -> None:
    """Poll the customers' order lists until every placed order is settled (confirmed or
    beyond, or canceled), or ``seconds`` have passed. One list request per customer and
    round, within the customers' rate budget."""
    deadline = time.monotonic() + seconds
    while True:
        pending = [order for order in traffic.orders if not settled(order)]
        if not pending or time.monotonic() >= deadline:
            return
        by_user: dict[str, list[PlacedOrder]] = defaultdict(list)
        for order in pending:
            by_user[order.user.email].append(order)
        await asyncio.gather(*(_refresh(traffic, orders) for orders in by_user.values()))
        if any(not settled(order) for order in traffic.orders):
            await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def settled(order: PlacedOrder) -> bool:
    return order.status in ("CONFIRMED", "SHIPPED", "DELIVERED", "CANCELED")


async def _refresh(traffic: Traffic, orders: list[PlacedOrder]) -> None:
    user = orders[0].user
    wanted = {order.order_id: order for order in orders}
    cursor: str | None = None
    while wanted:
        if not traffic.pool.budget.try_take(user.email, ORDERS):
            return  # this customer's minute is used up: next round
        params: dict[str, Any] = {"limit": 100}
        if cursor:
            params["cursor"] = cursor
        response = await traffic.call(
            "GET", "/api/orders", f"GET /api/orders{SETTLE_SUFFIX}", user=user, params=params
        )
        if response is None or response.status_code != 200:
            return
        page = response.json()
        for item in page["items"]:
            order = wanted.pop(str(item["orderId"]), None)
            if order is not None:
                order.status = str(item["status"])
                order.cancel_reason = item.get("cancelReason")
        cursor = page.get("nextCursor")
        if not cursor:
            return
