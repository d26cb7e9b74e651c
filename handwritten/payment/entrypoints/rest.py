"""The payment REST API: implements the generated ``PaymentHandlers``.

Read-only and for admins: every route needs a verified bearer token with the
``admin`` role (401 problem+json without a valid token, 403 without the role).
That check is a router dependency (``authorize``), so it runs before the path is
validated and any route added later is protected by default. An order without a
payment answers 404.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

from fastapi import Request, Response

from generated.models.payment import Payment as ApiPayment
from generated.models.payment import PaymentFailureReason, PaymentStatus, SetFaultFlagRequest
from handwritten.payment.adapters.postgres import StoredPayment
from handwritten.payment.domain.money import format_amount
from handwritten.runtime.auth import RequestAuthenticator
from handwritten.runtime.faults_api import FaultFlagsApi
from handwritten.runtime.problems import ProblemError

#: The payment of an order (``None`` if it has none), read outside any transaction.
PaymentOfOrder = Callable[[UUID], Awaitable[StoredPayment | None]]


@dataclass(frozen=True)
class RestComponents:
    """What the handlers use, opened by the app's lifespan."""

    payment_of_order: PaymentOfOrder
    authenticator: RequestAuthenticator
    faults: FaultFlagsApi


def to_api(stored: StoredPayment) -> ApiPayment:
    payment = stored.payment
    reason = payment.failure_reason
    return ApiPayment(
        payment_id=payment.payment_id,
        order_id=payment.order_id,
        user_id=payment.user_id,
        amount=format_amount(payment.amount),
        currency="BRL",
        status=PaymentStatus(payment.status.value),
        payment_method=payment.payment_method,
        gateway_transaction_id=payment.gateway_transaction_id,
        failure_reason=None if reason is None else PaymentFailureReason(reason.value),
        processed_at=payment.processed_at,
        closed_at=payment.closed_at,
        created_at=stored.created_at,
        updated_at=stored.updated_at,
    )


class PaymentApi:
    """The handlers; ``attach`` hands them the components once the app has started."""

    def __init__(self) -> None:
        self._components: RestComponents | None = None

    def attach(self, components: RestComponents | None) -> None:
        self._components = components

    @property
    def components(self) -> RestComponents:
        if self._components is None:
            raise RuntimeError("the payment app has not started (lifespan not run)")
        return self._components

    async def authorize(self, request: Request) -> None:
        """Router dependency: a verified caller with the admin role (401 / 403 otherwise)."""
        await self.components.authenticator.admin(request)

    async def get_payment_by_order(
        self, request: Request, *, order_id: UUID
    ) -> ApiPayment | Response:
        stored = await self.components.payment_of_order(order_id)
        if stored is None:
            raise ProblemError(404, f"Order {order_id} has no payment.")
        return to_api(stored)

    # Saga fault flags (docs/fault-flags.md): admin only (``authorize`` and ``FaultFlagsApi``).

    async def list_payment_fault_flags(self, request: Request) -> Response:
        return await self.components.faults.list(request)

    async def set_payment_fault_flag(
        self, request: Request, *, body: SetFaultFlagRequest, point: str
    ) -> Response:
        return await self.components.faults.set(request, point=point, body=body)

    async def clear_payment_fault_flag(
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
