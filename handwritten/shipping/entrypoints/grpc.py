"""The ``shipping.v1.ShippingService`` gRPC service (read-only, used by the BFF).

Status codes: INVALID_ARGUMENT for a malformed order id or a batch outside 1..100
ids; NOT_FOUND when GetShipment's order has no shipment. Authorization is the
caller's job (the proto says so): the BFF only asks for orders the user may see.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from grpclib import GRPCError
from grpclib.const import Status

from generated.grpc.shipping.v1 import (
    GetShipmentRequest,
    GetShipmentResponse,
    GetShipmentsRequest,
    GetShipmentsResponse,
    ShipmentStatusChange,
    ShippingServiceBase,
)
from generated.grpc.shipping.v1 import Shipment as GrpcShipment
from generated.grpc.shipping.v1 import ShipmentStatus as GrpcShipmentStatus
from handwritten.shipping.domain.shipments import Shipment
from handwritten.shipping.service_layer.shipping import ShipmentQueries

#: Most order ids one GetShipments may ask for (the proto's documented bound).
MAX_BATCH = 100


def to_grpc(shipment: Shipment) -> GrpcShipment:
    return GrpcShipment(
        shipment_id=str(shipment.shipment_id),
        order_id=str(shipment.order_id),
        tracking_code=shipment.tracking_code,
        status=GrpcShipmentStatus[shipment.status.value],
        estimated_delivery_date=shipment.estimated_delivery_date.isoformat(),
        delivered_at=shipment.delivered_at,
        history=[
            ShipmentStatusChange(
                status=GrpcShipmentStatus[change.status.value],
                # proto3 strings have no null: empty means unknown.
                location=change.location or "",
                occurred_at=change.occurred_at,
            )
            for change in shipment.history
        ],
        created_at=shipment.created_at,
        updated_at=shipment.updated_at,
    )


def parse_order_id(text: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise GRPCError(Status.INVALID_ARGUMENT, f"{field} is not a UUID: {text!r}") from None


def parse_batch(order_ids: Sequence[str]) -> list[uuid.UUID]:
    """The distinct ids of a GetShipments request, in request order."""
    if not 1 <= len(order_ids) <= MAX_BATCH:
        raise GRPCError(
            Status.INVALID_ARGUMENT, f"order_ids must hold between 1 and {MAX_BATCH} ids"
        )
    return list(
        dict.fromkeys(
            parse_order_id(text, f"order_ids[{index}]") for index, text in enumerate(order_ids)
        )
    )


class ShippingGrpcService(ShippingServiceBase):
    """Implements the generated service base on the shipment queries."""

    def __init__(self, queries: ShipmentQueries) -> None:
        self._queries = queries

    async def get_shipment(self, message: GetShipmentRequest) -> GetShipmentResponse:
        order_id = parse_order_id(message.order_id, "order_id")
        shipment = await self._queries.get(order_id)
        if shipment is None:
            raise GRPCError(Status.NOT_FOUND, f"order {order_id} has no shipment")
        return GetShipmentResponse(shipment=to_grpc(shipment))

    async def get_shipments(self, message: GetShipmentsRequest) -> GetShipmentsResponse:
        ids = parse_batch(message.order_ids)
        found = await self._queries.get_many(ids)
        return GetShipmentsResponse(shipments=[to_grpc(found[i]) for i in ids if i in found])
