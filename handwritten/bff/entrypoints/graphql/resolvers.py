"""Resolvers both shapes share; they answer in read models, the shapes pick fields.

Each takes strawberry's ``info`` (whose context is the request's ``OrderQueries``)
and delegates to the service layer; a ``BffError`` raised here becomes an entry
of ``errors`` with the field's path, and the field is null.
"""

from __future__ import annotations

from handwritten.bff.domain import models
from handwritten.bff.entrypoints.graphql.common import CreateOrderInput, Info, to_new_order
from handwritten.bff.service_layer.queries import SummaryResult


async def order(info: Info, order_id: str) -> models.Order:
    return await info.context.order(order_id)


async def orders(
    info: Info,
    *,
    user_id: str | None,
    status: models.OrderStatus | None,
    first: int,
    after: str | None,
) -> models.OrderPage:
    return await info.context.orders(user_id=user_id, status=status, first=first, after=after)


async def order_summary(info: Info, order_id: str) -> SummaryResult:
    return await info.context.summary(order_id)


async def create_order(info: Info, data: CreateOrderInput) -> models.Order:
    return await info.context.create_order(to_new_order(data))


async def cancel_order(info: Info, order_id: str) -> models.Order:
    return await info.context.cancel_order(order_id)


async def shipment(info: Info, view: models.Order) -> models.Shipment | None:
    """The order's shipment (batched); shipping unavailable → null + error here."""
    return await info.context.shipment(view)


async def product_name(info: Info, line: models.OrderLine) -> str | None:
    """Current name (batched); inventory unavailable → the name at order time."""
    return await info.context.product_name(line, info.path.as_list())


async def product(info: Info, line: models.OrderLine) -> models.Product | None:
    return await info.context.product(line)
