"""Per-request DataLoaders: however many fields ask, one batched call per downstream.

Loaders are built for each GraphQL request (``OrderQueries`` does it), so they
batch and cache within that request only: what one caller loaded is never served
to another, and nothing goes stale across requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from strawberry.dataloader import DataLoader

from handwritten.bff.domain.access import Caller
from handwritten.bff.domain.models import Order, Product, Shipment
from handwritten.bff.service_layer.ports import InventoryPort, OrdersPort, ShippingPort

#: The batch RPCs accept at most 100 ids; a bigger batch is split by the loader.
MAX_BATCH = 100

T = TypeVar("T")


@dataclass(frozen=True)
class Downstreams:
    orders: OrdersPort
    inventory: InventoryPort
    shipping: ShippingPort


@dataclass(frozen=True)
class Loaders:
    #: Orders by id, in the caller's scope (``None``: unknown or not theirs).
    orders: DataLoader[str, Order | None]
    #: Products by id, as the catalogue has them now (``None``: no such product).
    products: DataLoader[str, Product | None]
    #: Shipments by order id (``None``: the order has no shipment yet).
    shipments: DataLoader[str, Shipment | None]


def in_request_order(keys: Sequence[str], found: dict[str, T]) -> list[T | None]:
    """A batch answer in the loader's key order (the RPCs omit what they did not find)."""
    return [found.get(key) for key in keys]


def build_loaders(downstreams: Downstreams, caller: Caller) -> Loaders:
    """Fresh loaders for one request of ``caller``."""

    async def load_orders(ids: list[str]) -> list[Order | None]:
        orders = await downstreams.orders.get_orders(ids, scope=caller.scope)
        return in_request_order(ids, {order.order_id: order for order in orders})

    async def load_products(ids: list[str]) -> list[Product | None]:
        products = await downstreams.inventory.get_products(ids)
        return in_request_order(ids, {product.product_id: product for product in products})

    async def load_shipments(order_ids: list[str]) -> list[Shipment | None]:
        shipments = await downstreams.shipping.get_shipments(order_ids)
        return in_request_order(order_ids, {item.order_id: item for item in shipments})

    return Loaders(
        orders=DataLoader(load_orders, max_batch_size=MAX_BATCH),
        products=DataLoader(load_products, max_batch_size=MAX_BATCH),
        shipments=DataLoader(load_shipments, max_batch_size=MAX_BATCH),
    )
