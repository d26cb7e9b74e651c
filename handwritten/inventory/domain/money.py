"""Prices: exact decimals with two places in BRL, always greater than zero."""

from __future__ import annotations

import re
from decimal import Decimal

from handwritten.inventory.domain.errors import InvalidInputError

CENT = Decimal("0.01")
#: NUMERIC(10, 2): at most 8 integer digits.
MAX_PRICE = Decimal("99999999.99")
_PRICE_TEXT = re.compile(r"^-?\d{1,8}\.\d{2}$")


def parse_price(text: str, *, field: str = "price") -> Decimal:
    """The exact price written in ``text`` ("49.90"); ``InvalidInputError`` unless > 0.

    Only the wire form with exactly two decimals is accepted, so no value is ever
    rounded: what the client wrote is what is stored.
    """
    if not _PRICE_TEXT.fullmatch(text):
        raise InvalidInputError.single(
            field, "must be a decimal with exactly two places, e.g. 49.90"
        )
    value = Decimal(text)
    if value <= 0:
        raise InvalidInputError.single(field, "must be greater than zero")
    return value


def format_price(value: Decimal) -> str:
    """The wire form of a stored price: plain notation, exactly two places."""
    exact = value.quantize(CENT)
    if exact != value:
        # Never round silently: a price with more precision is a bug upstream.
        raise ValueError(f"{value} is not a whole number of cents")
    return format(exact, "f")
