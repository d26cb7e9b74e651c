"""ShippingService over a real grpclib channel: GetShipment and the BFF's batch."""

from __future__ import annotations

import uuid

import pytest
from grpclib import GRPCError
from grpclib.const import Status

from generated.grpc.shipping.v1 import GetShipmentRequest, GetShipmentsRequest
from generated.grpc.shipping.v1 import ShipmentStatus as GrpcStatus
from tests.integration.shipping.conftest import Orders, Shipping


async def test_batch_returns_known_shipments_in_request_order_once(
    shipping: Shipping, orders: Orders
) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    await orders.send(orders.confirmed(first, uuid.uuid4()))
    await orders.send(orders.confirmed(second, uuid.uuid4(), city="Salvador", state="BA"))
    second_shipment = await shipping.shipment_id(second)
    first_shipment = await shipping.shipment_id(first)
    unknown = uuid.uuid4()

    reply = await shipping.stub.get_shipments(
        GetShipmentsRequest(order_ids=[str(second), str(unknown), str(first), str(second)])
    )

    assert [s.order_id for s in reply.shipments] == [str(second), str(first)]
    assert [s.shipment_id for s in reply.shipments] == [str(second_shipment), str(first_shipment)]
    for shipment in reply.shipments:
        row = await shipping.shipment_row(uuid.UUID(shipment.order_id))
        assert row is not None
        assert shipment.tracking_code == row["tracking_code"]
        assert shipment.status == GrpcStatus.SCHEDULED
        assert shipment.estimated_delivery_date == row["estimated_delivery_date"].isoformat()
        assert shipment.delivered_at is None
        assert shipment.created_at == row["created_at"]
        assert [(h.status, h.occurred_at) for h in shipment.history] == [
            (GrpcStatus.SCHEDULED, row["created_at"])
        ]
        assert shipment.history[0].location


async def test_get_shipment(shipping: Shipping, orders: Orders) -> None:
    order_id = uuid.uuid4()
    await orders.send(orders.confirmed(order_id, uuid.uuid4()))
    shipment_id = await shipping.shipment_id(order_id)

    reply = await shipping.stub.get_shipment(GetShipmentRequest(order_id=str(order_id)))
    assert reply.shipment is not None
    assert reply.shipment.shipment_id == str(shipment_id)

    with pytest.raises(GRPCError) as missing:
        await shipping.stub.get_shipment(GetShipmentRequest(order_id=str(uuid.uuid4())))
    assert missing.value.status is Status.NOT_FOUND


@pytest.mark.parametrize(
    "order_ids",
    [[], ["not-a-uuid"], [str(uuid.uuid4()) for _ in range(101)]],
    ids=["empty", "malformed", "too-many"],
)
async def test_bad_batches_are_invalid_arguments(shipping: Shipping, order_ids: list[str]) -> None:
    with pytest.raises(GRPCError) as error:
        await shipping.stub.get_shipments(GetShipmentsRequest(order_ids=order_ids))
    assert error.value.status is Status.INVALID_ARGUMENT


async def test_malformed_id_is_an_invalid_argument(shipping: Shipping) -> None:
    with pytest.raises(GRPCError) as error:
        await shipping.stub.get_shipment(GetShipmentRequest(order_id="42"))
    assert error.value.status is Status.INVALID_ARGUMENT
