"""Products of the catalogue and the admin's changes to them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from handwritten.inventory.domain.errors import FieldViolation, InvalidInputError
from handwritten.inventory.domain.money import parse_price

#: Bounds of the stock an admin can set (the OpenAPI limits, enforced here too).
MAX_STOCK = 1_000_000


@dataclass(frozen=True)
class Product:
    """A product with its current price and stock levels."""

    product_id: UUID
    name: str
    description: str
    price: Decimal
    available_quantity: int
    reserved_quantity: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class NewProduct:
    """A validated product to add to the catalogue."""

    name: str
    description: str
    price: Decimal
    available_quantity: int


@dataclass(frozen=True)
class ProductChanges:
    """Validated partial update: ``None`` leaves a field as it is."""

    name: str | None = None
    description: str | None = None
    price: Decimal | None = None
    available_quantity: int | None = None

    @property
    def is_empty(self) -> bool:
        return all(
            value is None
            for value in (self.name, self.description, self.price, self.available_quantity)
        )


def _check_stock(value: int, field: str) -> list[FieldViolation]:
    if not 0 <= value <= MAX_STOCK:
        return [FieldViolation(field, f"must be between 0 and {MAX_STOCK}")]
    return []


def _check_name(value: str, field: str) -> list[FieldViolation]:
    if not value.strip():
        return [FieldViolation(field, "must not be blank")]
    return []


def new_product(*, name: str, description: str, price: str, available_quantity: int) -> NewProduct:
    """Validate a product to create; ``InvalidInputError`` lists every violation."""
    violations = _check_name(name, "name") + _check_stock(available_quantity, "availableQuantity")
    parsed: Decimal | None = None
    try:
        parsed = parse_price(price)
    except InvalidInputError as exc:
        violations.extend(exc.violations)
    if violations or parsed is None:
        raise InvalidInputError(violations)
    return NewProduct(name, description, parsed, available_quantity)


def product_changes(
    *,
    name: str | None = None,
    description: str | None = None,
    price: str | None = None,
    available_quantity: int | None = None,
) -> ProductChanges:
    """Validate a partial update; at least one field must be given."""
    violations: list[FieldViolation] = []
    if name is not None:
        violations += _check_name(name, "name")
    if available_quantity is not None:
        violations += _check_stock(available_quantity, "availableQuantity")
    parsed: Decimal | None = None
    if price is not None:
        try:
            parsed = parse_price(price)
        except InvalidInputError as exc:
            violations.extend(exc.violations)
    changes = ProductChanges(name, description, parsed, available_quantity)
    if not violations and changes.is_empty:
        violations.append(FieldViolation("body", "at least one field must be given"))
    if violations:
        raise InvalidInputError(violations)
    return changes
