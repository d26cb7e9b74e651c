"""What the payment use cases need from the outside world; ``adapters`` implements it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol
from uuid import UUID

from handwritten.payment.domain.payments import Approved, ChargeResult, Payment


@dataclass(frozen=True)
class Cause:
    """The event a reply answers: its id (the reply's causation id) and correlation id."""

    event_id: UUID | None
    correlation_id: str | None


class PaymentRepository(Protocol):
    """Payments of orders, in the transaction of the event being handled."""

    async def claim(self, new: Payment) -> tuple[Payment, bool]:
        """The order's payment, row-locked until the transaction ends.

        Inserts ``new`` if the order has no payment yet (then returns it and
        ``True``); otherwise returns the existing one and ``False``. Two concurrent
        claims of one order serialize: the second waits for the first to commit.
        """
        ...

    async def save(self, payment: Payment) -> None:
        """Store the new state of a payment returned by ``claim`` or ``lock_stale``."""
        ...

    async def lock_stale_pending(self, older_than: timedelta, limit: int) -> list[Payment]:
        """PENDING payments created more than ``older_than`` ago, locked, skipping
        any another transaction is working on (a refund, another replica's job)."""
        ...

    async def now(self) -> datetime:
        """The database clock (one clock for every replica)."""
        ...


class PaymentReplies(Protocol):
    """The saga replies, recorded in the same transaction (the outbox)."""

    async def processed(self, payment: Payment, *, saga_id: UUID, cause: Cause) -> None: ...

    async def failed(self, payment: Payment, *, saga_id: UUID, cause: Cause) -> None: ...

    async def refunded(self, payment: Payment, *, saga_id: UUID, cause: Cause) -> None: ...


class UnitOfWork(Protocol):
    """One open database transaction, owned by the caller (consumer runner or job)."""

    @property
    def payments(self) -> PaymentRepository: ...

    @property
    def replies(self) -> PaymentReplies: ...


class GatewayError(RuntimeError):
    """The gateway failed an operation that must not be given up (a refund): retry."""


class PaymentGateway(Protocol):
    """The external payment gateway. ``key`` is the idempotency key (the order id):
    the gateway answers a repeated key with its first answer instead of charging again,
    which keeps "one charge per order" even if we crash between its answer and our commit.
    """

    async def charge(self, key: str, amount: Decimal, token: str) -> ChargeResult:
        """Take ``amount`` with ``token``; ``NoAnswer`` if the gateway stays silent."""
        ...

    async def settle_in_doubt(self, key: str) -> Approved | None:
        """Settle a charge whose answer never came: cancel it if it did not take the
        money (it can then never succeed later) and return ``None``; if it did,
        return the approval."""
        ...

    async def refund(self, key: str, transaction_id: str, amount: Decimal) -> None:
        """Give back an approved charge (idempotent per key); ``GatewayError`` to retry."""
        ...
