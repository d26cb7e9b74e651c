"""Reserve, commit, release and restore over gRPC: no oversell, all or nothing, idempotent."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from grpclib import GRPCError
from grpclib.const import Status

from generated.grpc.inventory.v1 import (
    CommitReservationRequest,
    ReleaseReservationRequest,
    ReserveProductsRequest,
    ReserveProductsResponse,
    RestoreStockRequest,
    UnavailableReason,
)
from tests.integration.inventory.conftest import Inventory, items, wait_for


async def reserve(
    inventory: Inventory, order_id: uuid.UUID, *pairs: tuple[uuid.UUID, int]
) -> ReserveProductsResponse:
    return await inventory.stub.reserve_products(
        ReserveProductsRequest(order_id=str(order_id), items=items(*pairs))
    )


async def test_no_oversell_under_concurrent_reservations(inventory: Inventory) -> None:
    initial = 10
    product = await inventory.add_product(stock=initial, price="99.00")
    orders = [uuid.uuid4() for _ in range(30)]
    samples: list[tuple[int, int]] = []
    storming = True

    async def sample() -> None:
        # Watch the row while the storm runs: never negative, never more than initial.
        while storming:
            samples.append(await inventory.stock_of(product))
            await asyncio.sleep(0)

    watcher = asyncio.create_task(sample())
    try:
        results = await asyncio.gather(*(reserve(inventory, o, (product, 1)) for o in orders))
    finally:
        storming = False
        await watcher

    reserved = [o for o, r in zip(orders, results, strict=True) if r.reserved]
    refused = [r for r in results if not r.reserved]
    assert len(reserved) == initial
    assert all(
        [(u.reason, u.requested_quantity) for u in r.unavailable_products]
        == [(UnavailableReason.INSUFFICIENT_STOCK, 1)]
        for r in refused
    )
    assert await inventory.stock_of(product) == (0, initial)
    assert samples, "the watcher took no sample"
    assert all(available >= 0 and available + held == initial for available, held in samples)
    lines = await inventory.db.fetch(
        "SELECT order_id, quantity, status FROM inventory_reservations WHERE product_id = $1",
        product,
    )
    assert sorted(row["order_id"] for row in lines) == sorted(reserved)
    assert {(row["quantity"], row["status"]) for row in lines} == {(1, "RESERVED")}


async def test_reserve_returns_prices_and_expiry_and_is_idempotent(inventory: Inventory) -> None:
    chair = await inventory.add_product(stock=5, price="250.00", name="Cadeira")
    lamp = await inventory.add_product(stock=5, price="80.25", name="Luminária")
    order = uuid.uuid4()
    before = datetime.now(UTC)
    first = await reserve(inventory, order, (lamp, 2), (chair, 1))
    assert first.reserved is True
    assert [(i.product_id, i.name, i.quantity, i.unit_price) for i in first.items] == [
        (str(lamp), "Luminária", 2, "80.25"),
        (str(chair), "Cadeira", 1, "250.00"),
    ]
    assert first.expires_at is not None
    ttl = timedelta(seconds=inventory.settings.reservation_ttl_seconds)
    assert before + ttl - timedelta(seconds=5) <= first.expires_at <= datetime.now(UTC) + ttl

    # A price change after the reservation does not change a replay.
    await inventory.db.execute("UPDATE products SET price = 1.00 WHERE product_id = $1", lamp)
    again = await reserve(inventory, order, (chair, 1), (lamp, 2))
    assert again.reserved is True
    assert {(i.product_id, i.quantity, i.unit_price) for i in again.items} == {
        (str(lamp), 2, "80.25"),
        (str(chair), 1, "250.00"),
    }
    assert again.expires_at == first.expires_at
    assert await inventory.stock_of(lamp) == (3, 2)
    assert await inventory.stock_of(chair) == (4, 1)

    with pytest.raises(GRPCError) as raised:
        await reserve(inventory, order, (lamp, 3), (chair, 1))
    assert raised.value.status is Status.FAILED_PRECONDITION
    assert await inventory.stock_of(lamp) == (3, 2)


async def test_concurrent_duplicates_of_one_order_reserve_once(inventory: Inventory) -> None:
    product = await inventory.add_product(stock=10)
    order = uuid.uuid4()
    results = await asyncio.gather(*(reserve(inventory, order, (product, 3)) for _ in range(8)))
    assert all(r.reserved for r in results)
    assert len({r.expires_at for r in results}) == 1
    assert await inventory.stock_of(product) == (7, 3)


async def test_all_or_nothing_when_one_item_is_short(inventory: Inventory) -> None:
    plenty = await inventory.add_product(stock=50)
    short = await inventory.add_product(stock=2)
    order = uuid.uuid4()
    response = await reserve(inventory, order, (plenty, 10), (short, 3))
    assert response.reserved is False
    assert response.items == []
    assert [
        (u.product_id, u.requested_quantity, u.available_quantity, u.reason)
        for u in response.unavailable_products
    ] == [(str(short), 3, 2, UnavailableReason.INSUFFICIENT_STOCK)]
    assert await inventory.stock_of(plenty) == (50, 0)
    assert await inventory.stock_of(short) == (2, 0)
    assert await inventory.reservation_status(order) == set()

    # Nothing was recorded for the refused attempt: once stock is back, a retry works.
    await inventory.db.execute(
        "UPDATE products SET available_quantity = 3 WHERE product_id = $1", short
    )
    retry = await reserve(inventory, order, (plenty, 10), (short, 3))
    assert retry.reserved is True
    assert await inventory.stock_of(short) == (0, 3)


async def test_unknown_product_is_unavailable_not_an_error(inventory: Inventory) -> None:
    product = await inventory.add_product(stock=5)
    missing = uuid.uuid4()
    response = await reserve(inventory, uuid.uuid4(), (product, 1), (missing, 1))
    assert response.reserved is False
    assert [(u.product_id, u.reason) for u in response.unavailable_products] == [
        (str(missing), UnavailableReason.PRODUCT_NOT_FOUND)
    ]
    assert await inventory.stock_of(product) == (5, 0)


async def test_commit_debits_then_release_is_refused(inventory: Inventory) -> None:
    product = await inventory.add_product(stock=5)
    order = uuid.uuid4()
    assert (await reserve(inventory, order, (product, 2))).reserved
    for _ in range(2):  # idempotent
        committed = await inventory.stub.commit_reservation(
            CommitReservationRequest(order_id=str(order))
        )
        assert committed.committed is True
    assert await inventory.stock_of(product) == (3, 0)
    assert await inventory.reservation_status(order) == {"COMMITTED"}

    with pytest.raises(GRPCError) as raised:
        await inventory.stub.release_reservation(ReleaseReservationRequest(order_id=str(order)))
    assert raised.value.status is Status.FAILED_PRECONDITION
    assert await inventory.stock_of(product) == (3, 0)
    # Reserving again for the committed order replays it; no new stock is taken.
    assert (await reserve(inventory, order, (product, 2))).reserved
    assert await inventory.stock_of(product) == (3, 0)


async def test_release_returns_the_stock_once(inventory: Inventory) -> None:
    first = await inventory.add_product(stock=4)
    second = await inventory.add_product(stock=4)
    order = uuid.uuid4()
    assert (await reserve(inventory, order, (first, 3), (second, 1))).reserved
    assert await inventory.stock_of(first) == (1, 3)

    released = await inventory.stub.release_reservation(
        ReleaseReservationRequest(order_id=str(order))
    )
    assert released.released is True
    assert await inventory.stock_of(first) == (4, 0)
    assert await inventory.stock_of(second) == (4, 0)
    assert await inventory.reservation_status(order) == {"RELEASED"}

    again = await inventory.stub.release_reservation(ReleaseReservationRequest(order_id=str(order)))
    assert again.released is False
    assert await inventory.stock_of(first) == (4, 0)

    with pytest.raises(GRPCError) as raised:
        await inventory.stub.commit_reservation(CommitReservationRequest(order_id=str(order)))
    assert raised.value.status is Status.FAILED_PRECONDITION
    with pytest.raises(GRPCError) as raised:
        await reserve(inventory, order, (first, 3), (second, 1))
    assert raised.value.status is Status.FAILED_PRECONDITION
    assert await inventory.stock_of(first) == (4, 0)


async def test_restore_puts_committed_stock_back_on_sale_once(inventory: Inventory) -> None:
    product = await inventory.add_product(stock=5)
    order = uuid.uuid4()
    assert (await reserve(inventory, order, (product, 2))).reserved

    # Still only held: nothing sold to restore (ReleaseReservation is the call for it).
    held = await inventory.stub.restore_stock(RestoreStockRequest(order_id=str(order)))
    assert held.restored is False
    assert await inventory.stock_of(product) == (3, 2)

    await inventory.stub.commit_reservation(CommitReservationRequest(order_id=str(order)))
    assert await inventory.stock_of(product) == (3, 0)

    # Concurrent and repeated restores (a retried saga compensation) restore once.
    results = await asyncio.gather(
        *(inventory.stub.restore_stock(RestoreStockRequest(order_id=str(order))) for _ in range(5))
    )
    assert sorted(result.restored for result in results) == [False] * 4 + [True]
    assert await inventory.stock_of(product) == (5, 0)
    assert await inventory.reservation_status(order) == {"RETURNED"}

    # A returned reservation is final: release is a no-op, commit and reserve refused.
    released = await inventory.stub.release_reservation(
        ReleaseReservationRequest(order_id=str(order))
    )
    assert released.released is False
    for attempt in (
        inventory.stub.commit_reservation(CommitReservationRequest(order_id=str(order))),
        reserve(inventory, order, (product, 2)),
    ):
        with pytest.raises(GRPCError) as raised:
            await attempt
        assert raised.value.status is Status.FAILED_PRECONDITION
    assert await inventory.stock_of(product) == (5, 0)

    released_events = await inventory.db.fetch(
        "SELECT value FROM outbox WHERE key = $1 AND topic = 'inventory.released'", str(order)
    )
    assert [json.loads(row["value"])["reason"] for row in released_events] == ["ORDER_CANCELED"]

    unknown = await inventory.stub.restore_stock(RestoreStockRequest(order_id=str(uuid.uuid4())))
    assert unknown.restored is False
    with pytest.raises(GRPCError) as raised:
        await inventory.stub.restore_stock(RestoreStockRequest(order_id="42"))
    assert raised.value.status is Status.INVALID_ARGUMENT


async def test_unknown_orders(inventory: Inventory) -> None:
    unknown = str(uuid.uuid4())
    released = await inventory.stub.release_reservation(ReleaseReservationRequest(order_id=unknown))
    assert released.released is False
    with pytest.raises(GRPCError) as raised:
        await inventory.stub.commit_reservation(CommitReservationRequest(order_id=unknown))
    assert raised.value.status is Status.NOT_FOUND
    for call in (inventory.stub.commit_reservation, inventory.stub.release_reservation):
        with pytest.raises(GRPCError) as raised:
            await call(CommitReservationRequest(order_id="42"))  # type: ignore[arg-type]
        assert raised.value.status is Status.INVALID_ARGUMENT


async def test_reserve_and_release_record_events_in_the_outbox(inventory: Inventory) -> None:
    product = await inventory.add_product(stock=3)
    order = uuid.uuid4()
    response = await reserve(inventory, order, (product, 2))
    await inventory.stub.release_reservation(ReleaseReservationRequest(order_id=str(order)))
    rows = await inventory.db.fetch(
        "SELECT topic, key, value, headers::text AS headers, published_at FROM outbox"
        " WHERE key = $1 ORDER BY id",
        str(order),
    )
    assert [row["topic"] for row in rows] == ["inventory.reserved", "inventory.released"]
    reserved, released = (json.loads(row["value"]) for row in rows)
    assert reserved["orderId"] == str(order)
    assert reserved["items"] == [{"productId": str(product), "quantity": 2}]
    assert response.expires_at is not None
    assert datetime.fromisoformat(reserved["expiresAt"]) == response.expires_at
    assert released["reason"] == "ORDER_CANCELED"
    assert released["items"] == reserved["items"]
    headers = [json.loads(row["headers"]) for row in rows]
    assert [h["event-type"] for h in headers] == ["InventoryReserved", "InventoryReleased"]
    assert {h["producer"] for h in headers} == {"inventory"}

    async def published() -> bool:
        return bool(
            await inventory.db.fetchval(
                "SELECT bool_and(published_at IS NOT NULL) FROM outbox WHERE key = $1",
                str(order),
            )
        )

    # The outbox relay (this app's, or another replica's) hands them to Kafka.
    await wait_for(published, within=20, what="the relay to publish the events")


async def test_refused_reservations_record_no_event(inventory: Inventory) -> None:
    product = await inventory.add_product(stock=1)
    order = uuid.uuid4()
    assert not (await reserve(inventory, order, (product, 2))).reserved
    count = await inventory.db.fetchval("SELECT count(*) FROM outbox WHERE key = $1", str(order))
    assert count == 0
