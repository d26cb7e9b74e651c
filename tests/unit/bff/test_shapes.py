"""The web and mobile shapes: same roots, different payloads, money as exact strings."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from graphql import GraphQLInputObjectType, GraphQLObjectType, GraphQLSchema, get_named_type

from handwritten.bff.domain import models
from handwritten.bff.entrypoints.graphql import mobile, web
from handwritten.bff.entrypoints.graphql.common import parse_money, serialize_money
from handwritten.bff.entrypoints.graphql.schema import SHAPES, Limits

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "handwritten" / "bff" / "schema"
NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)

ORDER = models.Order(
    order_id="o-1",
    user_id="u-1",
    status=models.OrderStatus.CONFIRMED,
    lines=(models.OrderLine("p-1", "Mouse", 2, Decimal("89.90")),),
    total=Decimal("179.80"),
    currency="BRL",
    created_at=NOW,
    updated_at=NOW,
    shipping_address=models.Address("R. A", "Recife", "PE", "50000-000"),
    payment=models.Payment(models.PaymentStatus.PROCESSED, processed_at=NOW),
)
SHIPMENT = models.Shipment(
    order_id="o-1",
    tracking_code="BR1",
    status=models.ShippingStatus.IN_TRANSIT,
    estimated_delivery_date=dt.date(2025, 3, 5),
    delivered_at=None,
    history=(models.ShipmentChange(models.ShippingStatus.SCHEDULED, "Recife, PE", NOW),),
)


def graphql_schema(shape: str) -> GraphQLSchema:
    return SHAPES[shape](Limits())._schema


def fields(shape: str, type_name: str) -> set[str]:
    found = graphql_schema(shape).get_type(type_name)
    assert isinstance(found, GraphQLObjectType)
    return set(found.fields)


def test_both_shapes_have_the_same_roots_and_arguments() -> None:
    for root in ("Query", "Mutation"):
        web_type = graphql_schema("web").get_type(root)
        mobile_type = graphql_schema("mobile").get_type(root)
        assert isinstance(web_type, GraphQLObjectType)
        assert isinstance(mobile_type, GraphQLObjectType)
        assert {n: set(f.args) for n, f in web_type.fields.items()} == {
            n: set(f.args) for n, f in mobile_type.fields.items()
        }
    assert fields("web", "Query") == {"order", "orders", "ordersPage", "orderSummary"}
    assert fields("web", "Mutation") == {"createOrder", "cancelOrder"}


def test_mobile_payloads_are_a_strict_subset_of_the_web_ones() -> None:
    expected_mobile_only_lacks = {
        "Order": {"userId", "shippingAddress", "updatedAt"},
        "OrderItem": {"subtotal", "product"},
        "Payment": {"processedAt", "failureMessage"},
        "Shipping": {"deliveredAt", "history"},
        "OrderSummary": set(),
        "OrderPage": set(),
    }
    for type_name, missing in expected_mobile_only_lacks.items():
        assert fields("mobile", type_name) <= fields("web", type_name), type_name
        assert fields("web", type_name) - fields("mobile", type_name) == missing, type_name
    # Types that exist only for the web's extra fields.
    for web_only in ("Product", "ShippingEvent", "Address"):
        assert graphql_schema("mobile").get_type(web_only) is None


def test_money_is_a_decimal_string_scalar_never_a_float() -> None:
    for shape in SHAPES:
        schema = graphql_schema(shape)
        used = {
            get_named_type(field.type).name
            for named in schema.type_map.values()
            if isinstance(named, GraphQLObjectType | GraphQLInputObjectType)
            for field in named.fields.values()
        }
        assert "Float" not in used
        assert {"Money", "DateTime"} <= used
        money_type = schema.get_type("Money")
        assert money_type is not None and "not Float" in (money_type.description or "")
    assert serialize_money(Decimal("179.8")) == "179.80"
    assert parse_money("0.10") + parse_money("0.20") == Decimal("0.30")
    for bad in (0.1, "abc", "Infinity"):
        with pytest.raises(ValueError):
            parse_money(bad)


def test_web_mapping_keeps_the_details() -> None:
    order = web.to_order(ORDER)
    assert order.user_id == "u-1"
    assert order.total_amount == Decimal("179.80")
    assert order.shipping_address is not None and order.shipping_address.city == "Recife"
    assert order.payment is not None and order.payment.processed_at == NOW
    (item,) = order.items()
    assert (item.price, item.subtotal) == (Decimal("89.90"), Decimal("179.80"))
    shipping = web.to_shipping(SHIPMENT)
    assert [event.location for event in shipping.history] == ["Recife, PE"]


def test_mobile_mapping_keeps_only_the_minimum() -> None:
    order = mobile.to_order(ORDER)
    assert (order.id, order.total_amount, order.item_count) == ("o-1", Decimal("179.80"), 2)
    assert not hasattr(order, "user_id") and not hasattr(order, "shipping_address")
    assert order.payment == mobile.Payment(status=models.PaymentStatus.PROCESSED)
    (item,) = order.items()
    assert (item.product_id, item.quantity, item.price) == ("p-1", 2, Decimal("89.90"))
    assert not hasattr(item, "subtotal") and not hasattr(item, "product")
    shipping = mobile.to_shipping(SHIPMENT)
    assert (shipping.status, shipping.tracking_code, shipping.estimated_delivery_date) == (
        models.ShippingStatus.IN_TRANSIT,
        "BR1",
        dt.date(2025, 3, 5),
    )


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_the_checked_in_sdl_is_current(shape: str) -> None:
    sdl = SHAPES[shape](Limits()).as_str() + "\n"
    assert (SCHEMA_DIR / f"{shape}.graphql").read_text() == sdl, (
        f"regenerate: python -m handwritten.bff schema {shape} > "
        f"handwritten/bff/schema/{shape}.graphql"
    )
