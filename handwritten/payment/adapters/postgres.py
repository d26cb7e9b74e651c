"""PostgreSQL payments repository, the unit of work over one open transaction, and
the read-only query of the REST API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from handwritten.payment.domain.payments import FailureReason, Payment, PaymentStatus
from handwritten.payment.service_layer.ports import PaymentReplies, PaymentRepository, UnitOfWork

_COLUMNS = (
    "payment_id, order_id, saga_id, user_id, amount, status, payment_method,"
    " gateway_transaction_id, failure_reason, failure_message, requested_at,"
    " processed_at, closed_at, request_event_id, correlation_id"
)
# Statements built once from the constant column list above (no input is interpolated).
_INSERT_UNLESS_CLAIMED = (
    f"INSERT INTO payments ({_COLUMNS})"  # noqa: S608 - constant column list
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
    f" ON CONFLICT (order_id) DO NOTHING RETURNING {_COLUMNS}"
)
_LOCK_OF_ORDER = f"SELECT {_COLUMNS} FROM payments WHERE order_id = $1 FOR UPDATE"  # noqa: S608
_LOCK_STALE_PENDING = (
    f"SELECT {_COLUMNS} FROM payments"  # noqa: S608 - constant column list
    " WHERE status = 'PENDING' AND created_at < now() - $1::interval"
    " ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED"
)
_OF_ORDER = (
    f"SELECT {_COLUMNS}, created_at, updated_at FROM payments"  # noqa: S608 - constant columns
    " WHERE order_id = $1"
)


def _payment(row: asyncpg.Record) -> Payment:
    reason = row["failure_reason"]
    return Payment(
        payment_id=row["payment_id"],
        order_id=row["order_id"],
        saga_id=row["saga_id"],
        user_id=row["user_id"],
        amount=row["amount"],
        status=PaymentStatus(row["status"]),
        payment_method=row["payment_method"],
        requested_at=row["requested_at"],
        gateway_transaction_id=row["gateway_transaction_id"],
        failure_reason=None if reason is None else FailureReason(reason),
        failure_message=row["failure_message"],
        processed_at=row["processed_at"],
        closed_at=row["closed_at"],
        request_event_id=row["request_event_id"],
        correlation_id=row["correlation_id"],
    )


class PostgresPayments(PaymentRepository):
    """The ``payments`` table, used inside the caller's transaction."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def claim(self, new: Payment) -> tuple[Payment, bool]:
        self._require_transaction()
        # ON CONFLICT DO NOTHING waits for a concurrent, uncommitted insert of the same
        # order and then skips; the FOR UPDATE below then sees the committed row.
        inserted = await self._db.fetchrow(
            _INSERT_UNLESS_CLAIMED,
            new.payment_id,
            new.order_id,
            new.saga_id,
            new.user_id,
            new.amount,
            str(new.status),
            new.payment_method,
            new.gateway_transaction_id,
            None if new.failure_reason is None else str(new.failure_reason),
            new.failure_message,
            new.requested_at,
            new.processed_at,
            new.closed_at,
            new.request_event_id,
            new.correlation_id,
        )
        if inserted is not None:
            return _payment(inserted), True
        existing = await self._db.fetchrow(_LOCK_OF_ORDER, new.order_id)
        if existing is None:  # payments are never deleted
            raise RuntimeError(f"payment of order {new.order_id} vanished while claimed")
        return _payment(existing), False

    async def save(self, payment: Payment) -> None:
        self._require_transaction()
        status: str = await self._db.execute(
            "UPDATE payments SET status = $2, gateway_transaction_id = $3,"
            " failure_reason = $4, failure_message = $5, processed_at = $6, closed_at = $7,"
            " updated_at = now() WHERE payment_id = $1",
            payment.payment_id,
            str(payment.status),
            payment.gateway_transaction_id,
            None if payment.failure_reason is None else str(payment.failure_reason),
            payment.failure_message,
            payment.processed_at,
            payment.closed_at,
        )
        if status != "UPDATE 1":
            raise RuntimeError(f"payment {payment.payment_id} is not in the database")

    async def lock_stale_pending(self, older_than: timedelta, limit: int) -> list[Payment]:
        self._require_transaction()
        rows = await self._db.fetch(_LOCK_STALE_PENDING, older_than, limit)
        return [_payment(row) for row in rows]

    async def now(self) -> datetime:
        value: datetime = await self._db.fetchval("SELECT now()")
        return value

    def _require_transaction(self) -> None:
        # Outside a transaction the row lock would end with the statement, and the
        # charge decision would no longer be made under it.
        if not self._db.is_in_transaction():
            raise RuntimeError("payments are changed inside the transaction of the command")


class PostgresUnitOfWork(UnitOfWork):
    """Repository and replies on one connection whose transaction the caller owns."""

    def __init__(self, payments: PostgresPayments, replies: PaymentReplies) -> None:
        self._payments = payments
        self._replies = replies

    @property
    def payments(self) -> PaymentRepository:
        return self._payments

    @property
    def replies(self) -> PaymentReplies:
        return self._replies


# ------------------------------------------------------------------------ queries


@dataclass(frozen=True)
class StoredPayment:
    """A payment as the REST API shows it: the domain object and the row's timestamps."""

    payment: Payment
    created_at: datetime
    updated_at: datetime


async def payment_of_order(db: asyncpg.Pool, order_id: UUID) -> StoredPayment | None:
    """The payment of ``order_id`` as committed now (no lock, no transaction); ``None``
    when the order has none."""
    row = await db.fetchrow(_OF_ORDER, order_id)
    if row is None:
        return None
    return StoredPayment(_payment(row), created_at=row["created_at"], updated_at=row["updated_at"])
