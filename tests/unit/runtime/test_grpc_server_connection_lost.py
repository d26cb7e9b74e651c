"""A lost database connection inside an RPC is UNAVAILABLE (retried), not INTERNAL.

Found by the chaos tests (tests/chaos, PostgreSQL connections reset): inventory's
ReserveProducts lost its connection mid-call, answered INTERNAL, and the saga, which
retries only UNAVAILABLE and DEADLINE_EXCEEDED, canceled the order as OUT_OF_STOCK
although the stock was there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from grpclib import GRPCError, Status
from grpclib.client import Channel

from generated.grpc.inventory.v1 import (
    CheckAvailabilityRequest,
    CheckAvailabilityResponse,
    InventoryServiceBase,
    InventoryServiceStub,
    ProductQuantity,
)
from handwritten.runtime.grpc_server import GrpcServer


class Inventory(InventoryServiceBase):
    """``reset`` → the database connection is lost mid-call; ``bug`` → a plain bug."""

    async def check_availability(
        self, message: CheckAvailabilityRequest
    ) -> CheckAvailabilityResponse:
        product = message.items[0].product_id
        if product == "reset":
            raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle")
        if product == "bug":
            raise KeyError("a real bug")
        return CheckAvailabilityResponse(available=True)


@pytest.fixture
async def stub() -> AsyncIterator[InventoryServiceStub]:
    server = GrpcServer([Inventory()], service="inventory")
    await server.start("127.0.0.1", 0)
    channel = Channel("127.0.0.1", server.port)
    try:
        yield InventoryServiceStub(channel)
    finally:
        channel.close()
        await server.stop(grace_seconds=1)


def request(product: str) -> CheckAvailabilityRequest:
    return CheckAvailabilityRequest(items=[ProductQuantity(product_id=product, quantity=1)])


async def test_a_lost_database_connection_is_unavailable(stub: InventoryServiceStub) -> None:
    with pytest.raises(GRPCError) as raised:
        await stub.check_availability(request("reset"), timeout=5)
    assert raised.value.status is Status.UNAVAILABLE


async def test_a_bug_is_still_internal_and_says_nothing_of_it(stub: InventoryServiceStub) -> None:
    with pytest.raises(GRPCError) as raised:
        await stub.check_availability(request("bug"), timeout=5)
    assert raised.value.status is Status.INTERNAL
    assert "KeyError" not in (raised.value.message or "")
    assert (await stub.check_availability(request("p-1"), timeout=5)).available
