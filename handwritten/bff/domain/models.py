"""Read models the BFF aggregates from orders, inventory and shipping.

Plain frozen dataclasses, independent of gRPC and GraphQL: the adapters map gRPC
messages into them, the GraphQL types read from them. Money is ``Decimal`` (exact,
two places, BRL) from the wire's decimal strings to the client's; never a float.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum


class OrderStatus(Enum):
    PENDING = "PENDING"
    CONFIRMED = "CONFIRMED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELED = "CANCELED"


class CancelReason(Enum):
    OUT_OF_STOCK = "OUT_OF_STOCK"
    PAYMENT_FAILED = "PAYMENT_FAILED"
    PAYMENT_TIMEOUT = "PAYMENT_TIMEOUT"
    CUSTOMER_REQUEST = "CUSTOMER_REQUEST"


class PaymentStatus(Enum):
    PENDING = "PENDING"
    PROCESSED = "PROCESSED"
    FAILED = "FAILED"
    REFUNDED = "REFUNDED"


class ShippingStatus(Enum):
    SCHEDULED = "SCHEDULED"
    IN_TRANSIT = "IN_TRANSIT"
    DELIVERED = "DELIVERED"
    CANCELED = "CANCELED"


@dataclass(frozen=True)
class OrderLine:
    """A line of an order, priced (and named) by inventory when the order was made."""

    product_id: str
    #: The product's name at order time; empty if orders did not record one.
    product_name: str
    quantity: int
    unit_price: Decimal

    @property
    def subtotal(self) -> Decimal:
        return self.unit_price * self.quantity


@dataclass(frozen=True)
class Address:
    street: str
    city: str
    state: str
    zip_code: str


@dataclass(frozen=True)
class Payment:
    status: PaymentStatus
    processed_at: dt.datetime | None = None
    failure_message: str | None = None


@dataclass(frozen=True)
class Order:
    order_id: str
    user_id: str
    status: OrderStatus
    lines: tuple[OrderLine, ...]
    total: Decimal
    currency: str
    created_at: dt.datetime
    updated_at: dt.datetime | None = None
    shipping_address: Address | None = None
    payment: Payment | None = None
    cancel_reason: CancelReason | None = None

    @property
    def item_count(self) -> int:
        return sum(line.quantity for line in self.lines)


@dataclass(frozen=True)
class OrderPage:
    """One page of a listing, newest first."""

    orders: tuple[Order, ...]
    #: Pass as ``after`` to get the next page; ``None`` on the last page.
    next_cursor: str | None
    total_count: int


@dataclass(frozen=True)
class Product:
    """A product as the catalogue has it now (not at order time)."""

    product_id: str
    name: str
    description: str
    price: Decimal
    available_quantity: int


@dataclass(frozen=True)
class ShipmentChange:
    status: ShippingStatus
    location: str | None
    occurred_at: dt.datetime | None


@dataclass(frozen=True)
class Shipment:
    order_id: str
    tracking_code: str
    status: ShippingStatus
    estimated_delivery_date: dt.date | None
    delivered_at: dt.datetime | None
    history: tuple[ShipmentChange, ...]


@dataclass(frozen=True)
class OrderSummary:
    """The compact view of one order (``GetOrderSummary``)."""

    order_id: str
    user_id: str
    status: OrderStatus
    total: Decimal
    currency: str
    item_count: int
    payment_status: PaymentStatus | None
    shipping_status: ShippingStatus | None
    tracking_code: str | None
    cancel_reason: CancelReason | None
    created_at: dt.datetime
    updated_at: dt.datetime | None
    #: From shipping, not orders: filled in by the BFF's aggregation.
    estimated_delivery_date: dt.date | None = None


@dataclass(frozen=True)
class RequestedItem:
    product_id: str
    quantity: int


@dataclass(frozen=True)
class NewOrder:
    """What ``createOrder`` asks for; prices come from inventory, never from here."""

    items: tuple[RequestedItem, ...]
    shipping_address: Address
    #: Simulated gateway token; empty means the default (``tok_visa``).
    payment_token: str = ""
    #: Client idempotency key; empty means none.
    idempotency_key: str = ""


@dataclass(frozen=True)
class UnavailableProduct:
    product_id: str
    requested_quantity: int
    available_quantity: int
