"""Generated betterproto2 stubs serve and call a method over a real grpclib connection."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from grpclib import GRPCError, Status
from grpclib.client import Channel
from grpclib.server import Server

from generated.grpc.inventory.v1 import (
    CommitReservationRequest,
    InventoryServiceBase,
    InventoryServiceStub,
    ProductQuantity,
    ReservedItem,
    ReserveProductsRequest,
    ReserveProductsResponse,
)


class FakeInventory(InventoryServiceBase):
    """Reserves everything at a fixed price, except an unknown product."""

    async def reserve_products(self, message: ReserveProductsRequest) -> ReserveProductsResponse:
        if any(item.product_id == "missing" for item in message.items):
            raise GRPCError(Status.NOT_FOUND, "no such product")
        return ReserveProductsResponse(
            reserved=True,
            items=[
                ReservedItem(
                    product_id=i.product_id, name="Thing", quantity=i.quantity, unit_price="10.50"
                )
                for i in message.items
            ],
        )


@pytest.fixture
async def channel() -> AsyncIterator[Channel]:
    server = Server([FakeInventory()])
    await server.start("127.0.0.1", 0)
    # grpclib has no public accessor for the bound port of port 0.
    port = server._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = Channel("127.0.0.1", port)
    try:
        yield client
    finally:
        client.close()
        server.close()
        await server.wait_closed()


async def test_generated_stub_calls_generated_service(channel: Channel) -> None:
    stub = InventoryServiceStub(channel)
    request = ReserveProductsRequest(
        order_id="order-1", items=[ProductQuantity(product_id="p-1", quantity=3)]
    )
    response = await stub.reserve_products(request, timeout=5)
    assert response.reserved is True
    assert [(i.product_id, i.quantity, i.unit_price) for i in response.items] == [
        ("p-1", 3, "10.50")
    ]


async def test_server_errors_reach_the_client_with_their_status(channel: Channel) -> None:
    stub = InventoryServiceStub(channel)
    request = ReserveProductsRequest(
        order_id="o", items=[ProductQuantity(product_id="missing", quantity=1)]
    )
    with pytest.raises(GRPCError) as raised:
        await stub.reserve_products(request, timeout=5)
    assert raised.value.status is Status.NOT_FOUND


async def test_unimplemented_method_answers_unimplemented(channel: Channel) -> None:
    stub = InventoryServiceStub(channel)
    with pytest.raises(GRPCError) as raised:
        await stub.commit_reservation(CommitReservationRequest(order_id="o"), timeout=5)
    assert raised.value.status is Status.UNIMPLEMENTED
