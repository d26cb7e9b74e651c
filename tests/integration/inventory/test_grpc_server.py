"""The runtime's GrpcServer as the inventory uses it: ids, errors, graceful stop."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from grpclib import GRPCError
from grpclib.client import Channel
from grpclib.const import Cardinality, Status

from generated.grpc.inventory.v1 import (
    CheckAvailabilityRequest,
    CheckAvailabilityResponse,
    GetProductRequest,
    GetProductResponse,
    InventoryServiceBase,
    InventoryServiceStub,
    Product,
)
from handwritten.runtime.grpc_server import GrpcServer


class FakeInventory(InventoryServiceBase):
    """GetProduct waits until released; CheckAvailability fails unexpectedly."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def get_product(self, message: GetProductRequest) -> GetProductResponse:
        self.started.set()
        await self.release.wait()
        return GetProductResponse(product=Product(product_id=message.product_id, name="Slow"))

    async def check_availability(
        self, message: CheckAvailabilityRequest
    ) -> CheckAvailabilityResponse:
        raise RuntimeError("connection string postgres://secret@db")


@pytest.fixture
async def served() -> AsyncIterator[tuple[GrpcServer, FakeInventory, Channel]]:
    fake = FakeInventory()
    server = GrpcServer([fake], service="inventory-test")
    await server.start("127.0.0.1", 0)
    channel = Channel("127.0.0.1", server.port)
    try:
        yield server, fake, channel
    finally:
        fake.release.set()
        channel.close()
        await server.stop(grace_seconds=1)


async def test_correlation_id_is_taken_from_metadata_and_echoed(
    served: tuple[GrpcServer, FakeInventory, Channel],
) -> None:
    server, fake, channel = served
    assert server.port > 0
    fake.release.set()
    for sent in ("order-saga-42", None):
        metadata = {"x-correlation-id": sent} if sent else None
        async with channel.request(
            "/inventory.v1.InventoryService/GetProduct",
            Cardinality.UNARY_UNARY,
            GetProductRequest,
            GetProductResponse,
            metadata=metadata,
        ) as stream:
            await stream.send_message(GetProductRequest(product_id="p-1"), end=True)
            await stream.recv_initial_metadata()
            reply = await stream.recv_message()
            assert reply is not None and reply.product is not None
            echoed = stream.initial_metadata["x-correlation-id"]  # type: ignore[index]
            if sent:
                assert echoed == sent
            else:
                uuid.UUID(str(echoed))  # a fresh id was made


async def test_unexpected_errors_are_internal_without_details(
    served: tuple[GrpcServer, FakeInventory, Channel],
) -> None:
    _, _, channel = served
    with pytest.raises(GRPCError) as raised:
        await InventoryServiceStub(channel).check_availability(
            CheckAvailabilityRequest(), timeout=5
        )
    assert raised.value.status is Status.INTERNAL
    assert raised.value.message == "An unexpected error occurred."


async def test_stop_drains_calls_in_flight_and_refuses_new_ones(
    served: tuple[GrpcServer, FakeInventory, Channel],
) -> None:
    server, fake, channel = served
    stub = InventoryServiceStub(channel, timeout=5)
    in_flight = asyncio.create_task(stub.get_product(GetProductRequest(product_id="p-1")))
    await asyncio.wait_for(fake.started.wait(), 5)
    stopping = asyncio.create_task(server.stop(grace_seconds=5))
    await asyncio.sleep(0.1)
    assert not stopping.done(), "stop must wait for the call in flight"
    with pytest.raises(GRPCError) as raised:
        await stub.get_product(GetProductRequest(product_id="p-2"))
    assert raised.value.status is Status.UNAVAILABLE
    fake.release.set()
    reply = await in_flight
    assert reply.product is not None and reply.product.name == "Slow"
    await asyncio.wait_for(stopping, 5)
