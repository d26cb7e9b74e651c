"""What a customer asks for, validated: requested lines, address, payment token.

REST already validates shapes through the generated models; gRPC messages carry
plain strings and ints, so the same rules are enforced here once for both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from handwritten.orders.domain.errors import FieldViolation, InvalidOrderError

#: The REST contract's limit (``items`` maxItems 50, request and response), so every
#: order, whichever API created it, can be shown by every API.
MAX_LINES = 50
MAX_QUANTITY = 1000
DEFAULT_PAYMENT_TOKEN = "tok_visa"  # noqa: S105 (a simulated gateway token, not a secret)

_NO_CONTROL = re.compile(r"^[^\x00-\x1F\x7F]+$")
_STATE = re.compile(r"^[A-Z]{2}$")
_ZIP = re.compile(r"^\d{5}-\d{3}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class RequestedLine:
    """One product and how many of it (prices are never taken from a request)."""

    product_id: UUID
    quantity: int


@dataclass(frozen=True)
class ShippingAddress:
    """A Brazilian delivery address."""

    street: str
    city: str
    state: str
    zip_code: str

    def to_json(self) -> dict[str, str]:
        return {
            "street": self.street,
            "city": self.city,
            "state": self.state,
            "zipCode": self.zip_code,
        }

    @classmethod
    def from_json(cls, data: dict[str, str]) -> ShippingAddress:
        return cls(data["street"], data["city"], data["state"], data["zipCode"])


def requested_lines(
    items: Sequence[tuple[str | UUID, int]], *, field: str = "items"
) -> tuple[RequestedLine, ...]:
    """``(product_id, quantity)`` pairs as lines: 1..50 of them, each product once."""
    violations: list[FieldViolation] = []
    if not 1 <= len(items) <= MAX_LINES:
        violations.append(FieldViolation(field, f"must hold between 1 and {MAX_LINES} items"))
    lines: list[RequestedLine] = []
    seen: set[UUID] = set()
    for index, (raw_id, quantity) in enumerate(items):
        where = f"{field}[{index}]"
        try:
            product_id = raw_id if isinstance(raw_id, UUID) else UUID(raw_id)
        except (ValueError, TypeError, AttributeError):
            violations.append(FieldViolation(f"{where}.productId", "must be a UUID"))
            continue
        if isinstance(quantity, bool) or not isinstance(quantity, int):
            violations.append(FieldViolation(f"{where}.quantity", "must be an integer"))
            continue
        if not 1 <= quantity <= MAX_QUANTITY:
            violations.append(
                FieldViolation(f"{where}.quantity", f"must be between 1 and {MAX_QUANTITY}")
            )
        if product_id in seen:
            violations.append(
                FieldViolation(f"{where}.productId", "each product may appear only once")
            )
        seen.add(product_id)
        lines.append(RequestedLine(product_id, quantity))
    if violations:
        raise InvalidOrderError(violations)
    return tuple(lines)


def shipping_address(
    street: str, city: str, state: str, zip_code: str, *, field: str = "shippingAddress"
) -> ShippingAddress:
    """A validated address (the REST contract's rules)."""
    violations: list[FieldViolation] = []
    for name, value, longest in (("street", street, 200), ("city", city, 100)):
        if not 1 <= len(value) <= longest or not _NO_CONTROL.fullmatch(value):
            violations.append(
                FieldViolation(
                    f"{field}.{name}", f"must be 1 to {longest} characters, no control characters"
                )
            )
    if not _STATE.fullmatch(state):
        violations.append(FieldViolation(f"{field}.state", "must be a two-letter state code"))
    if not _ZIP.fullmatch(zip_code):
        violations.append(FieldViolation(f"{field}.zipCode", "must be a CEP, NNNNN-NNN"))
    if violations:
        raise InvalidOrderError(violations)
    return ShippingAddress(street, city, state, zip_code)


def payment_token(token: str | None, *, field: str = "paymentMethod.token") -> str:
    """The simulated gateway token; absent or empty means the default ``tok_visa``."""
    if not token:
        return DEFAULT_PAYMENT_TOKEN
    if not _TOKEN.fullmatch(token):
        raise InvalidOrderError.single(field, "must be 1 to 64 letters, digits, '_' or '-'")
    return token
