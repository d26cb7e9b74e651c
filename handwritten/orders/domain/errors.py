"""Typed domain errors; each entrypoint maps them to its protocol's error shape."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True)
class FieldViolation:
    """One reason a submitted field is not acceptable (``field`` in request terms)."""

    field: str
    message: str


class OrderError(Exception):
    """Base class of the orders domain errors."""


class InvalidOrderError(OrderError):
    """The request is well-formed for its protocol but breaks an order rule (422)."""

    def __init__(self, violations: Sequence[FieldViolation]) -> None:
        super().__init__("; ".join(f"{v.field}: {v.message}" for v in violations))
        self.violations = tuple(violations)

    @classmethod
    def single(cls, field: str, message: str) -> InvalidOrderError:
        return cls([FieldViolation(field, message)])


class OrderNotFoundError(OrderError):
    """No such order, or not one the caller may see (404: the two look the same)."""

    def __init__(self, order_id: UUID) -> None:
        super().__init__(f"order {order_id} does not exist")
        self.order_id = order_id


class SagaNotFoundError(OrderError):
    """The order exists (and is visible) but has no saga instance (404)."""

    def __init__(self, order_id: UUID) -> None:
        super().__init__(f"order {order_id} has no saga")
        self.order_id = order_id


class OrderAlreadyExistsError(OrderError):
    """A create command for an id that already has events (a bug: ids are fresh)."""

    def __init__(self, order_id: UUID) -> None:
        super().__init__(f"order {order_id} already exists")
        self.order_id = order_id


class InvalidTransitionError(OrderError):
    """The command is not allowed in the order's current status (409)."""

    def __init__(self, order_id: UUID, status: str, action: str) -> None:
        super().__init__(f"order {order_id} is {status} and cannot be {action}")
        self.order_id = order_id
        self.status = status
        self.action = action
