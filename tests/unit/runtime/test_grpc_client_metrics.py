"""gRPC client RED (``grpc_client_*``) over a real grpclib connection (loopback only)."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator

import pytest
from grpclib import GRPCError, Status

from generated.grpc.inventory.v1 import (
    CheckAvailabilityRequest,
    CheckAvailabilityResponse,
    InventoryServiceBase,
    InventoryServiceStub,
    ProductQuantity,
)
from handwritten.runtime.grpc_client import ObservedChannel, status_code
from handwritten.runtime.grpc_server import GrpcServer
from handwritten.runtime.metrics import REGISTRY

METHOD = "/inventory.v1.InventoryService/CheckAvailability"


class Inventory(InventoryServiceBase):
    """``missing`` → NOT_FOUND, ``slow`` → answers after the caller's deadline."""

    async def check_availability(
        self, message: CheckAvailabilityRequest
    ) -> CheckAvailabilityResponse:
        product = message.items[0].product_id
        if product == "missing":
            raise GRPCError(Status.NOT_FOUND, "no such product")
        if product == "slow":
            await asyncio.sleep(1)
        return CheckAvailabilityResponse(available=True)


@pytest.fixture
async def server() -> AsyncIterator[GrpcServer]:
    running = GrpcServer([Inventory()], service="inventory")
    await running.start("127.0.0.1", 0)
    try:
        yield running
    finally:
        await running.stop(grace_seconds=1)


def request(product: str) -> CheckAvailabilityRequest:
    return CheckAvailabilityRequest(items=[ProductQuantity(product_id=product, quantity=1)])


def calls(service: str, code: str) -> float:
    labels = {"service": service, "method": METHOD, "code": code}
    return REGISTRY.get_sample_value("grpc_client_handled_total", labels) or 0.0


def timed(service: str) -> float:
    labels = {"service": service, "method": METHOD}
    return REGISTRY.get_sample_value("grpc_client_handling_seconds_count", labels) or 0.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_every_call_is_counted_by_status_code_and_timed(server: GrpcServer) -> None:
    service = f"caller-{uuid.uuid4().hex[:8]}"  # series of this test only
    channel = ObservedChannel("127.0.0.1", server.port, service=service)
    stub = InventoryServiceStub(channel)
    try:
        assert (await stub.check_availability(request("p-1"), timeout=5)).available
        assert (await stub.check_availability(request("p-2"), timeout=5)).available
        with pytest.raises(GRPCError):
            await stub.check_availability(request("missing"), timeout=5)
        with pytest.raises(TimeoutError):
            await stub.check_availability(request("slow"), timeout=0.1)
    finally:
        channel.close()
    assert calls(service, "OK") == 2
    assert calls(service, "NOT_FOUND") == 1
    assert calls(service, "DEADLINE_EXCEEDED") == 1
    assert timed(service) == 4


async def test_a_refused_connection_counts_as_unavailable() -> None:
    service = f"caller-{uuid.uuid4().hex[:8]}"
    channel = ObservedChannel("127.0.0.1", free_port(), service=service)
    try:
        with pytest.raises(OSError):
            await InventoryServiceStub(channel).check_availability(request("p"), timeout=5)
    finally:
        channel.close()
    assert calls(service, "UNAVAILABLE") == 1
    assert timed(service) == 1


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (None, "OK"),
        (GRPCError(Status.FAILED_PRECONDITION), "FAILED_PRECONDITION"),
        (asyncio.CancelledError(), "CANCELLED"),
        (TimeoutError(), "DEADLINE_EXCEEDED"),
        (ConnectionResetError(), "UNAVAILABLE"),
        (ValueError("bug"), "UNKNOWN"),
    ],
)
def test_status_codes_of_calls_without_a_status(error: BaseException | None, code: str) -> None:
    assert status_code(error) == code
