"""Requested quantities and the read-only availability decision."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from handwritten.inventory.domain.errors import FieldViolation, InvalidInputError

#: Limits of one request (the proto's documented bounds).
MAX_ITEMS = 100
MAX_QUANTITY = 1000
_CANONICAL_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


class UnavailableReason(StrEnum):
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    PRODUCT_NOT_FOUND = "PRODUCT_NOT_FOUND"


@dataclass(frozen=True)
class RequestedItem:
    """A quantity (1..1000) of one product."""

    product_id: UUID
    quantity: int


@dataclass(frozen=True)
class StockLevel:
    """What the availability decision needs to know about one product."""

    product_id: UUID
    name: str
    unit_price: Decimal
    available_quantity: int


@dataclass(frozen=True)
class Unavailable:
    """A requested item that cannot be served, and why."""

    product_id: UUID
    requested_quantity: int
    available_quantity: int
    reason: UnavailableReason


@dataclass(frozen=True)
class Quote:
    """Current name, unit price and stock of a requested product that exists."""

    product_id: UUID
    name: str
    unit_price: Decimal
    requested_quantity: int
    available_quantity: int


@dataclass(frozen=True)
class Availability:
    """Outcome of checking every requested item against the stock."""

    quotes: tuple[Quote, ...]
    unavailable: tuple[Unavailable, ...]

    @property
    def available(self) -> bool:
        return not self.unavailable


def parse_uuid(text: str, field: str) -> UUID:
    """A UUID in canonical text form; ``InvalidInputError`` otherwise."""
    if not _CANONICAL_UUID.fullmatch(text):
        raise InvalidInputError.single(field, "must be a UUID in canonical form")
    return UUID(text)


def parse_items(
    raw: Sequence[tuple[str, int]], *, field: str = "items"
) -> tuple[RequestedItem, ...]:
    """Validate ``(product_id, quantity)`` pairs: 1..100 of them, ids unique, 1..1000 each."""
    if not 1 <= len(raw) <= MAX_ITEMS:
        raise InvalidInputError.single(field, f"must hold between 1 and {MAX_ITEMS} items")
    violations: list[FieldViolation] = []
    items: list[RequestedItem] = []
    seen: set[UUID] = set()
    for index, (product_text, quantity) in enumerate(raw):
        where = f"{field}[{index}]"
        try:
            product_id = parse_uuid(product_text, f"{where}.product_id")
        except InvalidInputError as exc:
            violations.extend(exc.violations)
            continue
        if product_id in seen:
            violations.append(FieldViolation(f"{where}.product_id", "appears more than once"))
        seen.add(product_id)
        if not 1 <= quantity <= MAX_QUANTITY:
            violations.append(
                FieldViolation(f"{where}.quantity", f"must be between 1 and {MAX_QUANTITY}")
            )
        items.append(RequestedItem(product_id, quantity))
    if violations:
        raise InvalidInputError(violations)
    return tuple(items)


def assess(items: Iterable[RequestedItem], stock: Mapping[UUID, StockLevel]) -> Availability:
    """Which items the stock can serve; quotes and shortfalls keep the request order."""
    quotes: list[Quote] = []
    unavailable: list[Unavailable] = []
    for item in items:
        level = stock.get(item.product_id)
        if level is None:
            unavailable.append(
                Unavailable(item.product_id, item.quantity, 0, UnavailableReason.PRODUCT_NOT_FOUND)
            )
            continue
        quotes.append(
            Quote(
                item.product_id,
                level.name,
                level.unit_price,
                item.quantity,
                level.available_quantity,
            )
        )
        if level.available_quantity < item.quantity:
            unavailable.append(
                Unavailable(
                    item.product_id,
                    item.quantity,
                    level.available_quantity,
                    UnavailableReason.INSUFFICIENT_STOCK,
                )
            )
    return Availability(tuple(quotes), tuple(unavailable))


def lock_order(product_ids: Iterable[UUID]) -> list[UUID]:
    """The one order in which any transaction locks product rows.

    Every writer (reserve, commit, release, expiry) touches products in this order,
    so two transactions never wait on each other's rows in a cycle (no deadlock).
    """
    return sorted(set(product_ids))
