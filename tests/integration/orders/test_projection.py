"""orders_view: rebuilt from the event store it equals the live projection; snapshots."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from handwritten.orders.adapters.orders_view import rebuild_orders_view
from handwritten.orders.domain.order import ORDER
from handwritten.runtime.eventstore import load_snapshot, rebuild
from tests.integration.orders.conftest import ORDERS, Inventory, Orders, Schema, User

ROOT = Path(__file__).resolve().parents[3]


async def _table(orders: Orders) -> list[dict[str, Any]]:
    rows = await orders.db.fetch("SELECT * FROM orders_view ORDER BY order_id")
    return [dict(row) for row in rows]


async def _orders_in_every_state(orders: Orders, inventory: Inventory, user: User) -> None:
    product = await inventory.add_product(price="15.25", stock=100)
    ids = []
    for _ in range(4):
        response = await orders.create(user, [(product, 3)])
        assert response.status_code == 201
        ids.append(uuid.UUID(response.json()["orderId"]))
    pending, canceled, shipped, delivered = ids
    await orders.http.post(f"{ORDERS}/{canceled}/cancel", headers=user.headers)
    for order_id in (shipped, delivered):
        await orders.service.confirm_order(order_id, payment_id=uuid.uuid4())
        await orders.service.mark_shipped(order_id, tracking_code="BR-PROJ0001")
    await orders.service.mark_delivered(delivered)
    assert pending


async def test_rebuilding_from_scratch_gives_the_live_table(
    orders: Orders, inventory: Inventory, customer: User
) -> None:
    await _orders_in_every_state(orders, inventory, customer)
    live = await _table(orders)
    assert {row["status"] for row in live} >= {"PENDING", "CANCELED", "SHIPPED", "DELIVERED"}

    connection = await orders.db.acquire()
    try:
        projected = await rebuild_orders_view(connection, page_size=3)
    finally:
        await orders.db.release(connection)

    assert projected == len(live)
    assert await _table(orders) == live


async def test_the_rebuild_command_restores_a_lost_table(
    orders: Orders, inventory: Inventory, customer: User, schema: Schema
) -> None:
    await _orders_in_every_state(orders, inventory, customer)
    live = await _table(orders)
    await orders.db.execute("DELETE FROM orders_view")

    result = subprocess.run(  # noqa: ASYNC221 (a one-off CLI run; nothing else is waiting)
        [sys.executable, "-m", "handwritten.orders", "rebuild-projections"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": schema.url, "ORDERS_CACHE_TTL_SECONDS": "0"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr + result.stdout
    assert f"{len(live)} orders" in result.stdout
    assert await _table(orders) == live
    listed = await orders.http.get(ORDERS, params={"limit": 100}, headers=customer.headers)
    assert len(listed.json()["items"]) == 4


async def test_snapshots_are_taken_and_load_equals_a_full_replay(
    orders: Orders, inventory: Inventory, customer: User
) -> None:
    # SNAPSHOT_EVERY is 2 in these tests: an order with 4 events has a snapshot at 4.
    product = await inventory.add_product(price="2.50", stock=10)
    response = await orders.create(customer, [(product, 4)])
    order_id = uuid.UUID(response.json()["orderId"])
    await orders.service.confirm_order(order_id, payment_id=uuid.uuid4())
    await orders.service.mark_shipped(order_id, tracking_code="BR-SNAP0001")
    await orders.service.mark_delivered(order_id)

    repository = orders.runtime.repository
    assert repository is not None
    async with orders.db.acquire() as connection:
        snapshot = await load_snapshot(connection, order_id)
        loaded = await repository.load(connection, order_id)
        history = await repository.history(connection, order_id)
    assert snapshot is not None and snapshot.last_sequence_number == 4
    assert loaded.snapshot_sequence == 4
    replayed = rebuild(ORDER, order_id, None, [(e.sequence_number, e.domain) for e in history])
    assert replayed.state == loaded.state
    assert replayed.version == loaded.version == 4
