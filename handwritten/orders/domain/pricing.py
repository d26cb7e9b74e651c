"""Pricing an order from inventory's answer: lines with prices, or what is missing.

Inventory is the only source of names and prices; this module only decides, from
its answer, whether the order can be placed and at which prices (pure).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from handwritten.orders.domain.money import Money
from handwritten.orders.domain.requests import RequestedLine


@dataclass(frozen=True)
class Quote:
    """Inventory's current name, unit price and stock of a requested product."""

    product_id: UUID
    name: str
    unit_price: Money
    available_quantity: int


@dataclass(frozen=True)
class Shortage:
    """A requested line inventory cannot serve (available 0 for an unknown product)."""

    product_id: UUID
    requested_quantity: int
    available_quantity: int


@dataclass(frozen=True)
class Availability:
    """Inventory's answer to a check of the requested lines."""

    available: bool
    quotes: tuple[Quote, ...]
    shortages: tuple[Shortage, ...]


@dataclass(frozen=True)
class PricedLine:
    """A requested line with the name and unit price inventory gave for it."""

    product_id: UUID
    product_name: str
    quantity: int
    unit_price: Money


@dataclass(frozen=True)
class Pricing:
    """Either the priced lines (the order can be placed) or the shortages."""

    lines: tuple[PricedLine, ...]
    shortages: tuple[Shortage, ...]


def price(requested: Sequence[RequestedLine], availability: Availability) -> Pricing:
    """The priced lines in request order, or the shortages (never both).

    Every requested product must be quoted with enough stock; a line inventory
    neither quoted nor reported short counts as unknown (0 available), so a partial
    answer can never produce an order with a missing line.
    """
    quotes = {quote.product_id: quote for quote in availability.quotes}
    reported = {shortage.product_id: shortage for shortage in availability.shortages}
    shortages: list[Shortage] = []
    lines: list[PricedLine] = []
    for line in requested:
        quote = quotes.get(line.product_id)
        if line.product_id in reported:
            shortage = reported[line.product_id]
            shortages.append(
                Shortage(line.product_id, line.quantity, max(0, shortage.available_quantity))
            )
        elif quote is None:
            shortages.append(Shortage(line.product_id, line.quantity, 0))
        elif quote.available_quantity < line.quantity:
            shortages.append(Shortage(line.product_id, line.quantity, quote.available_quantity))
        else:
            if quote.unit_price.amount <= 0:
                raise ValueError(
                    f"inventory priced product {line.product_id} at {quote.unit_price}"
                )
            lines.append(PricedLine(line.product_id, quote.name, line.quantity, quote.unit_price))
    if shortages:
        return Pricing((), tuple(shortages))
    if not availability.available:
        # Inventory said no but named nothing missing: refuse to guess.
        raise ValueError("inventory reported the order unavailable without any shortage")
    return Pricing(tuple(lines), ())
