"""Amounts: exact decimals with two places in BRL, never floats."""

from __future__ import annotations

import re
from decimal import Decimal

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
_AMOUNT_TEXT = re.compile(r"^-?\d{1,8}\.\d{2}$")


def parse_amount(text: str) -> Decimal:
    """The exact amount written in ``text`` ("49.90"); ``ValueError`` if not that form.

    Only the wire form with exactly two decimals is accepted, so nothing is rounded.
    Whether the amount is acceptable (greater than zero) is a payment decision, not
    a parsing one.
    """
    if not _AMOUNT_TEXT.fullmatch(text):
        raise ValueError(f"{text!r} is not an amount with exactly two decimal places")
    return Decimal(text)


def format_amount(value: Decimal) -> str:
    """The wire form of an amount: plain notation, exactly two places."""
    exact = value.quantize(CENT)
    if exact != value:
        # Never round silently: more precision than cents is a bug upstream.
        raise ValueError(f"{value} is not a whole number of cents")
    return format(exact, "f")
