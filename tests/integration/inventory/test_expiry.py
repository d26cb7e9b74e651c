"""Reservations not committed in time are released by the background job."""

from __future__ import annotations

import json
import uuid

import pytest
from grpclib import GRPCError
from grpclib.const import Status

from generated.grpc.inventory.v1 import CommitReservationRequest, ReserveProductsRequest
from tests.integration.inventory.conftest import items, make_settings, running, wait_for


async def test_expired_reservations_are_released(jwks_url: str) -> None:
    settings = make_settings(
        jwks_url, reservation_ttl_seconds=1, reservation_expiry_interval_seconds=0.1
    )
    async with running(settings) as inventory:
        product = await inventory.add_product(stock=5)
        order = uuid.uuid4()
        response = await inventory.stub.reserve_products(
            ReserveProductsRequest(order_id=str(order), items=items((product, 4)))
        )
        assert response.reserved is True
        assert await inventory.stock_of(product) == (1, 4)

        async def expired() -> bool:
            return await inventory.reservation_status(order) == {"EXPIRED"}

        await wait_for(expired, within=15, what="the reservation to expire")
        assert await inventory.stock_of(product) == (5, 0)

        with pytest.raises(GRPCError) as raised:
            await inventory.stub.commit_reservation(CommitReservationRequest(order_id=str(order)))
        assert raised.value.status is Status.FAILED_PRECONDITION
        assert await inventory.stock_of(product) == (5, 0)

        event = await inventory.db.fetchrow(
            "SELECT value FROM outbox WHERE key = $1 AND topic = 'inventory.released'",
            str(order),
        )
        assert event is not None
        assert json.loads(event["value"])["reason"] == "RESERVATION_EXPIRED"


async def test_commit_of_an_expired_reservation_is_refused_even_before_the_sweep(
    jwks_url: str,
) -> None:
    # This app's job is effectively off (hour-long interval), so the commit usually
    # finds the reservation still RESERVED but past its time and expires it itself
    # (the deterministic check of that path is in tests/unit/inventory). Another
    # process's job may get there first: the outcome must be the same either way.
    settings = make_settings(
        jwks_url, reservation_ttl_seconds=0.2, reservation_expiry_interval_seconds=3600
    )
    async with running(settings) as inventory:
        product = await inventory.add_product(stock=2)
        order = uuid.uuid4()
        assert (
            await inventory.stub.reserve_products(
                ReserveProductsRequest(order_id=str(order), items=items((product, 2)))
            )
        ).reserved

        async def due() -> bool:
            return bool(
                await inventory.db.fetchval(
                    "SELECT bool_and(expires_at <= now()) FROM inventory_reservations"
                    " WHERE order_id = $1",
                    order,
                )
            )

        await wait_for(due, what="the reservation to be past its expiry")
        with pytest.raises(GRPCError) as raised:
            await inventory.stub.commit_reservation(CommitReservationRequest(order_id=str(order)))
        assert raised.value.status is Status.FAILED_PRECONDITION
        assert "EXPIRED" in (raised.value.message or "")
        assert await inventory.reservation_status(order) == {"EXPIRED"}
        assert await inventory.stock_of(product) == (2, 0)
