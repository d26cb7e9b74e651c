"""gRPC messages → read models, and read models → the two GraphQL shapes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from generated.grpc.inventory import v1 as inventory_pb
from generated.grpc.orders import v1 as orders_pb
from generated.grpc.shipping import v1 as shipping_pb
from handwritten.bff.adapters.mapping import (
    create_request,
    order_from_grpc,
    page_from_grpc,
    product_from_grpc,
    shipment_from_grpc,
    status_to_grpc,
    summary_from_grpc,
)
from handwritten.bff.domain import models

NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


def grpc_order(**overrides: object) -> orders_pb.Order:
    values: dict[str, object] = {
        "order_id": "o-1",
        "user_id": "u-1",
        "status": orders_pb.OrderStatus.CONFIRMED,
        "items": [
            orders_pb.OrderItem(
                product_id="p-1", product_name="Mouse", quantity=3, unit_price="33.33"
            )
        ],
        "total_amount": "99.99",
        "currency": "BRL",
        "created_at": NOW,
        **overrides,
    }
    return orders_pb.Order(**values)


def test_order_money_is_exact_and_unset_proto_fields_are_none() -> None:
    order = order_from_grpc(grpc_order())

    assert order.total == Decimal("99.99")
    (line,) = order.lines
    assert line.unit_price == Decimal("33.33")
    assert line.subtotal == Decimal("99.99")
    assert order.item_count == 3
    assert order.payment is None
    assert order.shipping_address is None
    assert order.cancel_reason is None  # CANCEL_REASON_UNSPECIFIED
    assert order.status is models.OrderStatus.CONFIRMED


def test_order_payment_address_and_cancel_reason() -> None:
    order = order_from_grpc(
        grpc_order(
            status=orders_pb.OrderStatus.CANCELED,
            cancel_reason=orders_pb.CancelReason.PAYMENT_FAILED,
            payment=orders_pb.PaymentInfo(
                status=orders_pb.PaymentStatus.FAILED, failure_message="declined"
            ),
            shipping_address=orders_pb.ShippingAddress(
                street="R. A", city="Recife", state="PE", zip_code="50000-000"
            ),
        )
    )

    assert order.cancel_reason is models.CancelReason.PAYMENT_FAILED
    assert order.payment == models.Payment(
        status=models.PaymentStatus.FAILED, processed_at=None, failure_message="declined"
    )
    assert order.shipping_address == models.Address("R. A", "Recife", "PE", "50000-000")


def test_an_unspecified_payment_status_means_no_payment_yet() -> None:
    order = order_from_grpc(grpc_order(payment=orders_pb.PaymentInfo()))
    assert order.payment is None


@pytest.mark.parametrize(
    "broken",
    [
        {"total_amount": "12,50"},
        {"total_amount": "NaN"},
        {"created_at": None},
        {"status": orders_pb.OrderStatus.UNSPECIFIED},
    ],
)
def test_a_message_breaking_the_proto_rules_is_a_value_error(broken: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        order_from_grpc(grpc_order(**broken))


def test_page_cursor_empty_means_last_page() -> None:
    page = page_from_grpc(
        orders_pb.ListOrdersResponse(orders=[grpc_order()], next_page_token="", total_size=1)
    )
    assert page.next_cursor is None
    assert page.total_count == 1
    assert [order.order_id for order in page.orders] == ["o-1"]


def test_summary() -> None:
    summary = summary_from_grpc(
        orders_pb.OrderSummary(
            order_id="o-1",
            user_id="u-1",
            status=orders_pb.OrderStatus.SHIPPED,
            total_amount="10.00",
            item_count=2,
            payment_status=orders_pb.PaymentStatus.PROCESSED,
            shipping_status=orders_pb.ShippingStatus.IN_TRANSIT,
            tracking_code="",
            created_at=NOW,
        )
    )
    assert summary.total == Decimal("10.00")
    assert summary.currency == "BRL"  # proto3's empty string: the documented default
    assert summary.shipping_status is models.ShippingStatus.IN_TRANSIT
    assert summary.tracking_code is None
    assert summary.estimated_delivery_date is None  # filled in by the aggregation


def test_product_and_shipment() -> None:
    product = product_from_grpc(
        inventory_pb.Product(product_id="p-1", name="Mouse", price="89.90", available_quantity=4)
    )
    assert product.price == Decimal("89.90")

    shipment = shipment_from_grpc(
        shipping_pb.Shipment(
            order_id="o-1",
            tracking_code="BR1",
            status=shipping_pb.ShipmentStatus.IN_TRANSIT,
            estimated_delivery_date="2025-03-05",
            history=[
                shipping_pb.ShipmentStatusChange(
                    status=shipping_pb.ShipmentStatus.SCHEDULED, location="", occurred_at=NOW
                )
            ],
        )
    )
    assert shipment.estimated_delivery_date == dt.date(2025, 3, 5)
    assert shipment.history == (
        models.ShipmentChange(models.ShippingStatus.SCHEDULED, location=None, occurred_at=NOW),
    )
    with pytest.raises(ValueError):
        shipment_from_grpc(shipping_pb.Shipment(order_id="o", estimated_delivery_date="5/3"))


def test_create_request_carries_the_callers_id_and_no_prices() -> None:
    request = create_request(
        models.NewOrder(
            items=(models.RequestedItem("p-1", 2),),
            shipping_address=models.Address("R. A", "Recife", "PE", "50000-000"),
            payment_token="tok_visa",
            idempotency_key="k",
        ),
        user_id="u-9",
    )
    assert request.user_id == "u-9"
    assert [(i.product_id, i.quantity) for i in request.items] == [("p-1", 2)]
    assert request.shipping_address is not None
    assert request.shipping_address.state == "PE"
    assert (request.payment_method_token, request.idempotency_key) == ("tok_visa", "k")


def test_status_filter() -> None:
    assert status_to_grpc(None) is orders_pb.OrderStatus.UNSPECIFIED
    assert status_to_grpc(models.OrderStatus.SHIPPED) is orders_pb.OrderStatus.SHIPPED
