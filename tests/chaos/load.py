"""The chaos scenarios' load: orders placed through the gateway while faults happen.

Each order is one ``POST /api/orders`` with its own ``Idempotency-Key``, retried with
the SAME key on anything that is not a final answer (transport errors, 5xx, 429,
409 "still in flight"), so a fault never turns into a lost or a duplicate order: the
checker later verifies that exactly the returned order ids exist. Orders are spread
evenly over the load's duration, and go on at that pace while the faults last, on a
few products with contended stock, across a pool of accounts (the gateway allows 100
order requests a minute per user).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from tests.e2e.conftest import Account
from tests.e2e.saga_support import ADDRESS

BFF_QUERY = "query Mine { orders(first: 5) { id status } }"
#: What the read loop asks: the BFF (GraphQL over gRPC) and the catalogue.
READS = (("/graphql", {"query": BFF_QUERY}), ("/api/inventory/products", None))


@dataclass(frozen=True)
class Line:
    product_id: str
    quantity: int


@dataclass
class PlacedOrder:
    """An order the gateway accepted (201), with what the client asked for."""

    order_id: str
    user_id: str
    token: str
    lines: tuple[Line, ...]
    idempotency_key: str
    attempts: int
    seconds: float  # from the first attempt to the 201


@dataclass
class LoadResult:
    """What the load did: accepted orders, final refusals, retries and give-ups."""

    placed: list[PlacedOrder] = field(default_factory=list)
    requested: int = 0
    out_of_stock: int = 0
    gave_up: list[str] = field(default_factory=list)
    retried_because: Counter[str] = field(default_factory=Counter)
    reads: Counter[str] = field(default_factory=Counter)

    @property
    def order_ids(self) -> list[str]:
        return [order.order_id for order in self.placed]


@dataclass(frozen=True)
class Shop:
    """The products (id → initial stock) and accounts one scenario orders with.

    ``products`` are all the products the invariants check; the load only orders those
    ``on_sale``. A probe adds a product of its own to be checked, which the load must
    not sell out under it.
    """

    products: dict[str, int]
    accounts: list[Account]
    on_sale: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.on_sale:
            object.__setattr__(self, "on_sale", tuple(self.products))


async def open_shop(
    gateway: httpx.AsyncClient,
    admin: Account,
    accounts: list[Account],
    *,
    orders: int,
    products: int = 2,
) -> Shop:
    """Products of the scenario's own whose stock runs out before the orders do."""
    await login(gateway, admin)  # a long `make chaos` session outlives access tokens
    # ~1.5 units per order over `products` products, and stock for about 3/4 of it.
    stock = max(2, int(orders * 1.5 * 0.75 / products))
    ids = [await create_product(gateway, admin, stock=stock) for _ in range(products)]
    return Shop({product: stock for product in ids}, accounts)


async def create_product(gateway: httpx.AsyncClient, admin: Account, *, stock: int) -> str:
    """A product of the scenario's own (``new_product``, patient with a restarting stack)."""
    response = await _patiently(
        lambda: gateway.post(
            "/api/inventory/products",
            json={
                "name": f"Chaos {uuid.uuid4().hex[:8]}",
                "description": "chaos scenario",
                "price": "19.90",
                "availableQuantity": stock,
            },
            headers=admin.bearer,
        )
    )
    assert response.status_code == 201, response.text
    return str(response.json()["productId"])


async def login(gateway: httpx.AsyncClient, account: Account) -> None:
    """Fresh tokens for ``account`` (access tokens live 15 minutes)."""
    response = await _patiently(
        lambda: gateway.post(
            "/api/auth/login", json={"email": account.email, "password": account.password}
        )
    )
    assert response.status_code == 200, response.text
    account.tokens = response.json()


async def _patiently(
    send: Callable[[], Awaitable[httpx.Response]], *, seconds: float = 120.0
) -> httpx.Response:
    """``send()`` again while the stack answers 502/503 or not at all (it is shared, and
    others restart it); any other answer is returned."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            response = await send()
            if response.status_code not in (502, 503, 504) or time.monotonic() > deadline:
                return response
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(1.0)


def token_mix(count: int, *, declined: float = 0.2, timeout: float = 0.0) -> list[str]:
    """``count`` payment tokens: shares of tok_chargeDeclined and tok_timeout, rest tok_visa."""
    rng = random.Random(count)  # a reproducible mix
    tokens = []
    for _ in range(count):
        roll = rng.random()
        if roll < declined:
            tokens.append("tok_chargeDeclined")
        elif roll < declined + timeout:
            tokens.append("tok_timeout")
        else:
            tokens.append("tok_visa")
    return tokens


class LoadDriver:
    """Places orders through the gateway (see the module docstring)."""

    def __init__(
        self,
        gateway: httpx.AsyncClient,
        shop: Shop,
        *,
        retry_seconds: float = 150.0,
        on_placed: Callable[[PlacedOrder], None] | None = None,
    ) -> None:
        self._gateway = gateway
        self._shop = shop
        self._retry_seconds = retry_seconds
        self._on_placed = on_placed
        self._rng = random.Random()
        self.result = LoadResult()

    async def run(
        self, tokens: list[str], *, seconds: float, until: asyncio.Event | None = None
    ) -> LoadResult:
        """Place one order per token, started evenly over ``seconds``; then, while
        ``until`` is not set (the faults still run), go on at the same pace with the
        same mix; finally wait for every order's answer."""
        interval = seconds / max(1, len(tokens))
        tasks = []
        index = 0
        while index < len(tokens) or (until is not None and not until.is_set()):
            account = self._shop.accounts[index % len(self._shop.accounts)]
            token = tokens[index % len(tokens)]
            tasks.append(asyncio.create_task(self._place(account, token)))
            index += 1
            await asyncio.sleep(interval)
        self.result.requested = index
        await asyncio.gather(*tasks)
        return self.result

    async def read_loop(self, stop: asyncio.Event, *, interval: float = 1.0) -> None:
        """BFF and catalogue reads until ``stop``: counted by outcome, never retried."""
        account = self._shop.accounts[0]
        while not stop.is_set():
            for path, body in (
                ("/graphql", {"query": BFF_QUERY}),
                ("/api/inventory/products", None),
            ):
                try:
                    if body is None:
                        response = await self._gateway.get(path)
                    else:
                        response = await self._gateway.post(path, json=body, headers=account.bearer)
                    self.result.reads[f"{path} {response.status_code}"] += 1
                except httpx.TransportError as exc:
                    self.result.reads[f"{path} {type(exc).__name__}"] += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    def _lines(self) -> tuple[Line, ...]:
        products = list(self._shop.on_sale)
        chosen = self._rng.sample(
            products, k=self._rng.choice([1, 1, 2]) if len(products) > 1 else 1
        )
        return tuple(Line(p, self._rng.choice([1, 1, 2])) for p in sorted(chosen))

    async def _place(self, account: Account, token: str) -> None:
        lines = self._lines()
        key = f"chaos-{uuid.uuid4()}"
        body = {
            "items": [{"productId": line.product_id, "quantity": line.quantity} for line in lines],
            "shippingAddress": ADDRESS,
            "paymentMethod": {"token": token},
        }
        started = time.monotonic()
        deadline = started + self._retry_seconds
        attempts = 0
        while True:
            attempts += 1
            wait = 0.5
            try:
                response = await self._gateway.post(
                    "/api/orders",
                    json=body,
                    headers={**account.bearer, "Idempotency-Key": key},
                    timeout=15,
                )
            except httpx.TransportError as exc:
                self.result.retried_because[type(exc).__name__] += 1
            else:
                if response.status_code == 201:
                    order = PlacedOrder(
                        order_id=str(response.json()["orderId"]),
                        user_id=account.id,
                        token=token,
                        lines=lines,
                        idempotency_key=key,
                        attempts=attempts,
                        seconds=time.monotonic() - started,
                    )
                    self.result.placed.append(order)
                    if self._on_placed is not None:
                        self._on_placed(order)
                    return
                if response.status_code == 409 and "unavailableProducts" in response.text:
                    self.result.out_of_stock += 1
                    return
                if response.status_code in (400, 403, 404, 422):
                    self.result.gave_up.append(f"{key}: {response.status_code} {response.text}")
                    return
                # 401 (a long run outlives the access token: log in again), 409 still in
                # flight, 429 rate limited, 5xx: the same request again.
                self.result.retried_because[str(response.status_code)] += 1
                if response.status_code == 401:
                    with contextlib.suppress(httpx.TransportError, AssertionError):
                        await login(self._gateway, account)
                    wait = 0.1
                else:
                    wait = float(response.headers.get("Retry-After", wait))
            if time.monotonic() + wait > deadline:
                self.result.gave_up.append(f"{key}: no answer after {attempts} attempts")
                return
            await asyncio.sleep(min(wait, 5.0) * (0.5 + self._rng.random()))
