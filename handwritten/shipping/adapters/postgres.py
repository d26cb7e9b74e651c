"""PostgreSQL repositories and the unit of work (one transaction per use case)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import asyncpg

from handwritten.shipping.domain.route import Destination
from handwritten.shipping.domain.shipments import Shipment, ShipmentStatus, StatusChange
from handwritten.shipping.service_layer.ports import (
    CanceledOrders,
    ShipmentEvents,
    ShipmentRepository,
    TrackingCodeTakenError,
    UnitOfWork,
    UnitOfWorkFactory,
)

#: First key of the two-int advisory locks that serialize the events of one order
#: (the two-key space never overlaps the one-key space the migrations lock in).
_ORDER_LOCK_CLASS = 0x534850  # "SHP"
_TRACKING_CODE_CONSTRAINT = "shipments_tracking_code_key"

_COLUMNS = (
    "shipment_id, order_id, user_id, tracking_code, status, destination_city,"
    " destination_state, estimated_delivery_date, delivered_at, correlation_id,"
    " traceparent, created_at, updated_at"
)


def _shipment(row: asyncpg.Record, history: Sequence[StatusChange]) -> Shipment:
    return Shipment(
        shipment_id=row["shipment_id"],
        order_id=row["order_id"],
        user_id=row["user_id"],
        tracking_code=row["tracking_code"],
        status=ShipmentStatus(row["status"]),
        destination=Destination(row["destination_city"], row["destination_state"]),
        estimated_delivery_date=row["estimated_delivery_date"],
        history=tuple(history),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        delivered_at=row["delivered_at"],
        correlation_id=row["correlation_id"],
        traceparent=row["traceparent"],
    )


class PostgresShipments(ShipmentRepository):
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def serialize_order(self, order_id: UUID) -> None:
        # A hash collision only makes two orders wait for each other briefly.
        await self._db.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))", _ORDER_LOCK_CLASS, str(order_id)
        )

    async def get(self, order_id: UUID) -> Shipment | None:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM shipments WHERE order_id = $1",  # noqa: S608 - constant
            order_id,
        )
        found = await self._with_history(rows)
        return found[0] if found else None

    async def get_many(self, order_ids: Sequence[UUID]) -> dict[UUID, Shipment]:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM shipments WHERE order_id = ANY($1::uuid[])",  # noqa: S608
            list(order_ids),
        )
        return {shipment.order_id: shipment for shipment in await self._with_history(rows)}

    async def lock(self, order_id: UUID) -> Shipment | None:
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM shipments WHERE order_id = $1 FOR UPDATE",  # noqa: S608
            order_id,
        )
        found = await self._with_history(rows)
        return found[0] if found else None

    async def add(self, shipment: Shipment) -> None:
        try:
            # A savepoint: a clashing tracking code rolls back only this insert, and
            # the caller may draw another code in the same transaction.
            async with self._db.transaction():
                await self._db.execute(
                    "INSERT INTO shipments (shipment_id, order_id, user_id, tracking_code,"
                    " status, destination_city, destination_state, estimated_delivery_date,"
                    " delivered_at, correlation_id, traceparent, created_at, updated_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                    shipment.shipment_id,
                    shipment.order_id,
                    shipment.user_id,
                    shipment.tracking_code,
                    shipment.status.value,
                    shipment.destination.city,
                    shipment.destination.state,
                    shipment.estimated_delivery_date,
                    shipment.delivered_at,
                    shipment.correlation_id,
                    shipment.traceparent,
                    shipment.created_at,
                    shipment.updated_at,
                )
                for change in shipment.history:
                    await self._add_history(shipment.shipment_id, change)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == _TRACKING_CODE_CONSTRAINT:
                raise TrackingCodeTakenError(shipment.tracking_code) from exc
            raise

    async def record_change(self, shipment: Shipment) -> None:
        status = await self._db.execute(
            "UPDATE shipments SET status = $2, updated_at = $3, delivered_at = $4"
            " WHERE shipment_id = $1",
            shipment.shipment_id,
            shipment.status.value,
            shipment.updated_at,
            shipment.delivered_at,
        )
        if status != "UPDATE 1":
            raise LookupError(f"shipment {shipment.shipment_id} does not exist")
        await self._add_history(shipment.shipment_id, shipment.latest)

    async def lock_due(self, step_seconds: float, limit: int) -> list[Shipment]:
        # Oldest first, so a backlog drains fairly; SKIP LOCKED lets replicas share
        # the work and keeps the job off a shipment a cancel is working on.
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM shipments"  # noqa: S608 - constant column list
            " WHERE status IN ('SCHEDULED', 'IN_TRANSIT')"
            " AND updated_at <= now() - make_interval(secs => $1)"
            " ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            float(step_seconds),
            limit,
        )
        return await self._with_history(rows)

    async def _add_history(self, shipment_id: UUID, change: StatusChange) -> None:
        await self._db.execute(
            "INSERT INTO shipment_status_history (shipment_id, status, location, occurred_at)"
            " VALUES ($1, $2, $3, $4)",
            shipment_id,
            change.status.value,
            change.location,
            change.occurred_at,
        )

    async def _with_history(self, rows: Sequence[asyncpg.Record]) -> list[Shipment]:
        if not rows:
            return []
        history: dict[UUID, list[StatusChange]] = {row["shipment_id"]: [] for row in rows}
        for entry in await self._db.fetch(
            "SELECT shipment_id, status, location, occurred_at FROM shipment_status_history"
            " WHERE shipment_id = ANY($1::uuid[]) ORDER BY shipment_id, id",
            list(history),
        ):
            history[entry["shipment_id"]].append(
                StatusChange(
                    ShipmentStatus(entry["status"]), entry["location"], entry["occurred_at"]
                )
            )
        return [_shipment(row, history[row["shipment_id"]]) for row in rows]


class PostgresCanceledOrders(CanceledOrders):
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def remember(self, order_id: UUID, reason: str, at: dt.datetime) -> None:
        await self._db.execute(
            "INSERT INTO canceled_orders (order_id, reason, recorded_at) VALUES ($1, $2, $3)"
            " ON CONFLICT (order_id) DO NOTHING",
            order_id,
            reason,
            at,
        )

    async def contains(self, order_id: UUID) -> bool:
        found = await self._db.fetchval(
            "SELECT true FROM canceled_orders WHERE order_id = $1", order_id
        )
        return found is True


class PostgresUnitOfWork(UnitOfWork):
    """Repositories sharing one connection inside one (already open) transaction."""

    def __init__(self, connection: asyncpg.Connection, events: ShipmentEvents) -> None:
        self._db = connection
        self._shipments = PostgresShipments(connection)
        self._canceled_orders = PostgresCanceledOrders(connection)
        self._events = events

    @property
    def shipments(self) -> ShipmentRepository:
        return self._shipments

    @property
    def canceled_orders(self) -> CanceledOrders:
        return self._canceled_orders

    @property
    def events(self) -> ShipmentEvents:
        return self._events

    async def now(self) -> dt.datetime:
        # Transaction start time: the same instant for every statement of the use case.
        value: dt.datetime = await self._db.fetchval("SELECT now()")
        return value


EventsFactory = Callable[[asyncpg.Connection], ShipmentEvents]


def unit_of_work_factory(pool: asyncpg.Pool, events: EventsFactory) -> UnitOfWorkFactory:
    """Each call opens a transaction on a pooled connection; the events of the use
    case are recorded through ``events(connection)``, inside that transaction."""

    @asynccontextmanager
    async def start() -> AsyncIterator[UnitOfWork]:
        connection: Any
        async with pool.acquire() as connection, connection.transaction():
            yield PostgresUnitOfWork(connection, events(connection))

    return start
