"""The shared resolver layer over in-memory ports: batching, fallbacks, cache, scope."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

import pytest

from handwritten.bff.domain import models
from handwritten.bff.domain.access import Caller
from handwritten.bff.domain.errors import (
    BadUserInputError,
    ForbiddenError,
    NotFoundError,
    ServiceUnavailableError,
)
from handwritten.bff.service_layer.loaders import Downstreams
from handwritten.bff.service_layer.queries import OrderQueries

NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
USER = "6f1c1bb2-7a53-4b59-9a37-1f1f6e1b5a10"
CUSTOMER = Caller(USER)
ORDER_ID = "0b8c5c44-3c5a-4d8e-9a0e-5e2f3b7d9c11"
LINE = models.OrderLine("p-1", "Mouse (2024)", 1, Decimal("89.90"))
ORDER = models.Order(
    order_id=ORDER_ID,
    user_id=USER,
    status=models.OrderStatus.CONFIRMED,
    lines=(LINE,),
    total=Decimal("89.90"),
    currency="BRL",
    created_at=NOW,
)
SUMMARY = models.OrderSummary(
    order_id=ORDER_ID,
    user_id=USER,
    status=models.OrderStatus.CONFIRMED,
    total=Decimal("89.90"),
    currency="BRL",
    item_count=1,
    payment_status=None,
    shipping_status=None,
    tracking_code=None,
    cancel_reason=None,
    created_at=NOW,
    updated_at=None,
)
SHIPMENT = models.Shipment(
    ORDER_ID, "BR1", models.ShippingStatus.SCHEDULED, dt.date(2025, 3, 5), None, ()
)


class Orders:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    async def get_orders(self, order_ids: Sequence[str], *, scope: str) -> list[models.Order]:
        self.calls.append(("get_orders", (tuple(order_ids), scope)))
        return [ORDER] if ORDER_ID in order_ids and scope in ("", USER) else []

    async def list_orders(
        self,
        *,
        scope: str,
        page_size: int,
        cursor: str | None,
        status: models.OrderStatus | None,
    ) -> models.OrderPage:
        self.calls.append(("list_orders", scope))
        return models.OrderPage((ORDER,), None, 1)

    async def get_order_summary(self, order_id: str, *, scope: str) -> models.OrderSummary:
        self.calls.append(("get_order_summary", scope))
        if scope not in ("", USER):
            raise NotFoundError("Order not found.")
        return SUMMARY

    async def create_order(self, order: models.NewOrder, *, user_id: str) -> models.Order:
        self.calls.append(("create_order", user_id))
        return ORDER

    async def cancel_order(self, order_id: str, *, scope: str) -> models.Order:
        self.calls.append(("cancel_order", scope))
        return dataclasses.replace(ORDER, status=models.OrderStatus.CANCELED)


class Inventory:
    def __init__(self, *, down: bool = False, products: Sequence[models.Product] = ()) -> None:
        self.down = down
        self.products = list(products)
        self.calls: list[tuple[str, ...]] = []

    async def get_products(self, product_ids: Sequence[str]) -> list[models.Product]:
        self.calls.append(tuple(product_ids))
        if self.down:
            raise ServiceUnavailableError("inventory", reason="circuit_open")
        return [p for p in self.products if p.product_id in product_ids]


class Shipping:
    def __init__(self, *, down: bool = False) -> None:
        self.down = down
        self.calls: list[tuple[str, ...]] = []

    async def get_shipments(self, order_ids: Sequence[str]) -> list[models.Shipment]:
        self.calls.append(tuple(order_ids))
        if self.down:
            raise ServiceUnavailableError("shipping", reason="unreachable")
        return [SHIPMENT] if ORDER_ID in order_ids else []


class Cache:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], models.OrderSummary] = {}

    async def get(self, user_id: str, order_id: str) -> models.OrderSummary | None:
        return self.entries.get((user_id, order_id))

    async def put(self, user_id: str, summary: models.OrderSummary) -> None:
        self.entries[(user_id, summary.order_id)] = summary

    async def invalidate(self, user_id: str, order_id: str) -> None:
        self.entries.pop((user_id, order_id), None)


def queries(
    caller: Caller = CUSTOMER,
    *,
    inventory: Inventory | None = None,
    shipping: Shipping | None = None,
    cache: Cache | None = None,
    orders: Orders | None = None,
) -> OrderQueries:
    return OrderQueries(
        Downstreams(
            orders=orders or Orders(),
            inventory=inventory or Inventory(),
            shipping=shipping or Shipping(),
        ),
        cache or Cache(),
        caller,
    )


async def test_concurrent_loads_become_one_batch_per_downstream() -> None:
    inventory = Inventory(products=[models.Product("p-1", "Mouse", "", Decimal("99"), 3)])
    shipping = Shipping()
    context = queries(inventory=inventory, shipping=shipping)
    lines = [dataclasses.replace(LINE, product_id=f"p-{i % 3}") for i in range(12)]

    names = await asyncio.gather(
        *(context.product_name(line, ("x", i)) for i, line in enumerate(lines)),
        *(context.shipment(ORDER) for _ in range(5)),
    )

    assert len(inventory.calls) == 1 and sorted(inventory.calls[0]) == ["p-0", "p-1", "p-2"]
    assert shipping.calls == [(ORDER_ID,)]
    assert names[1] == "Mouse"  # p-1 exists: the catalogue's current name


async def test_product_name_falls_back_to_the_line_and_records_a_degradation() -> None:
    context = queries(inventory=Inventory(down=True))

    name = await context.product_name(LINE, ["orders", 0, "items", 0, "productName"])

    assert name == "Mouse (2024)"
    (degradation,) = context.degradations
    assert degradation.path == ("orders", 0, "items", 0, "productName")
    assert degradation.error.code == "SERVICE_UNAVAILABLE"


async def test_product_name_without_a_fallback_raises() -> None:
    context = queries(inventory=Inventory(down=True))
    with pytest.raises(ServiceUnavailableError):
        await context.product_name(dataclasses.replace(LINE, product_name=""), ["p"])
    assert context.degradations == []


async def test_a_removed_product_keeps_its_name_at_order_time() -> None:
    assert await queries().product_name(LINE, ["p"]) == "Mouse (2024)"


async def test_order_scope_and_not_found() -> None:
    orders = Orders()
    assert await queries(orders=orders).order(ORDER_ID) == ORDER
    assert orders.calls == [("get_orders", ((ORDER_ID,), USER))]

    with pytest.raises(NotFoundError):
        await queries(Caller("someone-else")).order(ORDER_ID)
    admin = Orders()
    assert await queries(Caller("admin", is_admin=True), orders=admin).order(ORDER_ID) == ORDER
    assert admin.calls == [("get_orders", ((ORDER_ID,), ""))]


async def test_ids_are_validated_before_any_call() -> None:
    orders = Orders()
    with pytest.raises(BadUserInputError):
        await queries(orders=orders).order("42")
    with pytest.raises(BadUserInputError):
        await queries(orders=orders).orders(first=0)
    with pytest.raises(ForbiddenError):
        await queries(orders=orders).orders(user_id="0b8c5c44-0000-4d8e-9a0e-5e2f3b7d9c11")
    assert orders.calls == []


async def test_listed_orders_prime_the_order_loader() -> None:
    orders = Orders()
    context = queries(orders=orders)
    await context.orders()
    assert await context.order(ORDER_ID) == ORDER
    assert [name for name, _ in orders.calls] == ["list_orders"]


async def test_summary_aggregates_caches_and_skips_degraded_answers() -> None:
    cache = Cache()
    result = await queries(cache=cache, shipping=Shipping(down=True)).summary(ORDER_ID)
    assert result.summary.estimated_delivery_date is None
    assert result.shipping_error is not None
    assert cache.entries == {}

    result = await queries(cache=cache).summary(ORDER_ID)
    assert result.summary.estimated_delivery_date == dt.date(2025, 3, 5)
    assert cache.entries[(USER, ORDER_ID)] == result.summary

    orders = Orders()
    cached = await queries(cache=cache, orders=orders).summary(ORDER_ID)
    assert cached.summary == result.summary
    assert orders.calls == []


async def test_summary_of_an_invisible_order_is_not_found_whatever_shipping_says() -> None:
    with pytest.raises(NotFoundError):
        await queries(Caller("someone-else")).summary(ORDER_ID)


async def test_cancel_drops_the_callers_cached_summary() -> None:
    cache = Cache()
    await cache.put(USER, SUMMARY)
    canceled = await queries(cache=cache).cancel_order(ORDER_ID)
    assert canceled.status is models.OrderStatus.CANCELED
    assert cache.entries == {}


async def test_create_order_is_for_the_caller_and_needs_items() -> None:
    orders = Orders()
    new = models.NewOrder(
        items=(models.RequestedItem(ORDER_ID.upper(), 1),),
        shipping_address=models.Address("R. A", "Recife", "PE", "50000-000"),
    )
    await queries(Caller(USER, is_admin=True), orders=orders).create_order(new)
    assert orders.calls == [("create_order", USER)]
    with pytest.raises(BadUserInputError):
        await queries(orders=orders).create_order(dataclasses.replace(new, items=()))
