"""The ``orders_view`` table: the projector, its rebuild, and the read queries.

``project`` is the repository's same-transaction hook: after the events of a
command are appended it upserts the row computed by ``view_of`` from the new
state. ``rebuild_orders_view`` truncates the table and replays every event of
the store through the same ``project``, so a rebuilt table equals the live one.
Upserts only move a row forward (``version`` = last event folded in), which keeps
a late or repeated write from putting an older state back.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg

from handwritten.orders.domain.money import Money
from handwritten.orders.domain.order import (
    AGGREGATE_TYPE,
    ORDER,
    CancelReason,
    OrderLine,
    OrderState,
    OrderStatus,
)
from handwritten.orders.domain.requests import ShippingAddress
from handwritten.orders.service_layer.paging import PageKey
from handwritten.orders.service_layer.ports import OrderViews, ViewPage
from handwritten.orders.service_layer.read_model import (
    OrderView,
    PaymentStatus,
    ShippingStatus,
    view_of,
)
from handwritten.runtime.eventstore import Loaded, StoredEvent, all_events

_COLUMNS = (
    "order_id, user_id, status, total_amount, currency, items::text AS items,"
    " shipping_address::text AS shipping_address, payment_status, payment_id,"
    " shipping_status, tracking_code, cancel_reason, version, created_at, updated_at"
)


async def upsert(connection: asyncpg.Connection, view: OrderView) -> None:
    """Write ``view`` unless the stored row is already at that version or later."""
    await connection.execute(
        """
        INSERT INTO orders_view AS v (order_id, user_id, status, total_amount, currency, items,
            shipping_address, payment_status, payment_id, shipping_status, tracking_code,
            cancel_reason, version, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6::text::jsonb, $7::text::jsonb, $8, $9, $10, $11, $12,
            $13, $14, $15)
        ON CONFLICT (order_id) DO UPDATE SET
            user_id = EXCLUDED.user_id, status = EXCLUDED.status,
            total_amount = EXCLUDED.total_amount, currency = EXCLUDED.currency,
            items = EXCLUDED.items, shipping_address = EXCLUDED.shipping_address,
            payment_status = EXCLUDED.payment_status, payment_id = EXCLUDED.payment_id,
            shipping_status = EXCLUDED.shipping_status, tracking_code = EXCLUDED.tracking_code,
            cancel_reason = EXCLUDED.cancel_reason, version = EXCLUDED.version,
            created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at
        WHERE v.version < EXCLUDED.version
        """,
        view.order_id,
        view.user_id,
        view.status.value,
        view.total.amount,
        view.total.currency,
        json.dumps([line.to_json() for line in view.lines], separators=(",", ":")),
        json.dumps(view.shipping_address.to_json(), separators=(",", ":")),
        None if view.payment_status is None else view.payment_status.value,
        view.payment_id,
        None if view.shipping_status is None else view.shipping_status.value,
        view.tracking_code,
        None if view.cancel_reason is None else view.cancel_reason.value,
        view.version,
        view.created_at,
        view.updated_at,
    )


async def project(
    connection: asyncpg.Connection, loaded: Loaded[OrderState], _: Sequence[StoredEvent]
) -> None:
    """The projector (``AggregateRepository`` hook): the row of the state after the events."""
    if loaded.state is not None:
        await upsert(connection, view_of(loaded.state, loaded.version))


async def rebuild_orders_view(connection: asyncpg.Connection, *, page_size: int = 500) -> int:
    """Truncate ``orders_view`` and replay every Order event into it; returns the orders.

    One transaction: readers keep seeing the old table until it commits. TRUNCATE
    comes first and its lock makes concurrent writers wait, so a command that
    commits meanwhile is projected by its own hook after the rebuild, never lost.
    The folded states of all orders are held in memory while the events stream by.
    """
    states: dict[UUID, Loaded[OrderState]] = {}
    async with connection.transaction():
        await connection.execute("TRUNCATE orders_view")
        after = 0
        while page := await all_events(connection, after, page_size, upcasters=ORDER.upcasters):
            touched: list[UUID] = []
            for event in page:
                after = event.id
                if event.aggregate_type != AGGREGATE_TYPE:
                    continue
                current = states.get(event.aggregate_id)
                if current is None:
                    current = Loaded(event.aggregate_id, ORDER.initial(event.aggregate_id), 0)
                if event.sequence_number != current.version + 1:
                    raise ValueError(
                        f"order {event.aggregate_id}: event {event.sequence_number}"
                        f" after {current.version}"
                    )
                states[event.aggregate_id] = Loaded(
                    event.aggregate_id,
                    ORDER.apply(current.state, event.domain),
                    event.sequence_number,
                )
                touched.append(event.aggregate_id)
            for order_id in dict.fromkeys(touched):
                await project(connection, states[order_id], [])
    return len(states)


def _view(row: asyncpg.Record) -> OrderView:
    total: Decimal = row["total_amount"]
    return OrderView(
        order_id=row["order_id"],
        user_id=row["user_id"],
        status=OrderStatus(row["status"]),
        lines=tuple(OrderLine.from_json(line) for line in json.loads(row["items"])),
        total=Money(total, row["currency"]),
        shipping_address=ShippingAddress.from_json(json.loads(row["shipping_address"])),
        payment_status=None
        if row["payment_status"] is None
        else PaymentStatus(row["payment_status"]),
        payment_id=row["payment_id"],
        shipping_status=(
            None if row["shipping_status"] is None else ShippingStatus(row["shipping_status"])
        ),
        tracking_code=row["tracking_code"],
        cancel_reason=None if row["cancel_reason"] is None else CancelReason(row["cancel_reason"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        version=row["version"],
    )


class PostgresOrderViews(OrderViews):
    """Read queries on ``orders_view`` (pool connections, no transaction needed)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def get(self, order_id: UUID) -> OrderView | None:
        async with self._pool.acquire() as connection:
            row = await connection.fetchrow(
                f"SELECT {_COLUMNS} FROM orders_view WHERE order_id = $1",  # noqa: S608
                order_id,
            )
        return None if row is None else _view(row)

    async def get_many(self, order_ids: Sequence[UUID]) -> dict[UUID, OrderView]:
        if not order_ids:
            return {}
        async with self._pool.acquire() as connection:
            rows = await connection.fetch(
                f"SELECT {_COLUMNS} FROM orders_view WHERE order_id = ANY($1::uuid[])",  # noqa: S608
                list(order_ids),
            )
        return {row["order_id"]: _view(row) for row in rows}

    async def page(
        self,
        *,
        user_id: UUID | None,
        status: OrderStatus | None,
        after: PageKey | None,
        limit: int,
    ) -> ViewPage:
        conditions, args = _filters(user_id, status)
        if after is not None:
            args += [after.created_at, after.order_id]
            conditions.append(f"(created_at, order_id) < (${len(args) - 1}, ${len(args)})")
        args.append(limit + 1)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        async with self._pool.acquire() as connection:
            rows = await connection.fetch(
                f"SELECT {_COLUMNS} FROM orders_view {where}"  # noqa: S608
                f" ORDER BY created_at DESC, order_id DESC LIMIT ${len(args)}",
                *args,
            )
        items = [_view(row) for row in rows[:limit]]
        more = len(rows) > limit
        return ViewPage(
            items, PageKey(items[-1].created_at, items[-1].order_id) if more and items else None
        )

    async def count(self, *, user_id: UUID | None, status: OrderStatus | None) -> int:
        conditions, args = _filters(user_id, status)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        async with self._pool.acquire() as connection:
            total: int = await connection.fetchval(
                f"SELECT count(*) FROM orders_view {where}",  # noqa: S608
                *args,
            )
        return total


def _filters(user_id: UUID | None, status: OrderStatus | None) -> tuple[list[str], list[Any]]:
    # Only placeholders are interpolated into the SQL; values travel as arguments.
    conditions: list[str] = []
    args: list[Any] = []
    if user_id is not None:
        args.append(user_id)
        conditions.append(f"user_id = ${len(args)}")
    if status is not None:
        args.append(status.value)
        conditions.append(f"status = ${len(args)}")
    return conditions, args
