"""Request validation (shared by REST and gRPC) and pricing from inventory's answer."""

from __future__ import annotations

import uuid

import pytest

from handwritten.orders.domain.errors import InvalidOrderError
from handwritten.orders.domain.money import Money
from handwritten.orders.domain.pricing import Availability, Quote, Shortage, price
from handwritten.orders.domain.requests import (
    RequestedLine,
    payment_token,
    requested_lines,
    shipping_address,
)


def test_requested_lines_parse_and_keep_order() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    assert requested_lines([(str(a), 2), (b, 1)]) == (RequestedLine(a, 2), RequestedLine(b, 1))


def test_requested_lines_report_every_violation_with_its_field() -> None:
    same = uuid.uuid4()
    with pytest.raises(InvalidOrderError) as raised:
        requested_lines([(same, 0), (same, 1), ("not-a-uuid", 1), (uuid.uuid4(), 1001)])
    fields = {violation.field for violation in raised.value.violations}
    assert fields == {
        "items[0].quantity",
        "items[1].productId",
        "items[2].productId",
        "items[3].quantity",
    }


@pytest.mark.parametrize("count", [0, 51])
def test_between_one_and_fifty_lines(count: int) -> None:
    with pytest.raises(InvalidOrderError, match="between 1 and 50"):
        requested_lines([(uuid.uuid4(), 1) for _ in range(count)])


def test_addresses_follow_the_rest_contract() -> None:
    assert shipping_address("Rua A, 1", "Recife", "PE", "50000-000").state == "PE"
    with pytest.raises(InvalidOrderError) as raised:
        shipping_address("", "x" * 101, "sp", "50000000")
    assert len(raised.value.violations) == 4


def test_payment_token_defaults_to_tok_visa() -> None:
    assert payment_token(None) == "tok_visa"
    assert payment_token("") == "tok_visa"
    assert payment_token("tok_chargeDeclined") == "tok_chargeDeclined"
    with pytest.raises(InvalidOrderError):
        payment_token("tok visa")


def _quote(product_id: uuid.UUID, available: int, price_text: str = "10.00") -> Quote:
    return Quote(product_id, "Product", Money.parse(price_text), available)


def test_prices_come_from_the_quotes_in_request_order() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    lines = (RequestedLine(a, 2), RequestedLine(b, 1))
    pricing = price(lines, Availability(True, (_quote(b, 5, "1.50"), _quote(a, 2, "349.90")), ()))
    assert pricing.shortages == ()
    assert [(line.product_id, line.unit_price.to_wire()) for line in pricing.lines] == [
        (a, "349.90"),
        (b, "1.50"),
    ]


def test_any_shortage_means_no_lines() -> None:
    a, b, unknown = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    lines = (RequestedLine(a, 3), RequestedLine(b, 1), RequestedLine(unknown, 4))
    availability = Availability(
        False, (_quote(a, 2), _quote(b, 9)), (Shortage(a, 3, 2), Shortage(unknown, 4, 0))
    )
    pricing = price(lines, availability)
    assert pricing.lines == ()
    assert pricing.shortages == (Shortage(a, 3, 2), Shortage(unknown, 4, 0))


def test_a_line_inventory_did_not_quote_counts_as_unknown() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    pricing = price(
        (RequestedLine(a, 1), RequestedLine(b, 1)), Availability(True, (_quote(a, 1),), ())
    )
    assert pricing.shortages == (Shortage(b, 1, 0),)


def test_quotes_with_too_little_stock_are_short_even_if_inventory_said_available() -> None:
    a = uuid.uuid4()
    pricing = price((RequestedLine(a, 5),), Availability(True, (_quote(a, 4),), ()))
    assert pricing.shortages == (Shortage(a, 5, 4),)
