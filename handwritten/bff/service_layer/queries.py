"""The resolver layer both schema shapes share: one ``OrderQueries`` per request.

It holds the request's caller, its DataLoaders and the degradations noticed while
resolving, and answers in read models (``domain.models``); the web and mobile
schemas only choose which parts to show. Downstream calls that do not depend on
each other run concurrently: the loaders gather the fields of one execution step
into one batched call per downstream, and ``summary`` asks orders and shipping at
the same time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from handwritten.bff.domain.access import Caller, listing_scope
from handwritten.bff.domain.errors import (
    BadUserInputError,
    BffError,
    NotFoundError,
    ServiceUnavailableError,
)
from handwritten.bff.domain.models import (
    NewOrder,
    Order,
    OrderLine,
    OrderPage,
    OrderStatus,
    OrderSummary,
    Product,
    Shipment,
)
from handwritten.bff.service_layer.loaders import MAX_BATCH, Downstreams, build_loaders
from handwritten.bff.service_layer.ports import SummaryCache

#: Orders per page when the client does not say (the orders service's default too).
DEFAULT_PAGE_SIZE = 20


@dataclass(frozen=True)
class Degradation:
    """A field answered with fallback data because a downstream was unavailable.

    GraphQL attaches an error to a field only by nulling it; a degraded value is
    reported as an extra ``errors`` entry with the field's path, next to the value.
    """

    path: tuple[str | int, ...]
    error: BffError
    fallback: str

    def formatted(self) -> dict[str, Any]:
        return {
            "message": f"{self.error.message} Showing {self.fallback} instead.",
            "path": list(self.path),
            "extensions": {**self.error.as_extensions(), "degraded": True},
        }


@dataclass(frozen=True)
class SummaryResult:
    summary: OrderSummary
    #: Why ``estimated_delivery_date`` is missing, when shipping did not answer.
    shipping_error: ServiceUnavailableError | None = None


def canonical_id(text: str, field: str) -> str:
    """``text`` as a canonical UUID string (the loaders' keys), or a client error."""
    try:
        return str(UUID(text))
    except ValueError:
        raise BadUserInputError(f"{field} must be a UUID.", field=field) from None


class OrderQueries:
    """Everything a request of ``caller`` may ask (the GraphQL ``info.context``)."""

    def __init__(self, downstreams: Downstreams, cache: SummaryCache, caller: Caller) -> None:
        self.caller = caller
        self.loaders = build_loaders(downstreams, caller)
        self.degradations: list[Degradation] = []
        self._downstreams = downstreams
        self._cache = cache

    def degrade(self, path: Sequence[str | int], error: BffError, *, fallback: str) -> None:
        self.degradations.append(Degradation(tuple(path), error, fallback))

    # ------------------------------------------------------------------ orders

    async def order(self, order_id: str) -> Order:
        """One order the caller may see; ``NotFoundError`` for others' orders too."""
        key = canonical_id(order_id, "id")
        order = await self.loaders.orders.load(key)
        if order is None:
            raise NotFoundError(f"Order {key} was not found.", id=key)
        return order

    async def orders(
        self,
        *,
        user_id: str | None = None,
        status: OrderStatus | None = None,
        first: int = DEFAULT_PAGE_SIZE,
        after: str | None = None,
    ) -> OrderPage:
        """A page of orders, newest first (the caller's own unless admin)."""
        if not 1 <= first <= MAX_BATCH:
            raise BadUserInputError(f"first must be between 1 and {MAX_BATCH}.", field="first")
        owner = None if user_id is None else canonical_id(user_id, "userId")
        page = await self._downstreams.orders.list_orders(
            scope=listing_scope(self.caller, owner),
            page_size=first,
            cursor=after or None,
            status=status,
        )
        # The listed orders are in the caller's scope: a later order(id:) of the same
        # request is answered from here instead of another call.
        for order in page.orders:
            self.loaders.orders.prime(order.order_id, order)
        return page

    async def shipment(self, order: Order) -> Shipment | None:
        """The order's shipment, ``None`` before shipping scheduled one."""
        return await self.loaders.shipments.load(order.order_id)

    # ---------------------------------------------------------------- products

    async def product(self, line: OrderLine) -> Product | None:
        """The line's product as the catalogue has it now; ``None`` if it was removed."""
        return await self.loaders.products.load(line.product_id)

    async def product_name(self, line: OrderLine, path: Sequence[str | int]) -> str | None:
        """The product's current catalogue name.

        Inventory unavailable: the name recorded on the order line (at order time),
        reported as a degradation at ``path``; without one, the error nulls the field.
        A product no longer in the catalogue keeps its name at order time.
        """
        try:
            product = await self.loaders.products.load(line.product_id)
        except ServiceUnavailableError as exc:
            if not line.product_name:
                raise
            self.degrade(path, exc, fallback="the product's name at order time")
            return line.product_name
        if product is None:
            return line.product_name or None
        return product.name

    # ----------------------------------------------------------------- summary

    async def summary(self, order_id: str) -> SummaryResult:
        """The order's summary from orders, with the delivery estimate from shipping.

        Cached per user for a few seconds (complete answers only). Orders and
        shipping are asked concurrently; shipping's answer is used only once orders
        has said the caller may see the order, so nothing leaks from asking early.
        """
        key = canonical_id(order_id, "id")
        user = self.caller.user_id
        cached = await self._cache.get(user, key)
        if cached is not None:
            return SummaryResult(cached)
        summary, shipment = await asyncio.gather(
            self._downstreams.orders.get_order_summary(key, scope=self.caller.scope),
            self.loaders.shipments.load(key),
            return_exceptions=True,
        )
        if isinstance(summary, BaseException):
            raise summary
        shipping_error: ServiceUnavailableError | None = None
        estimate: dt.date | None = None
        if isinstance(shipment, ServiceUnavailableError):
            shipping_error = shipment
        elif isinstance(shipment, BaseException):
            raise shipment
        elif shipment is not None:
            estimate = shipment.estimated_delivery_date
        summary = dataclasses.replace(summary, estimated_delivery_date=estimate)
        if shipping_error is None:
            await self._cache.put(user, summary)
        return SummaryResult(summary, shipping_error)

    # --------------------------------------------------------------- mutations

    async def create_order(self, new_order: NewOrder) -> Order:
        """Place an order for the caller (admins too order for themselves)."""
        if not new_order.items:
            raise BadUserInputError("items must not be empty.", field="items")
        items = tuple(
            dataclasses.replace(item, product_id=canonical_id(item.product_id, "productId"))
            for item in new_order.items
        )
        order = await self._downstreams.orders.create_order(
            dataclasses.replace(new_order, items=items), user_id=self.caller.user_id
        )
        self.loaders.orders.prime(order.order_id, order, force=True)
        return order

    async def cancel_order(self, order_id: str) -> Order:
        """Cancel an order the caller may see (``NotFoundError`` otherwise)."""
        key = canonical_id(order_id, "orderId")
        order = await self._downstreams.orders.cancel_order(key, scope=self.caller.scope)
        await self._cache.invalidate(self.caller.user_id, key)
        self.loaders.orders.prime(key, order, force=True)
        return order
