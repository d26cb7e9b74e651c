"""The downstreams and the cache as the service layer sees them.

Every method either answers or raises a ``BffError``: ``ServiceUnavailableError``
when the downstream did not answer in time (or its breaker is open), a business
error (``NotFoundError``, ``ConflictError``…) when it answered with one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from handwritten.bff.domain.models import (
    NewOrder,
    Order,
    OrderPage,
    OrderStatus,
    OrderSummary,
    Product,
    Shipment,
)


class OrdersPort(Protocol):
    """``orders.v1.OrdersService``; ``scope`` is the caller's user id, empty for admins."""

    async def get_orders(self, order_ids: Sequence[str], *, scope: str) -> list[Order]:
        """The orders found among ``order_ids`` (unknown or out of scope: omitted)."""
        ...

    async def list_orders(
        self, *, scope: str, page_size: int, cursor: str | None, status: OrderStatus | None
    ) -> OrderPage: ...

    async def get_order_summary(self, order_id: str, *, scope: str) -> OrderSummary: ...

    async def create_order(self, order: NewOrder, *, user_id: str) -> Order:
        """The new PENDING order; ``InsufficientStockError`` when stock is missing."""
        ...

    async def cancel_order(self, order_id: str, *, scope: str) -> Order: ...


class InventoryPort(Protocol):
    async def get_products(self, product_ids: Sequence[str]) -> list[Product]:
        """The products found among ``product_ids`` (unknown: omitted)."""
        ...


class ShippingPort(Protocol):
    async def get_shipments(self, order_ids: Sequence[str]) -> list[Shipment]:
        """The shipments of the orders that have one."""
        ...


class SummaryCache(Protocol):
    """Short-lived, per-user cache of ``orderSummary`` (best effort: never fails a read)."""

    async def get(self, user_id: str, order_id: str) -> OrderSummary | None: ...

    async def put(self, user_id: str, summary: OrderSummary) -> None: ...

    async def invalidate(self, user_id: str, order_id: str) -> None: ...
