"""A call on a gRPC connection grpclib has just closed is "inventory unavailable" (503).

Found by the chaos soak (tests/chaos/soak.py, inventory killed mid-load): POST
/api/orders answered 500 with ``AttributeError: 'Connection' object has no attribute
'_transport'``. grpclib 0.4 drops the transport when it closes a connection and
reports the connection lost only later; a call started in between fails that way
(vmagamedov/grpclib#110). It is transient (the next call reconnects), so the port
must report it like any other transport failure. Loopback server, real grpclib.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from generated.grpc.inventory.v1 import (
    CheckAvailabilityRequest,
    CheckAvailabilityResponse,
    InventoryServiceBase,
)
from handwritten.orders.adapters.inventory_grpc import GrpcInventory, open_channel
from handwritten.orders.domain.requests import RequestedLine
from handwritten.orders.service_layer.ports import InventoryUnavailableError
from handwritten.runtime.grpc_server import GrpcServer
from tests.e2e.conftest import wait_for


class Inventory(InventoryServiceBase):
    async def check_availability(
        self, message: CheckAvailabilityRequest
    ) -> CheckAvailabilityResponse:
        return CheckAvailabilityResponse(available=True)


@pytest.fixture
async def server() -> AsyncIterator[GrpcServer]:
    running = GrpcServer([Inventory()], service="inventory")
    await running.start("127.0.0.1", 0)
    try:
        yield running
    finally:
        await running.stop(grace_seconds=1)


async def test_a_call_on_a_connection_closed_under_it_is_inventory_unavailable(
    server: GrpcServer,
) -> None:
    channel = open_channel(f"127.0.0.1:{server.port}")
    inventory = GrpcInventory(channel, timeout_seconds=5)
    lines = [RequestedLine(product_id=uuid.uuid4(), quantity=1)]
    try:
        assert (await inventory.check_availability(lines)).available
        # What grpclib does when it closes a connection itself (e.g. its keepalive ping
        # went unanswered): the transport is dropped now, the loss reported on a later
        # turn of the event loop. The next call starts in between.
        protocol = channel._protocol
        assert protocol is not None
        protocol.processor.connection.close()
        with pytest.raises(InventoryUnavailableError):
            await inventory.check_availability(lines)

        # Transient: once grpclib has seen the loss, the next call reconnects.
        async def loss_seen() -> bool:
            return bool(protocol.handler.connection_lost)

        await wait_for(loss_seen, seconds=10, what="grpclib to report the connection lost")
        assert (await inventory.check_availability(lines)).available
    finally:
        channel.close()
