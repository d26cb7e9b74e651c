"""The shipping REST API: implements the generated ``ShippingHandlers``.

Every route needs a verified bearer token (401 problem+json otherwise). That check
is a router dependency (``authenticate``), so it runs before the path is validated
and any route added later is protected by default. A customer sees only the
shipments of their own orders; anything else answers 404, exactly like an order
without a shipment, so ids of other users' orders reveal nothing. Admins see all.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from fastapi import Request, Response

from generated.models.shipping import Shipment as ApiShipment
from generated.models.shipping import ShipmentHistoryEntry
from generated.models.shipping import ShipmentStatus as ApiShipmentStatus
from handwritten.runtime.auth import RequestAuthenticator
from handwritten.runtime.jwt import AccessClaims
from handwritten.runtime.problems import ProblemError
from handwritten.shipping.domain.shipments import Shipment
from handwritten.shipping.service_layer.shipping import ShipmentQueries

_CLAIMS = "shipping_claims"


@dataclass(frozen=True)
class RestComponents:
    """What the handlers use, opened by the app's lifespan."""

    queries: ShipmentQueries
    authenticator: RequestAuthenticator


def to_api(shipment: Shipment) -> ApiShipment:
    return ApiShipment(
        order_id=shipment.order_id,
        tracking_code=shipment.tracking_code,
        status=ApiShipmentStatus(shipment.status.value),
        estimated_delivery_date=shipment.estimated_delivery_date,
        history=[
            ShipmentHistoryEntry(
                status=ApiShipmentStatus(change.status.value),
                location=change.location,
                occurred_at=change.occurred_at,
            )
            for change in shipment.history
        ],
    )


class ShippingApi:
    """The handlers; ``attach`` hands them the components once the app has started."""

    def __init__(self) -> None:
        self._components: RestComponents | None = None

    def attach(self, components: RestComponents | None) -> None:
        self._components = components

    @property
    def components(self) -> RestComponents:
        if self._components is None:
            raise RuntimeError("the shipping app has not started (lifespan not run)")
        return self._components

    async def authenticate(self, request: Request) -> None:
        """Router dependency: a verified caller (401 otherwise), kept for the handler."""
        setattr(request.state, _CLAIMS, await self.components.authenticator.user(request))

    async def get_shipment(self, request: Request, *, order_id: UUID) -> ApiShipment | Response:
        claims: AccessClaims = getattr(request.state, _CLAIMS)
        shipment = await self.components.queries.get(order_id)
        if shipment is None or not shipment.visible_to(claims.user_id, admin=claims.is_admin):
            raise ProblemError(404, f"Order {order_id} has no shipment.")
        return to_api(shipment)
