"""Money: exact decimals with two places, in BRL — never a float.

Amounts travel as strings ("349.90") on every wire (REST, gRPC, Kafka, event
store) and are ``Decimal`` in memory, so a total is computed exactly and what was
read is what is written back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

CURRENCY = "BRL"
CENT = Decimal("0.01")
#: NUMERIC(10, 2) and the specs' ``^-?\d{1,8}\.\d{2}$``: at most 8 integer digits.
MAX_AMOUNT = Decimal("99999999.99")
_WIRE = re.compile(r"^-?\d{1,8}\.\d{2}$")


@dataclass(frozen=True, order=True)
class Money:
    """An amount of BRL, a whole number of cents."""

    amount: Decimal
    currency: str = CURRENCY

    def __post_init__(self) -> None:
        # bool and float are refused on purpose: a float has already lost the cents.
        if not isinstance(self.amount, Decimal):
            raise TypeError(f"money is a Decimal, not {type(self.amount).__name__}")
        if not self.amount.is_finite():
            raise ValueError("money is a finite amount")
        if self.amount != self.amount.quantize(CENT):
            raise ValueError(f"{self.amount} is not a whole number of cents")
        if self.currency != CURRENCY:
            raise ValueError(f"only {CURRENCY} is supported, not {self.currency}")
        # Normalise the exponent so equal amounts have equal fields (2.5 vs 2.50).
        object.__setattr__(self, "amount", self.amount.quantize(CENT))

    @classmethod
    def parse(cls, text: str) -> Money:
        """The amount written in ``text`` in the wire form ("49.90"), exactly."""
        if not isinstance(text, str) or not _WIRE.fullmatch(text):
            raise ValueError(f"{text!r} is not an amount with exactly two decimal places")
        return cls(Decimal(text))

    @classmethod
    def zero(cls) -> Money:
        return cls(Decimal("0.00"))

    def __add__(self, other: Money) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        if other.currency != self.currency:
            raise ValueError("cannot add amounts of different currencies")
        return Money(self.amount + other.amount, self.currency)

    def times(self, quantity: int) -> Money:
        """This amount ``quantity`` times (a line total)."""
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            raise TypeError("a quantity is an int")
        return Money(self.amount * quantity, self.currency)

    @property
    def fits_wire(self) -> bool:
        """Whether the amount has at most 8 integer digits, as every spec requires."""
        return abs(self.amount) <= MAX_AMOUNT

    def to_wire(self) -> str:
        """Plain notation with exactly two places ("1234.50")."""
        return format(self.amount, "f")

    def __str__(self) -> str:
        return f"{self.to_wire()} {self.currency}"
