"""PostgreSQL repositories and the unit of work (one transaction per use case)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from handwritten.inventory.domain.errors import StockInvariantError
from handwritten.inventory.domain.products import NewProduct, Product, ProductChanges
from handwritten.inventory.domain.reservations import (
    Reservation,
    ReservationLine,
    ReservationStatus,
)
from handwritten.inventory.domain.stock import StockLevel
from handwritten.inventory.service_layer.paging import PageKey
from handwritten.inventory.service_layer.ports import (
    ProductRepository,
    ReservationEvents,
    ReservationRepository,
    UnitOfWork,
    UnitOfWorkFactory,
)

#: First key of the two-int advisory locks that serialize ReserveProducts per order
#: (the two-key space never overlaps the one-key space the migrations lock in).
_RESERVE_LOCK_CLASS = 0x494E56  # "INV"


def _product(row: asyncpg.Record) -> Product:
    return Product(
        product_id=row["product_id"],
        name=row["name"],
        description=row["description"],
        price=row["price"],
        available_quantity=row["available_quantity"],
        reserved_quantity=row["reserved_quantity"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _stock(row: asyncpg.Record) -> StockLevel:
    return StockLevel(row["product_id"], row["name"], row["price"], row["available_quantity"])


def _reservations(rows: Sequence[asyncpg.Record]) -> list[Reservation]:
    """Group lines (ordered by order id, then product id) into reservations."""
    grouped: dict[UUID, list[asyncpg.Record]] = {}
    for row in rows:
        grouped.setdefault(row["order_id"], []).append(row)
    return [
        Reservation(
            order_id=order_id,
            lines=tuple(
                ReservationLine(
                    row["product_id"], row["product_name"], row["quantity"], row["unit_price"]
                )
                for row in lines
            ),
            status=ReservationStatus(lines[0]["status"]),
            expires_at=lines[0]["expires_at"],
        )
        for order_id, lines in grouped.items()
    ]


def _one_row_changed(status: str) -> bool:
    # asyncpg returns the command tag, e.g. "UPDATE 1".
    return status.rsplit(" ", 1)[-1] == "1"


class PostgresProducts(ProductRepository):
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def get(self, product_id: UUID) -> Product | None:
        row = await self._db.fetchrow(
            "SELECT product_id, name, description, price, available_quantity, reserved_quantity,"
            " created_at, updated_at FROM products WHERE product_id = $1",
            product_id,
        )
        return None if row is None else _product(row)

    async def get_many(self, product_ids: Sequence[UUID]) -> dict[UUID, Product]:
        rows = await self._db.fetch(
            "SELECT product_id, name, description, price, available_quantity, reserved_quantity,"
            " created_at, updated_at FROM products WHERE product_id = ANY($1::uuid[])",
            list(product_ids),
        )
        return {row["product_id"]: _product(row) for row in rows}

    async def page(self, after: PageKey | None, limit: int) -> list[Product]:
        if after is None:
            rows = await self._db.fetch(
                "SELECT product_id, name, description, price, available_quantity,"
                " reserved_quantity, created_at, updated_at FROM products"
                " ORDER BY created_at, product_id LIMIT $1",
                limit,
            )
        else:
            rows = await self._db.fetch(
                "SELECT product_id, name, description, price, available_quantity,"
                " reserved_quantity, created_at, updated_at FROM products"
                " WHERE (created_at, product_id) > ($1, $2)"
                " ORDER BY created_at, product_id LIMIT $3",
                after.created_at,
                after.product_id,
                limit,
            )
        return [_product(row) for row in rows]

    async def add(self, product: NewProduct) -> Product:
        row = await self._db.fetchrow(
            "INSERT INTO products (name, description, price, available_quantity) "
            "VALUES ($1, $2, $3, $4) RETURNING product_id, name, description, price, "
            "available_quantity, reserved_quantity, created_at, updated_at",
            product.name,
            product.description,
            product.price,
            product.available_quantity,
        )
        assert row is not None
        return _product(row)

    async def update(self, product_id: UUID, changes: ProductChanges) -> Product | None:
        row = await self._db.fetchrow(
            "UPDATE products SET name = COALESCE($2, name), "
            "description = COALESCE($3, description), price = COALESCE($4, price), "
            "available_quantity = COALESCE($5, available_quantity), updated_at = now() "
            "WHERE product_id = $1 RETURNING product_id, name, description, price, "
            "available_quantity, reserved_quantity, created_at, updated_at",
            product_id,
            changes.name,
            changes.description,
            changes.price,
            changes.available_quantity,
        )
        return None if row is None else _product(row)

    async def stock(self, product_ids: Sequence[UUID]) -> dict[UUID, StockLevel]:
        rows = await self._db.fetch(
            "SELECT product_id, name, price, available_quantity FROM products "
            "WHERE product_id = ANY($1::uuid[])",
            list(product_ids),
        )
        return {row["product_id"]: _stock(row) for row in rows}

    async def lock_stock(self, product_ids: Sequence[UUID]) -> dict[UUID, StockLevel]:
        # ORDER BY before FOR UPDATE: PostgreSQL locks the rows in the sorted order,
        # the same order every other writer uses (see domain.stock.lock_order).
        rows = await self._db.fetch(
            "SELECT product_id, name, price, available_quantity FROM products "
            "WHERE product_id = ANY($1::uuid[]) ORDER BY product_id FOR UPDATE",
            list(product_ids),
        )
        return {row["product_id"]: _stock(row) for row in rows}

    async def hold(self, product_id: UUID, quantity: int) -> bool:
        # Conditional: never takes more than is available, whatever the caller believed.
        status = await self._db.execute(
            "UPDATE products SET available_quantity = available_quantity - $2, "
            "reserved_quantity = reserved_quantity + $2, updated_at = now() "
            "WHERE product_id = $1 AND available_quantity >= $2",
            product_id,
            quantity,
        )
        return _one_row_changed(status)

    async def debit_held(self, product_id: UUID, quantity: int) -> None:
        status = await self._db.execute(
            "UPDATE products SET reserved_quantity = reserved_quantity - $2, updated_at = now() "
            "WHERE product_id = $1 AND reserved_quantity >= $2",
            product_id,
            quantity,
        )
        if not _one_row_changed(status):
            raise StockInvariantError(f"product {product_id} holds less than {quantity}")

    async def return_held(self, product_id: UUID, quantity: int) -> None:
        status = await self._db.execute(
            "UPDATE products SET available_quantity = available_quantity + $2, "
            "reserved_quantity = reserved_quantity - $2, updated_at = now() "
            "WHERE product_id = $1 AND reserved_quantity >= $2",
            product_id,
            quantity,
        )
        if not _one_row_changed(status):
            raise StockInvariantError(f"product {product_id} holds less than {quantity}")

    async def return_sold(self, product_id: UUID, quantity: int) -> None:
        status = await self._db.execute(
            "UPDATE products SET available_quantity = available_quantity + $2, "
            "updated_at = now() WHERE product_id = $1",
            product_id,
            quantity,
        )
        if not _one_row_changed(status):
            raise StockInvariantError(f"product {product_id} does not exist")


class PostgresReservations(ReservationRepository):
    def __init__(self, connection: asyncpg.Connection) -> None:
        self._db = connection

    async def serialize(self, order_id: UUID) -> None:
        # A hash collision only makes two orders wait for each other briefly.
        await self._db.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))", _RESERVE_LOCK_CLASS, str(order_id)
        )

    async def get(self, order_id: UUID) -> Reservation | None:
        rows = await self._db.fetch(
            "SELECT order_id, product_id, product_name, quantity, unit_price, status, expires_at"
            " FROM inventory_reservations WHERE order_id = $1 ORDER BY product_id",
            order_id,
        )
        found = _reservations(rows)
        return found[0] if found else None

    async def lock(self, order_id: UUID) -> Reservation | None:
        rows = await self._db.fetch(
            "SELECT order_id, product_id, product_name, quantity, unit_price, status, expires_at"
            " FROM inventory_reservations WHERE order_id = $1 ORDER BY product_id FOR UPDATE",
            order_id,
        )
        found = _reservations(rows)
        return found[0] if found else None

    async def add(
        self, order_id: UUID, lines: Sequence[ReservationLine], ttl_seconds: float
    ) -> Reservation:
        rows = await self._db.fetch(
            "INSERT INTO inventory_reservations "
            "(order_id, product_id, product_name, quantity, unit_price, status, expires_at) "
            "SELECT $1, line.product_id, line.product_name, line.quantity, line.unit_price, "
            "'RESERVED', now() + make_interval(secs => $6) "
            "FROM unnest($2::uuid[], $3::text[], $4::int[], $5::numeric[]) "
            "AS line(product_id, product_name, quantity, unit_price) "
            "RETURNING expires_at",
            order_id,
            [line.product_id for line in lines],
            [line.product_name for line in lines],
            [line.quantity for line in lines],
            [line.unit_price for line in lines],
            float(ttl_seconds),
        )
        expires_at: datetime = rows[0]["expires_at"]
        return Reservation(order_id, tuple(lines), ReservationStatus.RESERVED, expires_at)

    async def set_status(
        self,
        order_id: UUID,
        status: ReservationStatus,
        *,
        current: ReservationStatus = ReservationStatus.RESERVED,
    ) -> None:
        changed = await self._db.execute(
            "UPDATE inventory_reservations SET status = $2, updated_at = now() "
            "WHERE order_id = $1 AND status = $3",
            order_id,
            status.value,
            current.value,
        )
        if changed.rsplit(" ", 1)[-1] == "0":
            raise StockInvariantError(f"order {order_id} has no {current.value} lines to change")

    async def lock_due(self, limit: int) -> list[Reservation]:
        # Pick due lines nobody else has locked, then lock every RESERVED line of
        # their orders (again skipping locked ones); an order is only processed when
        # we hold all of its RESERVED lines, so a concurrent commit/release or another
        # replica's job never sees half an order expired.
        rows = await self._db.fetch(
            "WITH picked AS ("
            "  SELECT order_id FROM inventory_reservations"
            "  WHERE status = 'RESERVED' AND expires_at <= now()"
            "  ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED"
            ") SELECT order_id, product_id, product_name, quantity, unit_price, status,"
            " expires_at FROM inventory_reservations"
            " WHERE order_id IN (SELECT order_id FROM picked) AND status = 'RESERVED'"
            " ORDER BY order_id, product_id FOR UPDATE SKIP LOCKED",
            limit,
        )
        locked = _reservations(rows)
        if not locked:
            return []
        counts = {
            row["order_id"]: row["lines"]
            for row in await self._db.fetch(
                "SELECT order_id, count(*) AS lines FROM inventory_reservations "
                "WHERE order_id = ANY($1::uuid[]) AND status = 'RESERVED' GROUP BY order_id",
                [reservation.order_id for reservation in locked],
            )
        }
        return [r for r in locked if counts.get(r.order_id) == len(r.lines)]


class PostgresUnitOfWork(UnitOfWork):
    """Repositories sharing one connection inside one transaction."""

    def __init__(self, connection: asyncpg.Connection, events: ReservationEvents) -> None:
        self._db = connection
        self._products = PostgresProducts(connection)
        self._reservations = PostgresReservations(connection)
        self._events = events

    @property
    def products(self) -> ProductRepository:
        return self._products

    @property
    def reservations(self) -> ReservationRepository:
        return self._reservations

    @property
    def events(self) -> ReservationEvents:
        return self._events

    async def now(self) -> datetime:
        # Transaction start time: the same instant for every statement of the use case.
        value: datetime = await self._db.fetchval("SELECT now()")
        return value


EventsFactory = Callable[[asyncpg.Connection], ReservationEvents]


def unit_of_work_factory(pool: asyncpg.Pool, events: EventsFactory) -> UnitOfWorkFactory:
    """Each call opens a transaction on a pooled connection; the events of the use
    case are recorded through ``events(connection)``, inside that transaction."""

    @asynccontextmanager
    async def start() -> AsyncIterator[UnitOfWork]:
        connection: Any
        async with pool.acquire() as connection, connection.transaction():
            yield PostgresUnitOfWork(connection, events(connection))

    return start
