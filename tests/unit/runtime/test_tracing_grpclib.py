"""The grpclib instrumentation over a real grpclib connection (loopback, no infrastructure).

A ``GrpcServer`` (which instruments its server) serves a small inventory; the
client calls it through the generated stub on an instrumented channel. Spans go
to an in-memory exporter through ``use_provider``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from grpclib import GRPCError, Status
from grpclib.client import Channel
from grpclib.events import RecvRequest, listen
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from generated.grpc.inventory.v1 import (
    CheckAvailabilityRequest,
    CheckAvailabilityResponse,
    InventoryServiceBase,
    InventoryServiceStub,
    ProductQuantity,
)
from handwritten.runtime import tracing
from handwritten.runtime.grpc_client import ObservedChannel
from handwritten.runtime.grpc_server import GrpcServer
from handwritten.runtime.tracing.grpclib import instrument_channel

METHOD = "inventory.v1.InventoryService/CheckAvailability"


class RecordingInventory(InventoryServiceBase):
    """Answers by product id: ``missing`` → NOT_FOUND, ``boom`` → a bug, ``slow`` →
    sleeps; records the metadata of every call."""

    def __init__(self) -> None:
        self.metadata: list[dict[str, Any]] = []

    async def check_availability(
        self, message: CheckAvailabilityRequest
    ) -> CheckAvailabilityResponse:
        product = message.items[0].product_id
        if product == "missing":
            raise GRPCError(Status.NOT_FOUND, "no such product")
        if product == "boom":
            raise RuntimeError("a bug")
        if product == "slow":
            await asyncio.sleep(2)
        return CheckAvailabilityResponse(available=True)


@pytest.fixture
async def server() -> AsyncIterator[tuple[GrpcServer, RecordingInventory]]:
    inventory = RecordingInventory()
    grpc = GrpcServer([inventory], service="inventory")

    # The metadata as the server received it (grpclib's public event).
    async def remember(event: RecvRequest) -> None:
        inventory.metadata.append(dict(event.metadata))

    listen(grpc._server, RecvRequest, remember)
    await grpc.start("127.0.0.1", 0)
    try:
        yield grpc, inventory
    finally:
        await grpc.stop(grace_seconds=1)


@pytest.fixture
async def channel(server: tuple[GrpcServer, RecordingInventory]) -> AsyncIterator[Channel]:
    client = instrument_channel(Channel("127.0.0.1", server[0].port))
    try:
        yield client
    finally:
        client.close()


def request(product: str) -> CheckAvailabilityRequest:
    return CheckAvailabilityRequest(items=[ProductQuantity(product_id=product, quantity=1)])


def by_kind(spans: tuple[ReadableSpan, ...], kind: SpanKind) -> ReadableSpan:
    found = [span for span in spans if span.kind is kind]
    assert len(found) == 1, [(s.name, s.kind) for s in spans]
    return found[0]


def traceparent_of(span: ReadableSpan) -> str:
    context = span.get_span_context()
    assert context is not None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


async def test_client_and_server_spans_form_one_tree_under_the_caller(
    exporter: InMemorySpanExporter,
    channel: Channel,
    server: tuple[GrpcServer, RecordingInventory],
) -> None:
    with tracing.span("caller") as caller:
        await InventoryServiceStub(channel).check_availability(request("p-1"), timeout=5)

    spans = exporter.get_finished_spans()
    client, served = by_kind(spans, SpanKind.CLIENT), by_kind(spans, SpanKind.SERVER)
    assert client.name == served.name == METHOD
    caller_context = caller.get_span_context()
    assert client.parent is not None and client.parent.span_id == caller_context.span_id
    assert served.parent is not None and served.parent.span_id == client.context.span_id
    assert {client.context.trace_id, served.context.trace_id} == {caller_context.trace_id}
    # The server read the client span's context from the call's metadata.
    assert server[1].metadata[-1]["traceparent"] == traceparent_of(client)
    for span in (client, served):
        assert span.attributes is not None
        assert span.attributes["rpc.system"] == "grpc"
        assert span.attributes["rpc.service"] == "inventory.v1.InventoryService"
        assert span.attributes["rpc.method"] == "CheckAvailability"
        assert span.attributes["rpc.grpc.status_code"] == Status.OK.value
        assert span.status.status_code is StatusCode.UNSET
    assert client.attributes is not None and client.attributes["server.port"] == server[0].port
    assert served.attributes is not None and "network.peer.address" in served.attributes


async def test_a_business_refusal_fails_the_client_span_only(
    exporter: InMemorySpanExporter, channel: Channel
) -> None:
    with pytest.raises(GRPCError) as raised:
        await InventoryServiceStub(channel).check_availability(request("missing"), timeout=5)
    assert raised.value.status is Status.NOT_FOUND

    spans = exporter.get_finished_spans()
    client, served = by_kind(spans, SpanKind.CLIENT), by_kind(spans, SpanKind.SERVER)
    for span in (client, served):
        assert span.attributes is not None
        assert span.attributes["rpc.grpc.status_code"] == Status.NOT_FOUND.value
    assert client.status.status_code is StatusCode.ERROR
    assert client.status.description == "no such product"
    assert served.status.status_code is StatusCode.UNSET


async def test_a_server_bug_fails_both_spans_as_internal(
    exporter: InMemorySpanExporter, channel: Channel
) -> None:
    with pytest.raises(GRPCError) as raised:
        await InventoryServiceStub(channel).check_availability(request("boom"), timeout=5)
    assert raised.value.status is Status.INTERNAL

    spans = exporter.get_finished_spans()
    for span in (by_kind(spans, SpanKind.CLIENT), by_kind(spans, SpanKind.SERVER)):
        assert span.attributes is not None
        assert span.attributes["rpc.grpc.status_code"] == Status.INTERNAL.value
        assert span.status.status_code is StatusCode.ERROR


async def test_a_deadline_is_deadline_exceeded_on_the_client(
    exporter: InMemorySpanExporter, channel: Channel
) -> None:
    with pytest.raises((TimeoutError, GRPCError)):
        await InventoryServiceStub(channel).check_availability(request("slow"), timeout=0.2)

    client = by_kind(exporter.get_finished_spans(), SpanKind.CLIENT)
    assert client.attributes is not None
    assert client.attributes["rpc.grpc.status_code"] == Status.DEADLINE_EXCEEDED.value
    assert client.status.status_code is StatusCode.ERROR


async def test_an_unreachable_server_ends_the_client_span_as_unavailable(
    exporter: InMemorySpanExporter,
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    channel = instrument_channel(Channel("127.0.0.1", port))
    try:
        with pytest.raises(ConnectionRefusedError):
            await InventoryServiceStub(channel).check_availability(request("p-1"), timeout=2)
    finally:
        channel.close()

    client = by_kind(exporter.get_finished_spans(), SpanKind.CLIENT)
    assert client.attributes is not None
    assert client.attributes["rpc.grpc.status_code"] == Status.UNAVAILABLE.value
    assert client.status.status_code is StatusCode.ERROR


async def test_it_composes_with_the_metrics_channel(
    exporter: InMemorySpanExporter, server: tuple[GrpcServer, RecordingInventory]
) -> None:
    channel = instrument_channel(ObservedChannel("127.0.0.1", server[0].port, service="orders"))
    try:
        assert isinstance(channel, ObservedChannel)
        await InventoryServiceStub(channel).check_availability(request("p-1"), timeout=5)
    finally:
        channel.close()

    spans = exporter.get_finished_spans()
    client, served = by_kind(spans, SpanKind.CLIENT), by_kind(spans, SpanKind.SERVER)
    assert served.parent is not None and served.parent.span_id == client.context.span_id


async def test_nothing_is_recorded_or_sent_while_tracing_is_off(
    channel: Channel, server: tuple[GrpcServer, RecordingInventory]
) -> None:
    assert not tracing.enabled()
    await InventoryServiceStub(channel).check_availability(request("p-1"), timeout=5)
    assert "traceparent" not in server[1].metadata[-1]
