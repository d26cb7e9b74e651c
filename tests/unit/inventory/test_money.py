"""Prices are exact decimals with two places, greater than zero; never rounded."""

from __future__ import annotations

from decimal import Decimal

import pytest

from handwritten.inventory.domain.errors import InvalidInputError
from handwritten.inventory.domain.money import format_price, parse_price


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("49.90", Decimal("49.90")),
        ("0.01", Decimal("0.01")),
        ("99999999.99", Decimal("99999999.99")),
    ],
)
def test_valid_prices_parse_exactly(text: str, value: Decimal) -> None:
    parsed = parse_price(text)
    assert parsed == value
    assert format_price(parsed) == text


@pytest.mark.parametrize("text", ["0.00", "-1.00", "-0.01"])
def test_zero_and_negative_prices_are_rejected(text: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        parse_price(text)
    assert [(v.field, v.message) for v in raised.value.violations] == [
        ("price", "must be greater than zero")
    ]


@pytest.mark.parametrize("text", ["49.9", "49", "49.901", "1e2", "123456789.00", " 1.00", "NaN"])
def test_prices_not_in_the_two_decimal_form_are_rejected(text: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        parse_price(text, field="items[0].price")
    assert raised.value.violations[0].field == "items[0].price"


def test_format_keeps_two_places_and_plain_notation() -> None:
    assert format_price(Decimal("7.5")) == "7.50"
    assert format_price(Decimal("1E+2")) == "100.00"
    assert format_price(Decimal("0.10")) == "0.10"


def test_format_refuses_to_round_sub_cent_values() -> None:
    with pytest.raises(ValueError, match="cents"):
        format_price(Decimal("1.005"))
