"""The ``orders.v1.OrdersService`` gRPC service over ``OrdersService`` (used by the BFF).

Authorization scope: a non-empty ``user_id`` limits reads and cancels to that
user's orders (others behave as missing); an empty one means an admin caller.
Status codes: INVALID_ARGUMENT for malformed ids, items or paging; NOT_FOUND;
FAILED_PRECONDITION for a forbidden transition or an idempotency key reused with
another request; ABORTED while a request with the same key is in flight;
UNAVAILABLE when inventory cannot be reached (nothing was created). Missing stock
is not an error: CreateOrder answers it in ``unavailable_products``.
"""

from __future__ import annotations

import json
import re
from uuid import UUID

import asyncpg
from grpclib import GRPCError
from grpclib.const import Status

from generated.grpc.orders.v1 import (
    CancelOrderRequest,
    CancelOrderResponse,
    CancelReason,
    CreateOrderRequest,
    CreateOrderResponse,
    GetOrderRequest,
    GetOrderResponse,
    GetOrdersRequest,
    GetOrdersResponse,
    GetOrderSummaryRequest,
    GetOrderSummaryResponse,
    ListOrdersRequest,
    ListOrdersResponse,
    Order,
    OrderItem,
    OrdersServiceBase,
    OrderStatus,
    OrderSummary,
    PaymentInfo,
    PaymentStatus,
    ShippingAddress,
    ShippingInfo,
    ShippingStatus,
    UnavailableProduct,
)
from handwritten.orders.domain.errors import (
    FieldViolation,
    InvalidOrderError,
    InvalidTransitionError,
    OrderError,
    OrderNotFoundError,
)
from handwritten.orders.domain.order import OrderStatus as DomainStatus
from handwritten.orders.domain.requests import payment_token, requested_lines, shipping_address
from handwritten.orders.service_layer.orders import OrdersService, OutOfStock, PlaceOrder
from handwritten.orders.service_layer.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from handwritten.orders.service_layer.ports import InventoryUnavailableError
from handwritten.orders.service_layer.read_model import OrderView
from handwritten.runtime.idempotency import (
    Claim,
    ClaimLostError,
    IdempotencyStore,
    KeyInFlightError,
    KeyReusedError,
    StoredResponse,
    fingerprint,
)

CREATE_ORDER_METHOD = "/orders.v1.OrdersService/CreateOrder"
MAX_BATCH = 100
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7E]{1,255}$")


def to_grpc_error(error: OrderError) -> GRPCError:
    if isinstance(error, InvalidOrderError):
        return GRPCError(Status.INVALID_ARGUMENT, str(error))
    if isinstance(error, OrderNotFoundError):
        return GRPCError(Status.NOT_FOUND, str(error))
    if isinstance(error, InvalidTransitionError):
        return GRPCError(Status.FAILED_PRECONDITION, str(error))
    raise error


def _uuid(text: str, field: str) -> UUID:
    try:
        return UUID(text)
    except ValueError as exc:
        raise GRPCError(Status.INVALID_ARGUMENT, f"{field}: must be a UUID") from exc


def _scope(user_id: str) -> UUID | None:
    return None if not user_id else _uuid(user_id, "user_id")


def to_grpc(view: OrderView) -> Order:
    return Order(
        order_id=str(view.order_id),
        user_id=str(view.user_id),
        status=OrderStatus[view.status.value],
        items=[
            OrderItem(
                product_id=str(line.product_id),
                product_name=line.product_name,
                quantity=line.quantity,
                unit_price=line.unit_price.to_wire(),
            )
            for line in view.lines
        ],
        total_amount=view.total.to_wire(),
        currency=view.total.currency,
        shipping_address=ShippingAddress(
            street=view.shipping_address.street,
            city=view.shipping_address.city,
            state=view.shipping_address.state,
            zip_code=view.shipping_address.zip_code,
        ),
        payment=None
        if view.payment_status is None
        else PaymentInfo(
            status=PaymentStatus[view.payment_status.value],
            payment_id="" if view.payment_id is None else str(view.payment_id),
        ),
        shipping=None
        if view.shipping_status is None
        else ShippingInfo(
            status=ShippingStatus[view.shipping_status.value],
            tracking_code=view.tracking_code or "",
        ),
        cancel_reason=CancelReason.UNSPECIFIED
        if view.cancel_reason is None
        else CancelReason[view.cancel_reason.value],
        created_at=view.created_at,
        updated_at=view.updated_at,
    )


def to_summary(view: OrderView) -> OrderSummary:
    return OrderSummary(
        order_id=str(view.order_id),
        user_id=str(view.user_id),
        status=OrderStatus[view.status.value],
        total_amount=view.total.to_wire(),
        currency=view.total.currency,
        item_count=view.item_count,
        payment_status=PaymentStatus.UNSPECIFIED
        if view.payment_status is None
        else PaymentStatus[view.payment_status.value],
        shipping_status=ShippingStatus.UNSPECIFIED
        if view.shipping_status is None
        else ShippingStatus[view.shipping_status.value],
        tracking_code=view.tracking_code or "",
        cancel_reason=CancelReason.UNSPECIFIED
        if view.cancel_reason is None
        else CancelReason[view.cancel_reason.value],
        created_at=view.created_at,
        updated_at=view.updated_at,
    )


def _place_request(message: CreateOrderRequest) -> PlaceOrder:
    address = message.shipping_address
    if address is None:
        raise InvalidOrderError([FieldViolation("shipping_address", "is required")])
    return PlaceOrder(
        user_id=_uuid(message.user_id, "user_id"),
        lines=requested_lines(
            [(item.product_id, item.quantity) for item in message.items], field="items"
        ),
        shipping_address=shipping_address(
            address.street, address.city, address.state, address.zip_code, field="shipping_address"
        ),
        payment_method_token=payment_token(
            message.payment_method_token, field="payment_method_token"
        ),
    )


def _request_fingerprint(message: CreateOrderRequest) -> str:
    """The request without its idempotency key, canonically."""
    address = message.shipping_address
    body = {
        "items": [[item.product_id, item.quantity] for item in message.items],
        "shippingAddress": None
        if address is None
        else [address.street, address.city, address.state, address.zip_code],
        "paymentMethodToken": message.payment_method_token,
    }
    return fingerprint(
        "grpc", CREATE_ORDER_METHOD, json.dumps(body, sort_keys=True, separators=(",", ":"))
    )


class OrdersGrpcService(OrdersServiceBase):
    """Implements the generated service base on the orders use cases."""

    def __init__(self, service: OrdersService, idempotency: IdempotencyStore) -> None:
        self._service = service
        self._idempotency = idempotency

    async def create_order(self, message: CreateOrderRequest) -> CreateOrderResponse:
        try:
            place = _place_request(message)
        except OrderError as exc:
            raise to_grpc_error(exc) from exc
        key = message.idempotency_key
        if not key:
            return await self._place(place, None)
        if not _IDEMPOTENCY_KEY.fullmatch(key):
            raise GRPCError(
                Status.INVALID_ARGUMENT, "idempotency_key: 1 to 255 printable ASCII characters"
            )
        try:
            outcome = await self._idempotency.begin(
                str(place.user_id), key, _request_fingerprint(message)
            )
        except KeyReusedError as exc:
            raise GRPCError(Status.FAILED_PRECONDITION, str(exc)) from exc
        except KeyInFlightError as exc:
            raise GRPCError(Status.ABORTED, str(exc)) from exc
        if isinstance(outcome, StoredResponse):
            return CreateOrderResponse.parse(outcome.body)
        claim = outcome
        try:
            response = await self._place(place, claim)
            if not claim.completed:  # out of stock: no transaction to store it in
                await self._idempotency.complete(claim, StoredResponse(0, bytes(response)))
        except ClaimLostError as exc:
            raise GRPCError(Status.ABORTED, "the idempotency key was taken over") from exc
        except BaseException:
            await self._idempotency.release(claim)
            raise
        return response

    async def _place(self, place: PlaceOrder, claim: Claim | None) -> CreateOrderResponse:
        response: CreateOrderResponse | None = None

        async def within(connection: asyncpg.Connection, view: OrderView) -> None:
            # The response is stored in the order's own transaction: both or neither.
            nonlocal response
            response = CreateOrderResponse(order=to_grpc(view))
            if claim is not None:
                await self._idempotency.complete(
                    claim, StoredResponse(0, bytes(response)), connection=connection
                )

        try:
            outcome = await self._service.place_order(place, within=within)
        except InventoryUnavailableError as exc:
            raise GRPCError(Status.UNAVAILABLE, "inventory is unavailable; retry") from exc
        except OrderError as exc:
            raise to_grpc_error(exc) from exc
        if isinstance(outcome, OutOfStock):
            return CreateOrderResponse(
                unavailable_products=[
                    UnavailableProduct(
                        product_id=str(item.product_id),
                        requested_quantity=item.requested_quantity,
                        available_quantity=item.available_quantity,
                    )
                    for item in outcome.unavailable
                ]
            )
        assert response is not None
        return response

    async def get_order(self, message: GetOrderRequest) -> GetOrderResponse:
        order_id = _uuid(message.order_id, "order_id")
        try:
            view = await self._service.get_order(order_id, visible_to=_scope(message.user_id))
        except OrderError as exc:
            raise to_grpc_error(exc) from exc
        return GetOrderResponse(order=to_grpc(view))

    async def get_orders(self, message: GetOrdersRequest) -> GetOrdersResponse:
        if not 1 <= len(message.order_ids) <= MAX_BATCH:
            raise GRPCError(Status.INVALID_ARGUMENT, f"order_ids: between 1 and {MAX_BATCH} ids")
        ids = [_uuid(text, f"order_ids[{index}]") for index, text in enumerate(message.order_ids)]
        views = await self._service.get_orders(ids, visible_to=_scope(message.user_id))
        return GetOrdersResponse(orders=[to_grpc(view) for view in views])

    async def list_orders(self, message: ListOrdersRequest) -> ListOrdersResponse:
        size = message.page_size or DEFAULT_PAGE_SIZE
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise GRPCError(
                Status.INVALID_ARGUMENT, f"page_size: between 1 and {MAX_PAGE_SIZE} (0: default)"
            )
        scope = _scope(message.user_id)
        status = (
            None if message.status is OrderStatus.UNSPECIFIED else DomainStatus(message.status.name)
        )
        try:
            page = await self._service.list_orders(
                visible_to=scope, limit=size, cursor=message.page_token or None, status=status
            )
            total = await self._service.count_orders(visible_to=scope, status=status)
        except OrderError as exc:
            raise to_grpc_error(exc) from exc
        return ListOrdersResponse(
            orders=[to_grpc(view) for view in page.items],
            next_page_token=page.next_cursor or "",
            total_size=total,
        )

    async def cancel_order(self, message: CancelOrderRequest) -> CancelOrderResponse:
        order_id = _uuid(message.order_id, "order_id")
        try:
            view = await self._service.cancel_order(order_id, visible_to=_scope(message.user_id))
        except OrderError as exc:
            raise to_grpc_error(exc) from exc
        return CancelOrderResponse(order=to_grpc(view))

    async def get_order_summary(self, message: GetOrderSummaryRequest) -> GetOrderSummaryResponse:
        order_id = _uuid(message.order_id, "order_id")
        try:
            view = await self._service.get_order(order_id, visible_to=_scope(message.user_id))
        except OrderError as exc:
            raise to_grpc_error(exc) from exc
        return GetOrderSummaryResponse(summary=to_summary(view))
