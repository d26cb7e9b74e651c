"""The orders REST API: implements the generated ``OrdersHandlers`` on ``OrdersService``.

Every route needs a verified bearer token; the check is a router dependency
(``authenticate``), so it runs before the body is validated. The user id and roles
come from the token only. A customer sees their own orders; another user's order
answers 404 exactly like a missing one; an ``admin`` may read and cancel any order
(listing stays "the caller's orders", as the contract says).

Domain errors become problem+json: 422 with ``errors: [{field, message}]``, 404,
409 for a forbidden transition or missing stock (with ``unavailableProducts``),
503 when inventory cannot be reached (nothing was created).
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg
from fastapi import Request, Response
from starlette.responses import JSONResponse

from generated.models.orders import (
    CreateOrderRequest,
    OrderEvent,
    OrderEvents,
    OrderPage,
    Saga,
    SetFaultFlagRequest,
)
from generated.models.orders import Order as ApiOrder
from handwritten.orders.domain.errors import (
    InvalidOrderError,
    InvalidTransitionError,
    OrderError,
    OrderNotFoundError,
    SagaNotFoundError,
)
from handwritten.orders.domain.requests import payment_token, requested_lines, shipping_address
from handwritten.orders.service_layer.orders import OrdersService, OutOfStock, PlaceOrder
from handwritten.orders.service_layer.ports import InventoryUnavailableError
from handwritten.orders.service_layer.read_model import OrderView
from handwritten.runtime.auth import RequestAuthenticator
from handwritten.runtime.faults_api import FaultFlagsApi
from handwritten.runtime.idempotency import Claim, IdempotencyStore, run_idempotent, stored
from handwritten.runtime.jwt import AccessClaims
from handwritten.runtime.problems import ProblemError

ORDERS_PATH = "/api/orders"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="microcommerce"'}
#: Seconds a client is told to wait before retrying after inventory was unavailable.
INVENTORY_RETRY_AFTER = "2"


@dataclass(frozen=True)
class RestComponents:
    """What the handlers use, opened by the app's lifespan."""

    service: OrdersService
    authenticator: RequestAuthenticator
    idempotency: IdempotencyStore
    faults: FaultFlagsApi


@dataclass(frozen=True)
class Caller:
    """The verified caller of a request."""

    user_id: UUID
    is_admin: bool

    @property
    def visible_to(self) -> UUID | None:
        """Whose orders this caller may see and change (``None``: everyone's)."""
        return None if self.is_admin else self.user_id


def to_api(view: OrderView) -> ApiOrder:
    return ApiOrder.model_validate(
        {
            "orderId": view.order_id,
            "userId": view.user_id,
            "status": view.status.value,
            "totalAmount": view.total.to_wire(),
            "currency": view.total.currency,
            "items": [
                {
                    "productId": line.product_id,
                    "quantity": line.quantity,
                    "unitPrice": line.unit_price.to_wire(),
                }
                for line in view.lines
            ],
            "shippingAddress": view.shipping_address.to_json(),
            "payment": None
            if view.payment_status is None
            else {"status": view.payment_status.value},
            "shipping": None
            if view.shipping_status is None or view.tracking_code is None
            else {"trackingCode": view.tracking_code, "status": view.shipping_status.value},
            "cancelReason": None if view.cancel_reason is None else view.cancel_reason.value,
            "createdAt": view.created_at,
            "updatedAt": view.updated_at,
        }
    )


def to_problem(error: OrderError) -> ProblemError:
    """The problem+json answer of a domain error."""
    if isinstance(error, InvalidOrderError):
        return ProblemError(
            422,
            "The request is not valid.",
            errors=[{"field": v.field, "message": v.message} for v in error.violations],
        )
    if isinstance(error, OrderNotFoundError):
        return ProblemError(404, f"Order {error.order_id} does not exist.")
    if isinstance(error, SagaNotFoundError):
        return ProblemError(404, f"Order {error.order_id} has no saga.")
    if isinstance(error, InvalidTransitionError):
        return ProblemError(
            409, f"Order {error.order_id} is {error.status} and cannot be {error.action}."
        )
    raise error


def out_of_stock(outcome: OutOfStock) -> ProblemError:
    return ProblemError(
        409,
        "Not enough stock for some items; no order was created.",
        unavailableProducts=[
            {
                "productId": str(item.product_id),
                "requestedQuantity": item.requested_quantity,
                "availableQuantity": item.available_quantity,
            }
            for item in outcome.unavailable
        ],
    )


def created(view: OrderView) -> JSONResponse:
    return JSONResponse(
        to_api(view).model_dump(mode="json", by_alias=True),
        status_code=201,
        headers={"Location": f"{ORDERS_PATH}/{view.order_id}"},
    )


def place_order_request(user_id: UUID, body: CreateOrderRequest) -> PlaceOrder:
    """The use case's input from the validated body (``InvalidOrderError`` on rule breaks)."""
    address = body.shipping_address
    return PlaceOrder(
        user_id=user_id,
        lines=requested_lines([(item.product_id, item.quantity) for item in body.items]),
        shipping_address=shipping_address(
            address.street, address.city, address.state, address.zip_code
        ),
        payment_method_token=payment_token(
            None if body.payment_method is None else body.payment_method.token
        ),
    )


class OrdersApi:
    """The handlers; ``attach`` hands them the components once the app has started."""

    def __init__(self) -> None:
        self._components: RestComponents | None = None

    def attach(self, components: RestComponents | None) -> None:
        self._components = components

    @property
    def components(self) -> RestComponents:
        if self._components is None:
            raise RuntimeError("the orders app has not started (lifespan not run)")
        return self._components

    async def authenticate(self, request: Request) -> None:
        """Router dependency: a verified bearer token on every route (401 otherwise)."""
        claims = await self.components.authenticator.user(request)
        request.state.caller = _caller(claims)

    async def create_order(
        self, request: Request, *, body: CreateOrderRequest, idempotency_key: str | None
    ) -> ApiOrder | Response:
        caller: Caller = request.state.caller
        try:
            place = place_order_request(caller.user_id, body)
        except OrderError as exc:
            raise to_problem(exc) from exc
        service = self.components.service
        store = self.components.idempotency

        async def work(claim: Claim | None) -> Response:
            response: JSONResponse | None = None

            async def within(connection: asyncpg.Connection, view: OrderView) -> None:
                # The response is stored in the order's own transaction: both or neither.
                nonlocal response
                response = created(view)
                if claim is not None:
                    await store.complete(claim, stored(response), connection=connection)

            try:
                outcome = await service.place_order(place, within=within)
            except InventoryUnavailableError as exc:
                raise ProblemError(
                    503,
                    "Inventory is unavailable right now; no order was created. Retry shortly.",
                    headers={"Retry-After": INVENTORY_RETRY_AFTER},
                ) from exc
            except OrderError as exc:
                raise to_problem(exc) from exc
            if isinstance(outcome, OutOfStock):
                raise out_of_stock(outcome)
            assert response is not None
            return response

        if idempotency_key is None:
            return await work(None)
        return await run_idempotent(
            store, request, scope=str(caller.user_id), key=idempotency_key, work=work
        )

    async def list_orders(
        self, request: Request, *, limit: int, cursor: str | None
    ) -> OrderPage | Response:
        caller: Caller = request.state.caller
        try:
            page = await self.components.service.list_orders(
                visible_to=caller.user_id, limit=limit, cursor=cursor
            )
        except OrderError as exc:
            raise to_problem(exc) from exc
        return OrderPage(items=[to_api(view) for view in page.items], next_cursor=page.next_cursor)

    async def get_order(self, request: Request, *, order_id: UUID) -> ApiOrder | Response:
        caller: Caller = request.state.caller
        try:
            view = await self.components.service.get_order(order_id, visible_to=caller.visible_to)
        except OrderError as exc:
            raise to_problem(exc) from exc
        return to_api(view)

    async def cancel_order(self, request: Request, *, order_id: UUID) -> ApiOrder | Response:
        caller: Caller = request.state.caller
        try:
            view = await self.components.service.cancel_order(
                order_id, visible_to=caller.visible_to
            )
        except OrderError as exc:
            raise to_problem(exc) from exc
        return to_api(view)

    async def get_order_events(self, request: Request, *, order_id: UUID) -> OrderEvents | Response:
        caller: Caller = request.state.caller
        try:
            events = await self.components.service.history(order_id, visible_to=caller.visible_to)
        except OrderError as exc:
            raise to_problem(exc) from exc
        return OrderEvents(
            order_id=order_id,
            events=[
                OrderEvent(
                    sequence=event.sequence_number,
                    type=event.event_type,
                    occurred_at=event.occurred_at,
                    data=event.data,
                )
                for event in events
            ],
        )

    async def get_order_saga(self, request: Request, *, order_id: UUID) -> Saga | Response:
        caller: Caller = request.state.caller
        try:
            saga = await self.components.service.saga(order_id, visible_to=caller.visible_to)
        except OrderError as exc:
            raise to_problem(exc) from exc
        return Saga.model_validate(
            {
                "sagaId": saga.saga_id,
                "orderId": saga.order_id,
                "state": saga.state,
                "currentStep": saga.current_step,
                "steps": [
                    {
                        "name": step.name,
                        "status": step.status,
                        "attempts": step.attempts,
                        "startedAt": step.started_at,
                        "finishedAt": step.finished_at,
                        "compensatedAt": step.compensated_at,
                        "error": None if step.error is None else step.error[:2000],
                    }
                    for step in saga.steps
                ],
            }
        )

    # Saga fault flags (docs/fault-flags.md): admin only, checked by ``FaultFlagsApi``.

    async def list_orders_fault_flags(self, request: Request) -> Response:
        return await self.components.faults.list(request)

    async def set_orders_fault_flag(
        self, request: Request, *, body: SetFaultFlagRequest, point: str
    ) -> Response:
        return await self.components.faults.set(request, point=point, body=body)

    async def clear_orders_fault_flag(
        self,
        request: Request,
        *,
        point: str,
        correlation_id: str | None,
        order_id: UUID | None,
        user_id: UUID | None,
    ) -> Response:
        return await self.components.faults.clear(
            request,
            point=point,
            correlation_id=correlation_id,
            order_id=order_id,
            user_id=user_id,
        )


def _caller(claims: AccessClaims) -> Caller:
    try:
        user_id = UUID(claims.user_id)
    except ValueError as exc:
        # Orders belong to user ids; a token for anything else is not for this API.
        raise ProblemError(401, "A valid bearer token is required.", headers=_CHALLENGE) from exc
    return Caller(user_id=user_id, is_admin=claims.is_admin)
