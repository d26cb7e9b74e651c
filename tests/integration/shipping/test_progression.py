"""The progression job on a short step: SCHEDULED → IN_TRANSIT → DELIVERED, one step
per interval, each announced once on Kafka, even with a second replica's job
competing for the same shipments."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import uuid
from collections.abc import AsyncIterator

import pytest

from generated.events.registry import SHIPPING_SCHEDULED, SHIPPING_UPDATED
from generated.grpc.shipping.v1 import GetShipmentRequest
from generated.grpc.shipping.v1 import ShipmentStatus as GrpcStatus
from handwritten.shipping.adapters.postgres import unit_of_work_factory
from handwritten.shipping.app import outbox_events
from handwritten.shipping.entrypoints.progression import ProgressionJob
from tests.integration.shipping.conftest import (
    Collector,
    Orders,
    Shipping,
    TokenIssuer,
    header_of,
    running,
    wait_for,
)

STEP_SECONDS = 1.0


@pytest.fixture(scope="module")
async def fast(jwks_url: str, kafka_bootstrap: str) -> AsyncIterator[Shipping]:
    async with running(
        jwks_url=jwks_url,
        kafka_bootstrap=kafka_bootstrap,
        prefix="shipping_fast",
        shipping_step_seconds=STEP_SECONDS,
        shipping_poll_seconds=0.1,
    ) as app:
        yield app


@pytest.fixture
async def second_replica(fast: Shipping) -> AsyncIterator[ProgressionJob]:
    """Another replica's progression job on the same database."""
    assert fast.runtime.pool is not None
    job = ProgressionJob(
        unit_of_work_factory(fast.runtime.pool, outbox_events),
        step_seconds=STEP_SECONDS,
        poll_seconds=0.05,
        batch_size=100,
    )
    task = asyncio.create_task(job.run())
    try:
        yield job
    finally:
        job.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)


async def test_shipment_is_delivered_step_by_step(
    fast: Shipping,
    second_replica: ProgressionJob,
    orders: Orders,
    collector: Collector,
    issuer: TokenIssuer,
) -> None:
    order_id, user_id = uuid.uuid4(), uuid.uuid4()
    record = orders.confirmed(order_id, user_id, city="Porto Alegre", state="RS")
    await orders.send(record)
    shipment_id = await fast.shipment_id(order_id)

    async def delivered() -> bool:
        response = await fast.http.get(
            f"/api/shipping/orders/{order_id}", headers=issuer.headers(user_id)
        )
        return response.status_code == 200 and response.json()["status"] == "DELIVERED"

    await wait_for(delivered, what="the shipment to be delivered")

    response = await fast.http.get(
        f"/api/shipping/orders/{order_id}", headers=issuer.headers(user_id)
    )
    history = response.json()["history"]
    assert [entry["status"] for entry in history] == ["SCHEDULED", "IN_TRANSIT", "DELIVERED"]
    assert [entry["location"] for entry in history] == [
        "Distribution center, São Paulo - SP",
        "In transit to Porto Alegre - RS",
        "Porto Alegre - RS",
    ]
    # One step per interval: each status lasted at least the step, even with two jobs.
    instants = [dt.datetime.fromisoformat(entry["occurredAt"]) for entry in history]
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(instants)]
    assert all(gap >= STEP_SECONDS for gap in gaps), gaps

    # Exactly one shipping.updated per step reaches Kafka, in order, in the saga's story.
    await fast.published(order_id)

    async def announced() -> bool:
        return len(collector.of_shipment(shipment_id)) >= 3

    await wait_for(announced, what="shipping.scheduled and two shipping.updated on Kafka")
    events = collector.of_shipment(shipment_id)
    assert [(e.spec.topic, getattr(e.payload, "status", None)) for e in events] == [
        (SHIPPING_SCHEDULED.topic, None),
        (SHIPPING_UPDATED.topic, "IN_TRANSIT"),
        (SHIPPING_UPDATED.topic, "DELIVERED"),
    ]
    correlation = header_of(record, "correlation-id")
    assert {e.headers.correlation_id for e in events} == {correlation}
    assert [e.payload.location for e in events[1:]] == [entry["location"] for entry in history[1:]]

    reply = await fast.stub.get_shipment(GetShipmentRequest(order_id=str(order_id)))
    assert reply.shipment is not None
    assert reply.shipment.status == GrpcStatus.DELIVERED
    assert reply.shipment.delivered_at == instants[-1]

    # A delivered shipment is final: once it is older than a step, a job round
    # finds nothing to move and its history stays as it is.
    async def due_if_it_could_move() -> bool:
        age: float = await fast.db.fetchval(
            "SELECT extract(epoch FROM now() - updated_at) FROM shipments WHERE order_id = $1",
            order_id,
        )
        return age > STEP_SECONDS

    await wait_for(due_if_it_could_move, what="the delivered status to be a step old")
    assert await second_replica.run_once() == 0
    assert len(await fast.outbox(order_id)) == 3
    assert (
        await fast.db.fetchval(
            "SELECT count(*) FROM shipment_status_history WHERE shipment_id = $1", shipment_id
        )
        == 3
    )
