# strawberry.field(description=...) is typed as returning Any (its mypy plugin is
# not used here), which would flag every described resolver as untyped.
# mypy: disable-error-code="untyped-decorator"
"""The web shape (``POST /graphql``): the seed's schema with everything a page shows.

Beyond the mobile shape it has the order's ``userId``, ``shippingAddress`` and
``updatedAt``; each item's ``subtotal`` and nested ``product`` (the catalogue's
current name, description, price and stock); the payment's ``processedAt`` and
``failureMessage``; the shipment's ``deliveredAt`` and full ``history``.
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


@strawberry.type(description="A product as the catalogue has it now (not at order time).")
class Product:
    id: strawberry.ID
    name: str
    description: str
    price: Money = strawberry.field(description="Current unit price.")
    available_quantity: int

    @strawberry.field
    def in_stock(self) -> bool:
        return self.available_quantity > 0


@strawberry.type(description="A line of an order.")
class OrderItem:
    product_id: strawberry.ID
    quantity: int
    price: Money = strawberry.field(description="Unit price at order time.")
    subtotal: Money = strawberry.field(description="price × quantity.")
    line: strawberry.Private[models.OrderLine]

    @strawberry.field(
        description=(
            "The product's current name in the catalogue. When inventory is unavailable: "
            "the name at order time, with an error entry (extensions.degraded) at this path."
        )
    )
    async def product_name(self, info: Info) -> str | None:
        return await resolvers.product_name(info, self.line)

    @strawberry.field(description="Catalogue details now; null if the product was removed.")
    async def product(self, info: Info) -> Product | None:
        found = await resolvers.product(info, self.line)
        return None if found is None else to_product(found)


@strawberry.type
class Payment:
    status: models.PaymentStatus
    processed_at: dt.datetime | None = strawberry.field(
        description="When the charge succeeded (or was refunded)."
    )
    failure_message: str | None


@strawberry.type(description="One status a shipment went through.")
class ShippingEvent:
    status: models.ShippingStatus
    location: str | None
    occurred_at: dt.datetime | None


@strawberry.type(description="The order's shipment, from the shipping service.")
class Shipping:
    tracking_code: str | None
    status: models.ShippingStatus
    estimated_delivery_date: dt.date | None
    delivered_at: dt.datetime | None
    history: list[ShippingEvent] = strawberry.field(description="Oldest first.")


@strawberry.type
class Address:
    street: str
    city: str
    state: str
    zip_code: str


@strawberry.type
class Order:
    id: strawberry.ID
    user_id: strawberry.ID
    status: models.OrderStatus
    total_amount: Money
    currency: str
    item_count: int
    shipping_address: Address | None
    payment: Payment | None = strawberry.field(description="Null until payment is requested.")
    cancel_reason: models.CancelReason | None
    created_at: dt.datetime
    updated_at: dt.datetime | None
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


def to_product(product: models.Product) -> Product:
    return Product(
        id=strawberry.ID(product.product_id),
        name=product.name,
        description=product.description,
        price=money(product.price),
        available_quantity=product.available_quantity,
    )


def to_item(line: models.OrderLine) -> OrderItem:
    return OrderItem(
        product_id=strawberry.ID(line.product_id),
        quantity=line.quantity,
        price=money(line.unit_price),
        subtotal=money(line.subtotal),
        line=line,
    )


def to_shipping(shipment: models.Shipment) -> Shipping:
    return Shipping(
        tracking_code=shipment.tracking_code or None,
        status=shipment.status,
        estimated_delivery_date=shipment.estimated_delivery_date,
        delivered_at=shipment.delivered_at,
        history=[
            ShippingEvent(
                status=change.status, location=change.location, occurred_at=change.occurred_at
            )
            for change in shipment.history
        ],
    )


def to_order(order: models.Order) -> Order:
    address = order.shipping_address
    payment = order.payment
    return Order(
        id=strawberry.ID(order.order_id),
        user_id=strawberry.ID(order.user_id),
        status=order.status,
        total_amount=money(order.total),
        currency=order.currency,
        item_count=order.item_count,
        shipping_address=None
        if address is None
        else Address(
            street=address.street, city=address.city, state=address.state, zip_code=address.zip_code
        ),
        payment=None
        if payment is None
        else Payment(
            status=payment.status,
            processed_at=payment.processed_at,
            failure_message=payment.failure_message,
        ),
        cancel_reason=order.cancel_reason,
        created_at=order.created_at,
        updated_at=order.updated_at,
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
