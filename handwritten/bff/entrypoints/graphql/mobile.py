# strawberry.field(description=...) is typed as returning Any (its mypy plugin is
# not used here), which would flag every described resolver as untyped.
# mypy: disable-error-code="untyped-decorator"
"""The mobile shape (``POST /graphql/mobile``): same roots, minimal payloads.

Same root fields, arguments, enums, inputs and errors as the web shape; the types
carry only what a phone's order list and order screen show, so a client cannot
ask for (and a response never carries) the heavier parts:

- ``Order``: no ``userId``, ``shippingAddress`` or ``updatedAt``;
- ``OrderItem``: ``productId``, ``productName``, ``quantity``, ``price`` only (no
  ``subtotal``, no nested ``product``, so no catalogue details);
- ``Payment``: ``status`` only;
- ``Shipping``: ``status``, ``trackingCode``, ``estimatedDeliveryDate`` (no
  ``deliveredAt``, no ``history``);
- ``OrderSummary``, ``OrderPage`` (with mobile orders) as on the web.

The resolvers are the web's (``resolvers``): ``productName`` and ``shipping``
batch and degrade exactly the same way.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import strawberry

from handwritten.bff.domain import models
from handwritten.bff.entrypoints.graphql import resolvers
from handwritten.bff.entrypoints.graphql.common import (
    AFTER_DESCRIPTION,
    FIRST_DESCRIPTION,
    USER_ID_DESCRIPTION,
    CreateOrderInput,
    Info,
    Money,
    OrderSummary,
    money,
    to_summary,
)
from handwritten.bff.service_layer.queries import DEFAULT_PAGE_SIZE


@strawberry.type(description="A line of an order.")
class OrderItem:
    product_id: strawberry.ID
    quantity: int
    price: Money = strawberry.field(description="Unit price at order time.")
    line: strawberry.Private[models.OrderLine]

    @strawberry.field(
        description=(
            "The product's current name. When inventory is unavailable: the name at "
            "order time, with an error entry (extensions.degraded) at this path."
        )
    )
    async def product_name(self, info: Info) -> str | None:
        return await resolvers.product_name(info, self.line)


@strawberry.type
class Payment:
    status: models.PaymentStatus


@strawberry.type(description="The order's shipment, from the shipping service.")
class Shipping:
    status: models.ShippingStatus
    tracking_code: str | None
    estimated_delivery_date: dt.date | None


@strawberry.type
class Order:
    id: strawberry.ID
    status: models.OrderStatus
    total_amount: Money
    currency: str
    item_count: int
    payment: Payment | None
    cancel_reason: models.CancelReason | None
    created_at: dt.datetime
    view: strawberry.Private[models.Order]

    @strawberry.field
    def items(self) -> list[OrderItem]:
        return [to_item(line) for line in self.view.lines]

    @strawberry.field(
        description=(
            "Null until shipping schedules a shipment; null with an error entry "
            "(SERVICE_UNAVAILABLE) at this path when shipping is unavailable."
        )
    )
    async def shipping(self, info: Info) -> Shipping | None:
        found = await resolvers.shipment(info, self.view)
        return None if found is None else to_shipping(found)


@strawberry.type(description="A page of orders, newest first.")
class OrderPage:
    orders: list[Order]
    next_cursor: str | None = strawberry.field(description="Null on the last page.")
    total_count: int


# ---------------------------------------------------------------------- mapping


def to_item(line: models.OrderLine) -> OrderItem:
    return OrderItem(
        product_id=strawberry.ID(line.product_id),
        quantity=line.quantity,
        price=money(line.unit_price),
        line=line,
    )


def to_shipping(shipment: models.Shipment) -> Shipping:
    return Shipping(
        status=shipment.status,
        tracking_code=shipment.tracking_code or None,
        estimated_delivery_date=shipment.estimated_delivery_date,
    )


def to_order(order: models.Order) -> Order:
    return Order(
        id=strawberry.ID(order.order_id),
        status=order.status,
        total_amount=money(order.total),
        currency=order.currency,
        item_count=order.item_count,
        payment=None if order.payment is None else Payment(status=order.payment.status),
        cancel_reason=order.cancel_reason,
        created_at=order.created_at,
        view=order,
    )


# ------------------------------------------------------------------------ roots

UserIdArg = Annotated[strawberry.ID | None, strawberry.argument(description=USER_ID_DESCRIPTION)]
FirstArg = Annotated[int, strawberry.argument(description=FIRST_DESCRIPTION)]
AfterArg = Annotated[str | None, strawberry.argument(description=AFTER_DESCRIPTION)]


@strawberry.type
class Query:
    @strawberry.field(description="One order; null with NOT_FOUND if unknown or not yours.")
    async def order(self, info: Info, id: strawberry.ID) -> Order | None:
        return to_order(await resolvers.order(info, id))

    @strawberry.field(description="Orders, newest first (the first page; see ordersPage).")
    async def orders(
        self,
        info: Info,
        user_id: UserIdArg = None,
        status: models.OrderStatus | None = None,
        first: FirstArg = DEFAULT_PAGE_SIZE,
    ) -> list[Order]:
        page = await resolvers.orders(info, user_id=user_id, status=status, first=first, after=None)
        return [to_order(order) for order in page.orders]

    @strawberry.field(description="Orders page by page, newest first.")
    async def orders_page(
        self,
        info: Info,
        user_id: UserIdArg = None,
        status: models.OrderStatus | None = None,
        first: FirstArg = DEFAULT_PAGE_SIZE,
        after: AfterArg = None,
    ) -> OrderPage:
        page = await resolvers.orders(
            info, user_id=user_id, status=status, first=first, after=after
        )
        return OrderPage(
            orders=[to_order(order) for order in page.orders],
            next_cursor=page.next_cursor,
            total_count=page.total_count,
        )

    @strawberry.field(
        description="One order's summary; null with NOT_FOUND if unknown or not yours."
    )
    async def order_summary(self, info: Info, id: strawberry.ID) -> OrderSummary | None:
        return to_summary(await resolvers.order_summary(info, id))


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description=(
            "Places an order for the caller; it starts PENDING. Not enough stock: an "
            "INSUFFICIENT_STOCK error listing extensions.unavailableProducts."
        )
    )
    async def create_order(self, info: Info, input: CreateOrderInput) -> Order:
        return to_order(await resolvers.create_order(info, input))

    @strawberry.mutation(
        description="Cancels an order of the caller (any order for admins); CONFLICT once shipped."
    )
    async def cancel_order(self, info: Info, order_id: strawberry.ID) -> Order:
        return to_order(await resolvers.cancel_order(info, order_id))
