"""Inventory over gRPC: ``inventory.v1.InventoryService/CheckAvailability``.

Every call has a deadline (2 s by default): a slow inventory must turn into a
quick 503, not a hung request. Any failure to get a well-formed answer (refused
connection, timeout, UNAVAILABLE, a malformed price) is ``InventoryUnavailableError``;
nothing has been created at that point, so the client may simply retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from uuid import UUID

from grpclib import GRPCError
from grpclib.client import Channel
from grpclib.exceptions import ProtocolError, StreamTerminatedError
from h2.exceptions import H2Error

from generated.grpc.inventory.v1 import (
    CheckAvailabilityRequest,
    InventoryServiceStub,
    ProductQuantity,
)
from handwritten.orders.domain.money import Money
from handwritten.orders.domain.pricing import Availability, Quote, Shortage
from handwritten.orders.domain.requests import RequestedLine
from handwritten.orders.service_layer.ports import Inventory, InventoryUnavailableError
from handwritten.runtime.context import current_correlation_id
from handwritten.runtime.failures import grpclib_connection_closed
from handwritten.runtime.grpc_client import ObservedChannel
from handwritten.runtime.grpc_server import CORRELATION_METADATA
from handwritten.runtime.logging import get_logger
from handwritten.runtime.tracing.grpclib import instrument_channel

log = get_logger(__name__)
_TRANSPORT_ERRORS = (
    OSError,
    TimeoutError,
    asyncio.TimeoutError,
    ProtocolError,
    StreamTerminatedError,
    H2Error,
)


def open_channel(target: str) -> Channel:
    """A lazily connecting channel to ``host:port`` (e.g. ``127.0.0.1:50053``)."""
    host, separator, port = target.rpartition(":")
    if not separator or not host or not port.isdigit():
        raise ValueError(f"INVENTORY_GRPC_TARGET must be host:port, not {target!r}")
    return instrument_channel(ObservedChannel(host.strip("[]"), int(port), service="orders"))


class GrpcInventory(Inventory):
    """The ``Inventory`` port over a grpclib channel."""

    def __init__(self, channel: Channel, *, timeout_seconds: float = 2.0) -> None:
        self._stub = InventoryServiceStub(channel)
        self._timeout = timeout_seconds

    async def check_availability(self, lines: Sequence[RequestedLine]) -> Availability:
        request = CheckAvailabilityRequest(
            items=[
                ProductQuantity(product_id=str(line.product_id), quantity=line.quantity)
                for line in lines
            ]
        )
        try:
            reply = await self._stub.check_availability(
                request,
                timeout=self._timeout,
                metadata={CORRELATION_METADATA: current_correlation_id()},
            )
        except GRPCError as exc:
            log.warning("inventory refused CheckAvailability", code=exc.status.name)
            raise InventoryUnavailableError(f"inventory answered {exc.status.name}") from exc
        except _TRANSPORT_ERRORS as exc:
            log.warning("inventory unreachable", error=repr(exc))
            raise InventoryUnavailableError("inventory is unreachable") from exc
        except AttributeError as exc:
            if not grpclib_connection_closed(exc):
                raise
            log.warning("inventory connection closed under the call", error=repr(exc))
            raise InventoryUnavailableError("inventory is unreachable") from exc
        try:
            return Availability(
                available=reply.available,
                quotes=tuple(
                    Quote(
                        product_id=UUID(quote.product_id),
                        name=quote.name,
                        unit_price=Money.parse(quote.unit_price),
                        available_quantity=quote.available_quantity,
                    )
                    for quote in reply.products
                ),
                shortages=tuple(
                    Shortage(
                        product_id=UUID(item.product_id),
                        requested_quantity=item.requested_quantity,
                        available_quantity=item.available_quantity,
                    )
                    for item in reply.unavailable_products
                ),
            )
        except ValueError as exc:
            log.error("inventory sent a malformed CheckAvailability answer", error=str(exc))
            raise InventoryUnavailableError("inventory sent a malformed answer") from exc
