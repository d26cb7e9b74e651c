"""A saga keeps the trace of the request that started it, whichever worker runs it.

The saga is started inside a span (as the orders service starts it inside the
request that creates the order); every later transition is run by a worker task
that has no span of its own, yet each must be a span of that same trace, named
after its step, tagged with the saga and order ids, with the commands it sends and
the gRPC calls it makes as its children.
"""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from handwritten.runtime import tracing
from handwritten.runtime.tracing.grpclib import instrument_channel
from tests.integration.saga.conftest import Harness, definition


async def test_every_step_is_a_span_of_the_trace_that_started_the_saga(
    harness: Harness, exporter: InMemorySpanExporter
) -> None:
    # The harness's inventory channel, traced as the orders service's is (a no-op for
    # the other tests of the module, which run with tracing off).
    instrument_channel(harness.stub.channel)
    saga = definition("t_traced")
    engine = harness.engine(saga)
    with tracing.span("create order") as request:
        saga_id, order = await harness.start(engine)
    stored = await harness.pool.fetchval(
        "SELECT traceparent FROM saga_instances WHERE saga_id = $1", saga_id
    )
    started = request.get_span_context()
    assert stored.split("-")[1:3] == [format(started.trace_id, "032x"), f"{started.span_id:016x}"]

    async with harness.worker(engine):
        assert await harness.wait_state(saga_id, "COMPLETED") == "COMPLETED"

    spans = [
        s
        for s in exporter.get_finished_spans()
        if s.context.trace_id == started.trace_id and s.name.startswith("saga ")
    ]
    steps = [s for s in spans if s.name.startswith("saga step ")]
    assert [s.name for s in steps] == [
        "saga step reserve_inventory",
        "saga step process_payment",
        "saga step process_payment reply",
        "saga step commit_reservation",
        "saga step confirm_order",
    ]
    for step in steps:
        assert step.parent is not None and step.parent.span_id == started.span_id
        assert step.attributes is not None
        assert step.attributes["saga.id"] == str(saga_id)
        assert step.attributes["order.id"] == order
        assert step.attributes["saga.name"] == saga.name
    payment_step = steps[1]
    command = next(
        s
        for s in exporter.get_finished_spans()
        if s.kind is SpanKind.PRODUCER
        and s.name == "send payments.requested"
        and (s.attributes or {}).get("messaging.kafka.message.key") == order
    )
    # Sent later by the relay, still under the step that recorded the command.
    assert command.parent is not None and command.parent.span_id == payment_step.context.span_id
    served = [
        s
        for s in exporter.get_finished_spans()
        if s.kind is SpanKind.SERVER and s.context.trace_id == started.trace_id
    ]
    assert {s.name for s in served} >= {
        "inventory.v1.InventoryService/ReserveProducts",
        "inventory.v1.InventoryService/CommitReservation",
    }
    # Each call is made by its step: server ← client ← step.
    by_id = {s.context.span_id: s for s in exporter.get_finished_spans()}
    for call in served:
        client = by_id[call.parent.span_id] if call.parent else None
        assert client is not None and client.kind is SpanKind.CLIENT
        assert client.parent is not None and by_id[client.parent.span_id].name.startswith("saga ")
