# strawberry.field(description=...) is typed as returning Any (its mypy plugin is
# not used here), which would flag every described resolver as untyped.
# mypy: disable-error-code="untyped-decorator"
"""What both shapes share: scalars, enums, inputs, ``OrderSummary``, argument mapping.

``Money`` deviates from the seed's ``Float`` on purpose (see its description); the
seed's ``DateTime`` and ``Date`` are strawberry's ISO 8601 scalars.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any, NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

from handwritten.bff.domain import models
from handwritten.bff.domain.errors import ServiceUnavailableError
from handwritten.bff.service_layer.queries import OrderQueries, SummaryResult

#: ``info`` of every resolver: its context is the request's ``OrderQueries``.
Info = strawberry.Info[OrderQueries, None]

Money = NewType("Money", Decimal)

MONEY_DESCRIPTION = (
    "An exact amount of money in BRL with two decimal places, as a string "
    '(e.g. "99.80"). Deliberately not Float, unlike the original plan: binary '
    "floating point cannot represent most cent values exactly (0.1 + 0.2 != 0.3), "
    "and money is exact end to end in this platform (Decimal in the services, "
    "decimal strings on the wire)."
)


def serialize_money(value: Decimal) -> str:
    return f"{value:.2f}"


def parse_money(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise ValueError('Money is a decimal string such as "99.80".')
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal amount.") from None
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not a finite amount.")
    return amount


SCALARS: dict[object, ScalarDefinition] = {
    Money: strawberry.scalar(
        name="Money",
        description=MONEY_DESCRIPTION,
        serialize=serialize_money,
        parse_value=parse_money,
    )
}

# The domain's enums are the schema's enums; only their descriptions are added here.
strawberry.enum(
    models.OrderStatus,
    description="PENDING → CONFIRMED → SHIPPED → DELIVERED, or CANCELED.",
)
strawberry.enum(models.CancelReason, description="Why an order was canceled.")
strawberry.enum(models.PaymentStatus, description="The order's payment, as orders knows it.")
strawberry.enum(
    models.ShippingStatus, description="SCHEDULED → IN_TRANSIT → DELIVERED, or CANCELED."
)


def money(value: Decimal) -> Money:
    return Money(value)


# ----------------------------------------------------------------------- inputs


@strawberry.input(description="A requested line: which product and how many (1..1000).")
class OrderItemInput:
    product_id: strawberry.ID
    quantity: int


@strawberry.input(description="Brazilian delivery address.")
class ShippingAddressInput:
    street: str
    city: str
    state: str = strawberry.field(description='Two-letter state code (UF), e.g. "SP".')
    zip_code: str = strawberry.field(description='CEP, "NNNNN-NNN".')


@strawberry.input(description="How to pay (simulated gateway).")
class PaymentMethodInput:
    token: str = strawberry.field(
        description='"tok_visa" succeeds, "tok_chargeDeclined" fails, "tok_timeout" never answers.'
    )


@strawberry.input(description="A new order; prices come from inventory, never from the client.")
class CreateOrderInput:
    items: list[OrderItemInput] = strawberry.field(description="1..100 lines, one per product.")
    shipping_address: ShippingAddressInput
    payment_method: PaymentMethodInput | None = None
    idempotency_key: str | None = strawberry.field(
        default=None,
        description=(
            "Optional; the same key with the same input returns the first order again "
            "instead of creating another one (at most 255 printable ASCII characters)."
        ),
    )


def to_new_order(data: CreateOrderInput) -> models.NewOrder:
    address = data.shipping_address
    return models.NewOrder(
        items=tuple(
            models.RequestedItem(product_id=str(item.product_id), quantity=item.quantity)
            for item in data.items
        ),
        shipping_address=models.Address(
            street=address.street, city=address.city, state=address.state, zip_code=address.zip_code
        ),
        payment_token="" if data.payment_method is None else data.payment_method.token,
        idempotency_key=data.idempotency_key or "",
    )


# --------------------------------------------------------------- OrderSummary


@strawberry.type(
    description=(
        "Compact view of one order for lists and widgets, aggregated from orders and "
        "shipping and cached per user for a few seconds."
    )
)
class OrderSummary:
    id: strawberry.ID
    status: models.OrderStatus
    total_amount: Money
    currency: str
    item_count: int = strawberry.field(description="Sum of the quantities of all lines.")
    payment_status: models.PaymentStatus | None
    shipping_status: models.ShippingStatus | None
    tracking_code: str | None
    cancel_reason: models.CancelReason | None
    created_at: dt.datetime
    updated_at: dt.datetime | None
    estimate: strawberry.Private[dt.date | None]
    shipping_error: strawberry.Private[ServiceUnavailableError | None]

    @strawberry.field(description="From shipping; null until a shipment is scheduled.")
    def estimated_delivery_date(self) -> dt.date | None:
        if self.shipping_error is not None:
            raise self.shipping_error
        return self.estimate


def to_summary(result: SummaryResult) -> OrderSummary:
    summary = result.summary
    return OrderSummary(
        id=strawberry.ID(summary.order_id),
        status=summary.status,
        total_amount=money(summary.total),
        currency=summary.currency,
        item_count=summary.item_count,
        payment_status=summary.payment_status,
        shipping_status=summary.shipping_status,
        tracking_code=summary.tracking_code,
        cancel_reason=summary.cancel_reason,
        created_at=summary.created_at,
        updated_at=summary.updated_at,
        estimate=summary.estimated_delivery_date,
        shipping_error=result.shipping_error,
    )


#: Orders per page unless the client says otherwise (1..100).
FIRST_DESCRIPTION = "Page size, 1..100."
AFTER_DESCRIPTION = "The nextCursor of the previous page; omit for the first page."
USER_ID_DESCRIPTION = (
    "Whose orders: admins may name anyone (or omit it for everyone's); "
    "customers may only name themselves (omitted: their own)."
)
