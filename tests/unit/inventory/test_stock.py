"""Parsing requested items and the read-only availability decision."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from handwritten.inventory.domain.errors import InvalidInputError
from handwritten.inventory.domain.stock import (
    MAX_ITEMS,
    RequestedItem,
    StockLevel,
    UnavailableReason,
    assess,
    lock_order,
    parse_items,
    parse_uuid,
)

A, B, C = (uuid.UUID(int=n) for n in (3, 1, 2))


def level(product_id: uuid.UUID, available: int, price: str = "10.00") -> StockLevel:
    return StockLevel(product_id, f"Product {product_id.int}", Decimal(price), available)


def test_items_parse_into_typed_quantities() -> None:
    items = parse_items([(str(A), 2), (str(B).upper(), 1000)])
    assert items == (RequestedItem(A, 2), RequestedItem(B, 1000))


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ([], "items"),
        ([(str(uuid.uuid4()), 1)] * (MAX_ITEMS + 1), "items"),
        ([("not-a-uuid", 1)], "items[0].product_id"),
        ([(A.hex, 1)], "items[0].product_id"),  # not the canonical form
        ([(str(A), 0)], "items[0].quantity"),
        ([(str(A), 1001)], "items[0].quantity"),
        ([(str(A), 1), (str(A), 2)], "items[1].product_id"),
    ],
)
def test_malformed_items_are_rejected_with_the_offending_field(
    raw: list[tuple[str, int]], field: str
) -> None:
    with pytest.raises(InvalidInputError) as raised:
        parse_items(raw)
    assert field in {v.field for v in raised.value.violations}


def test_parse_uuid_names_the_field() -> None:
    with pytest.raises(InvalidInputError, match="order_id"):
        parse_uuid("", "order_id")


def test_everything_in_stock_is_available_with_quotes_in_request_order() -> None:
    stock = {A: level(A, 5, "59.90"), B: level(B, 1, "0.10")}
    result = assess([RequestedItem(A, 5), RequestedItem(B, 1)], stock)
    assert result.available
    assert [(q.product_id, q.unit_price, q.available_quantity) for q in result.quotes] == [
        (A, Decimal("59.90"), 5),
        (B, Decimal("0.10"), 1),
    ]


def test_shortage_and_unknown_products_are_both_reported() -> None:
    stock = {A: level(A, 2), B: level(B, 9)}
    result = assess([RequestedItem(C, 1), RequestedItem(A, 3), RequestedItem(B, 9)], stock)
    assert not result.available
    assert [
        (u.product_id, u.requested_quantity, u.available_quantity, u.reason)
        for u in result.unavailable
    ] == [
        (C, 1, 0, UnavailableReason.PRODUCT_NOT_FOUND),
        (A, 3, 2, UnavailableReason.INSUFFICIENT_STOCK),
    ]
    # Products that exist are quoted even when short: orders show why.
    assert [q.product_id for q in result.quotes] == [A, B]


def test_lock_order_is_sorted_and_deduplicated() -> None:
    assert lock_order([A, B, C, A]) == [B, C, A]
