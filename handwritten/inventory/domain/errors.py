"""Typed domain errors; each entrypoint maps them to its protocol's error shape."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class FieldViolation:
    """One reason a submitted field is not acceptable."""

    field: str
    message: str


class InventoryError(Exception):
    """Base class of the inventory domain errors."""


class InvalidInputError(InventoryError):
    """The request is well-formed for its protocol but breaks a domain rule."""

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        super().__init__("; ".join(f"{v.field}: {v.message}" for v in violations))
        self.violations = tuple(violations)

    @classmethod
    def single(cls, field: str, message: str) -> InvalidInputError:
        return cls([FieldViolation(field, message)])


class ProductNotFoundError(InventoryError):
    def __init__(self, product_id: UUID) -> None:
        super().__init__(f"product {product_id} does not exist")
        self.product_id = product_id


class ReservationNotFoundError(InventoryError):
    def __init__(self, order_id: UUID) -> None:
        super().__init__(f"order {order_id} has no reservation")
        self.order_id = order_id


class ReservationConflictError(InventoryError):
    """The order's reservation is in a state that does not allow the operation."""

    def __init__(self, order_id: UUID, reason: str) -> None:
        super().__init__(f"reservation of order {order_id}: {reason}")
        self.order_id = order_id
        self.reason = reason


class StockInvariantError(InventoryError):
    """A conditional stock update matched no row although the rules said it would.

    Raised inside the transaction so it rolls back: it signals a bug or manual
    tampering with the tables, never a normal business outcome.
    """
