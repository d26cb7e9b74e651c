"""The ports over gRPC (grpclib): orders, inventory and shipping.

Every call has a deadline (sent to the server as ``grpc-timeout`` and enforced
here too, connection set-up included), carries the correlation id, and goes
through the downstream's circuit breaker. Failures come out as the service
layer's errors: ``ServiceUnavailableError`` when there was no usable answer
(breaker open, refused, deadline, UNAVAILABLE/INTERNAL…, malformed answer), a
business error (``NotFoundError``, ``ConflictError``…) when the downstream
answered one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from grpclib import GRPCError
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import ProtocolError, StreamTerminatedError
from h2.exceptions import H2Error
from prometheus_client import Histogram

from generated.grpc.inventory.v1 import GetProductsRequest, InventoryServiceStub
from generated.grpc.orders.v1 import (
    CancelOrderRequest,
    GetOrdersRequest,
    GetOrderSummaryRequest,
    ListOrdersRequest,
    OrdersServiceStub,
)
from generated.grpc.shipping.v1 import GetShipmentsRequest, ShippingServiceStub
from handwritten.bff.adapters.breaker import AnsweredError, Breaker, CircuitOpenError
from handwritten.bff.adapters.mapping import (
    create_request,
    order_from_grpc,
    page_from_grpc,
    product_from_grpc,
    shipment_from_grpc,
    status_to_grpc,
    summary_from_grpc,
    unavailable_from_grpc,
)
from handwritten.bff.domain.errors import (
    BadUserInputError,
    BffError,
    ConflictError,
    InsufficientStockError,
    NotFoundError,
    ServiceUnavailableError,
)
from handwritten.bff.domain.models import (
    NewOrder,
    Order,
    OrderPage,
    OrderStatus,
    OrderSummary,
    Product,
    Shipment,
)
from handwritten.runtime.context import current_correlation_id
from handwritten.runtime.grpc_client import ObservedChannel
from handwritten.runtime.grpc_server import CORRELATION_METADATA
from handwritten.runtime.logging import get_logger
from handwritten.runtime.metrics import REGISTRY
from handwritten.runtime.tracing.grpclib import instrument_channel

log = get_logger(__name__)
T = TypeVar("T")

#: Statuses that are answers from a healthy server: they never trip a breaker.
ANSWER_STATUSES = frozenset(
    {
        Status.NOT_FOUND,
        Status.INVALID_ARGUMENT,
        Status.FAILED_PRECONDITION,
        Status.ABORTED,
        Status.ALREADY_EXISTS,
        Status.OUT_OF_RANGE,
        Status.PERMISSION_DENIED,
        Status.UNAUTHENTICATED,
    }
)
#: No answer at all. (``TimeoutError`` is an ``OSError``: it is told apart first.)
_TRANSPORT_ERRORS = (OSError, ProtocolError, StreamTerminatedError, H2Error)

DOWNSTREAM_DURATION = Histogram(
    "bff_downstream_call_seconds",
    "gRPC calls of the BFF to its downstreams, by downstream, method and outcome.",
    ["downstream", "method", "outcome"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)


def open_channel(target: str) -> Channel:
    """A lazily connecting channel to ``host:port``; reconnects after a failure."""
    host, separator, port = target.rpartition(":")
    if not separator or not host or not port.isdigit():
        raise ValueError(f"a gRPC target must be host:port, not {target!r}")
    return instrument_channel(ObservedChannel(host.strip("[]"), int(port), service="bff"))


class Downstream:
    """Calls to one downstream: deadline, correlation id, breaker, error mapping."""

    def __init__(self, name: str, breaker: Breaker, *, timeout_seconds: float) -> None:
        self.name = name
        self.breaker = breaker
        self.timeout_seconds = timeout_seconds

    @property
    def metadata(self) -> dict[str, str]:
        return {CORRELATION_METADATA: current_correlation_id()}

    async def call(
        self,
        method: str,
        invoke: Callable[[float], Awaitable[T]],
        *,
        answers: frozenset[Status] = ANSWER_STATUSES,
    ) -> T:
        """``await invoke(timeout)`` guarded; a GRPCError in ``answers`` is re-raised
        as is (for the caller's own mapping), any other failure becomes
        ``ServiceUnavailableError``."""
        timeout = self.timeout_seconds

        async def attempt() -> T:
            try:
                # grpclib's own deadline does not cover connecting; this one does.
                async with asyncio.timeout(timeout):
                    return await invoke(timeout)
            except GRPCError as exc:
                if exc.status in answers:
                    raise AnsweredError(exc) from exc
                raise

        started = time.perf_counter()
        outcome = "ok"
        try:
            return await self.breaker.call(attempt)
        except AnsweredError as answered:
            outcome = "answered"
            raise answered.error from None
        except CircuitOpenError:
            outcome = "circuit_open"
            raise ServiceUnavailableError(self.name, reason=outcome) from None
        except TimeoutError:
            outcome = "deadline_exceeded"
            raise ServiceUnavailableError(self.name, reason=outcome) from None
        except GRPCError as exc:
            outcome = exc.status.name.lower()
            log.warning("downstream failed", downstream=self.name, method=method, code=outcome)
            raise ServiceUnavailableError(self.name, reason=outcome) from None
        except _TRANSPORT_ERRORS as exc:
            outcome = "unreachable"
            log.warning("downstream unreachable", downstream=self.name, error=repr(exc))
            raise ServiceUnavailableError(self.name, reason=outcome) from None
        finally:
            DOWNSTREAM_DURATION.labels(self.name, method, outcome).observe(
                time.perf_counter() - started
            )

    def malformed(self, method: str, exc: ValueError) -> ServiceUnavailableError:
        log.error(
            "downstream sent a malformed answer",
            downstream=self.name,
            method=method,
            error=str(exc),
        )
        return ServiceUnavailableError(self.name, reason="malformed_answer")


def business_error(exc: GRPCError, *, not_found: str) -> BffError:
    """The client-facing error of an answered status."""
    detail = exc.message or exc.status.name
    if exc.status is Status.NOT_FOUND:
        return NotFoundError(not_found)
    if exc.status is Status.INVALID_ARGUMENT:
        return BadUserInputError(f"The request was refused: {detail}")
    if exc.status is Status.ABORTED:
        return ConflictError(
            "A request with the same idempotency key is still in progress; retry shortly.",
            reason="in_flight",
        )
    if exc.status is Status.FAILED_PRECONDITION:
        return ConflictError(detail)
    return BffError(detail)


class GrpcOrders:
    """``OrdersPort`` over ``orders.v1.OrdersService``."""

    def __init__(self, channel: Channel, downstream: Downstream) -> None:
        self._stub = OrdersServiceStub(channel)
        self._calls = downstream

    async def get_orders(self, order_ids: Sequence[str], *, scope: str) -> list[Order]:
        request = GetOrdersRequest(order_ids=list(order_ids), user_id=scope)
        try:
            reply = await self._calls.call(
                "GetOrders",
                lambda timeout: self._stub.get_orders(
                    request, timeout=timeout, metadata=self._calls.metadata
                ),
            )
        except GRPCError as exc:
            raise business_error(exc, not_found="Order not found.") from None
        try:
            return [order_from_grpc(order) for order in reply.orders]
        except ValueError as exc:
            raise self._calls.malformed("GetOrders", exc) from None

    async def list_orders(
        self, *, scope: str, page_size: int, cursor: str | None, status: OrderStatus | None
    ) -> OrderPage:
        request = ListOrdersRequest(
            user_id=scope,
            page_size=page_size,
            page_token=cursor or "",
            status=status_to_grpc(status),
        )
        try:
            reply = await self._calls.call(
                "ListOrders",
                lambda timeout: self._stub.list_orders(
                    request, timeout=timeout, metadata=self._calls.metadata
                ),
            )
        except GRPCError as exc:
            raise business_error(exc, not_found="No orders found.") from None
        try:
            return page_from_grpc(reply)
        except ValueError as exc:
            raise self._calls.malformed("ListOrders", exc) from None

    async def get_order_summary(self, order_id: str, *, scope: str) -> OrderSummary:
        request = GetOrderSummaryRequest(order_id=order_id, user_id=scope)
        try:
            reply = await self._calls.call(
                "GetOrderSummary",
                lambda timeout: self._stub.get_order_summary(
                    request, timeout=timeout, metadata=self._calls.metadata
                ),
            )
        except GRPCError as exc:
            raise business_error(exc, not_found=f"Order {order_id} was not found.") from None
        if reply.summary is None:
            raise self._calls.malformed("GetOrderSummary", ValueError("no summary"))
        try:
            return summary_from_grpc(reply.summary)
        except ValueError as exc:
            raise self._calls.malformed("GetOrderSummary", exc) from None

    async def create_order(self, order: NewOrder, *, user_id: str) -> Order:
        request = create_request(order, user_id=user_id)
        try:
            reply = await self._calls.call(
                "CreateOrder",
                lambda timeout: self._stub.create_order(
                    request, timeout=timeout, metadata=self._calls.metadata
                ),
                # Orders answers UNAVAILABLE when *inventory* is down (nothing was
                # created): an answer from a healthy orders service, not a trip.
                answers=ANSWER_STATUSES | {Status.UNAVAILABLE},
            )
        except GRPCError as exc:
            if exc.status is Status.UNAVAILABLE:
                raise ServiceUnavailableError("inventory", reason="unavailable") from None
            raise business_error(exc, not_found="Product not found.") from None
        if reply.unavailable_products:
            unavailable = [unavailable_from_grpc(item) for item in reply.unavailable_products]
            raise InsufficientStockError(
                "Not enough stock for some of the items; no order was created.",
                unavailableProducts=[
                    {
                        "productId": item.product_id,
                        "requestedQuantity": item.requested_quantity,
                        "availableQuantity": item.available_quantity,
                    }
                    for item in unavailable
                ],
            )
        if reply.order is None:
            raise self._calls.malformed("CreateOrder", ValueError("neither order nor shortage"))
        try:
            return order_from_grpc(reply.order)
        except ValueError as exc:
            raise self._calls.malformed("CreateOrder", exc) from None

    async def cancel_order(self, order_id: str, *, scope: str) -> Order:
        request = CancelOrderRequest(order_id=order_id, user_id=scope)
        try:
            reply = await self._calls.call(
                "CancelOrder",
                lambda timeout: self._stub.cancel_order(
                    request, timeout=timeout, metadata=self._calls.metadata
                ),
            )
        except GRPCError as exc:
            raise business_error(exc, not_found=f"Order {order_id} was not found.") from None
        if reply.order is None:
            raise self._calls.malformed("CancelOrder", ValueError("no order"))
        try:
            return order_from_grpc(reply.order)
        except ValueError as exc:
            raise self._calls.malformed("CancelOrder", exc) from None


class GrpcInventory:
    """``InventoryPort`` over ``inventory.v1.InventoryService``."""

    def __init__(self, channel: Channel, downstream: Downstream) -> None:
        self._stub = InventoryServiceStub(channel)
        self._calls = downstream

    async def get_products(self, product_ids: Sequence[str]) -> list[Product]:
        request = GetProductsRequest(product_ids=list(product_ids))
        try:
            reply = await self._calls.call(
                "GetProducts",
                lambda timeout: self._stub.get_products(
                    request, timeout=timeout, metadata=self._calls.metadata
                ),
            )
        except GRPCError as exc:
            # Our ids come from orders' lines: a refusal means a bug, not a client error.
            log.error("inventory refused GetProducts", code=exc.status.name)
            raise ServiceUnavailableError("inventory", reason=exc.status.name.lower()) from None
        try:
            return [product_from_grpc(product) for product in reply.products]
        except ValueError as exc:
            raise self._calls.malformed("GetProducts", exc) from None


class GrpcShipping:
    """``ShippingPort`` over ``shipping.v1.ShippingService``."""

    def __init__(self, channel: Channel, downstream: Downstream) -> None:
        self._stub = ShippingServiceStub(channel)
        self._calls = downstream

    async def get_shipments(self, order_ids: Sequence[str]) -> list[Shipment]:
        request = GetShipmentsRequest(order_ids=list(order_ids))
        try:
            reply = await self._calls.call(
                "GetShipments",
                lambda timeout: self._stub.get_shipments(
                    request, timeout=timeout, metadata=self._calls.metadata
                ),
            )
        except GRPCError as exc:
            log.error("shipping refused GetShipments", code=exc.status.name)
            raise ServiceUnavailableError("shipping", reason=exc.status.name.lower()) from None
        try:
            return [shipment_from_grpc(shipment) for shipment in reply.shipments]
        except ValueError as exc:
            raise self._calls.malformed("GetShipments", exc) from None
