"""The create-order saga wired for the orders service: bindings and the ``OrderSagas`` port.

The engine runs ``generated.sagas.create_order.CREATE_ORDER`` as it is (steps,
timeouts, retries, outcomes); this module only says what its names mean here:

- ``inventory.v1.InventoryService/*`` → calls on the inventory gRPC channel, with
  the step's deadline (ReserveProducts answering "not reserved" is a rejection);
- ``payments.requested`` / ``payments.refund_requested`` → the command payloads
  (``sagaId`` correlates the replies; the refund names the payment when the saga
  saw it, else the payment service resolves the order's payment and voids it);
- ``confirm_order`` → the aggregate's confirm, on the transition's transaction (a
  fault point, docs/fault-flags.md: ``fail`` raises, so the step is retried as after
  any error of its own);
- the outcome of a saga that turns back → the aggregate's cancel with its reason.

A step with no compensation whose action is ``CommitReservation`` (the pivot) is
undone by ``RestoreStock`` when a confirmed order is canceled before it ships.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
from grpclib.client import Channel

from generated.events.registry import PAYMENTS_REFUND_REQUESTED, PAYMENTS_REQUESTED
from generated.grpc.inventory.v1 import (
    CommitReservationRequest,
    InventoryServiceStub,
    ProductQuantity,
    ReleaseReservationRequest,
    ReserveProductsRequest,
    RestoreStockRequest,
)
from generated.models.events import PaymentRefundRequestedPayload, PaymentRequestedPayload
from generated.sagas.types import (
    Action,
    CommandAction,
    GrpcAction,
    Outcome,
    SagaDefinition,
)
from handwritten.orders.domain.order import CancelReason, Order, OrderStatus
from handwritten.orders.service_layer.orders import OrdersService
from handwritten.orders.service_layer.ports import OrderSagas, SagaStepView, SagaView
from handwritten.runtime.context import current_correlation_id
from handwritten.runtime.faults import FaultSwitchboard, InjectedFaultError, inject
from handwritten.runtime.grpc_server import CORRELATION_METADATA
from handwritten.runtime.saga import (
    CancelResult,
    Participants,
    SagaContext,
    SagaDefinitionError,
    SagaEngine,
    SagaState,
    StepContext,
    StepRejectedError,
    api_step_status,
)

INVENTORY = "inventory.v1.InventoryService"
RESERVE = f"{INVENTORY}/ReserveProducts"
COMMIT = f"{INVENTORY}/CommitReservation"
RELEASE = f"{INVENTORY}/ReleaseReservation"
RESTORE = f"{INVENTORY}/RestoreStock"
CONFIRM_ORDER = "confirm_order"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def start_data(order: Order) -> dict[str, Any]:
    """What the saga needs of a new order (kept in ``saga_instances.payload``)."""
    return {
        "orderId": str(order.order_id),
        "userId": str(order.user_id),
        "items": [
            {"productId": str(line.product_id), "quantity": line.quantity} for line in order.lines
        ],
        "totalAmount": order.total.to_wire(),
        "currency": order.total.currency,
        "paymentMethodToken": order.payment_method_token,
    }


class CreateOrderSaga(OrderSagas):
    """The ``OrderSagas`` port on a ``SagaEngine`` running ``definition``.

    ``bind(service)`` completes the wiring (the local action and the outcome act on
    the aggregate through the ``OrdersService``, which itself starts sagas here).
    """

    def __init__(
        self,
        definition: SagaDefinition,
        *,
        pool: asyncpg.Pool,
        inventory: Channel,
        compensation_alert_after: int = 5,
        faults: FaultSwitchboard | None = None,
    ) -> None:
        self.definition = definition
        self._pool = pool
        self._faults = faults or FaultSwitchboard.disabled("orders")
        self._inventory = InventoryServiceStub(inventory)
        self._service: OrdersService | None = None
        self._payment_steps = tuple(
            step.name
            for step in definition.steps
            if isinstance(step.action, CommandAction)
            and step.action.topic == PAYMENTS_REQUESTED.topic
        )
        self.engine = SagaEngine(
            definition,
            self._participants(),
            compensation_alert_after=compensation_alert_after,
        )

    def bind(self, service: OrdersService) -> None:
        self._service = service

    @property
    def service(self) -> OrdersService:
        if self._service is None:
            raise RuntimeError("CreateOrderSaga.bind(service) was not called")
        return self._service

    # ------------------------------------------------------------------ port

    async def start(self, connection: asyncpg.Connection, order: Order) -> None:
        await self.engine.start(connection, str(order.order_id), start_data(order))

    async def cancel(
        self, connection: asyncpg.Connection, order_id: UUID, reason: CancelReason
    ) -> None:
        result = await self.engine.cancel(
            connection, str(order_id), Outcome(status=OrderStatus.CANCELED.value, reason=reason)
        )
        if result is CancelResult.REFUSED:
            raise SagaDefinitionError(f"the saga of order {order_id} cannot be turned back")

    async def find(self, order_id: UUID) -> SagaView | None:
        async with self._pool.acquire() as connection:
            stored = await self.engine.get(connection, str(order_id))
        if stored is None:
            return None
        record = stored.record
        terminal = record.state in (SagaState.COMPLETED, SagaState.COMPENSATED)
        current = None if terminal or record.current is None else record.steps[record.current]
        return SagaView(
            saga_id=record.saga_id,
            order_id=order_id,
            state=record.state.value,
            current_step=None if current is None else current.name,
            steps=tuple(
                SagaStepView(
                    name=step.name,
                    status=(status := api_step_status(step)),
                    # The attempts of what the status describes: the compensation's
                    # once it is compensating or compensated, else the action's.
                    attempts=step.compensation_attempts
                    if status in ("COMPENSATING", "COMPENSATED")
                    else step.attempts,
                    started_at=step.started_at,
                    finished_at=step.finished_at,
                    compensated_at=step.compensated_at,
                    error=step.error,
                )
                for step in record.steps
            ),
        )

    # -------------------------------------------------------------- bindings

    def _participants(self) -> Participants:
        reversal: Action = GrpcAction(method=RESTORE, timeout_ms=self._commit_timeout_ms())
        return Participants(
            on_outcome=self._on_outcome,
            grpc={
                RESERVE: self._reserve,
                COMMIT: self._commit,
                RELEASE: self._release,
                RESTORE: self._restore,
            },
            commands={
                PAYMENTS_REQUESTED.topic: self._payment_requested,
                PAYMENTS_REFUND_REQUESTED.topic: self._refund_requested,
            },
            local={CONFIRM_ORDER: self._confirm_order},
            reversals={
                step.name: reversal
                for step in self.definition.steps
                if step.compensation is None
                and isinstance(step.action, GrpcAction)
                and step.action.method == COMMIT
            },
        )

    def _commit_timeout_ms(self) -> int:
        for step in self.definition.steps:
            if isinstance(step.action, GrpcAction) and step.action.method == COMMIT:
                return step.action.timeout_ms
        return 5000

    @staticmethod
    def _metadata() -> dict[str, str]:
        return {CORRELATION_METADATA: current_correlation_id()}

    async def _reserve(self, context: StepContext, deadline: float) -> Mapping[str, Any]:
        reply = await self._inventory.reserve_products(
            ReserveProductsRequest(
                order_id=context.correlation_key,
                items=[
                    ProductQuantity(product_id=item["productId"], quantity=item["quantity"])
                    for item in context.data["items"]
                ],
            ),
            timeout=deadline,
            metadata=self._metadata(),
        )
        if not reply.reserved:
            short = ", ".join(
                f"{item.product_id} (requested {item.requested_quantity},"
                f" available {item.available_quantity})"
                for item in reply.unavailable_products
            )
            raise StepRejectedError(f"not enough stock: {short}")
        return {"reserved": True, "items": len(reply.items)}

    async def _commit(self, context: StepContext, deadline: float) -> Mapping[str, Any]:
        reply = await self._inventory.commit_reservation(
            CommitReservationRequest(order_id=context.correlation_key),
            timeout=deadline,
            metadata=self._metadata(),
        )
        return {"committed": reply.committed}

    async def _release(self, context: StepContext, deadline: float) -> Mapping[str, Any]:
        reply = await self._inventory.release_reservation(
            ReleaseReservationRequest(order_id=context.correlation_key),
            timeout=deadline,
            metadata=self._metadata(),
        )
        return {"released": reply.released}

    async def _restore(self, context: StepContext, deadline: float) -> Mapping[str, Any]:
        reply = await self._inventory.restore_stock(
            RestoreStockRequest(order_id=context.correlation_key),
            timeout=deadline,
            metadata=self._metadata(),
        )
        return {"restored": reply.restored}

    def _payment(self, context: SagaContext) -> Mapping[str, Any] | None:
        """The payments.processed payload the saga recorded, if any."""
        for name in self._payment_steps:
            result = context.results.get(name)
            if result is not None and "paymentId" in result:
                return result
        return None

    def _payment_requested(self, context: StepContext) -> PaymentRequestedPayload:
        data = context.data
        return PaymentRequestedPayload.model_validate(
            {
                "sagaId": str(context.saga_id),
                "orderId": data["orderId"],
                "userId": data["userId"],
                "amount": data["totalAmount"],
                "currency": data["currency"],
                "paymentMethodToken": data["paymentMethodToken"],
                "requestedAt": _now(),
            }
        )

    def _refund_requested(self, context: StepContext) -> PaymentRefundRequestedPayload:
        data = context.data
        paid = self._payment(context)
        reason = CancelReason.CUSTOMER_REQUEST.value
        if context.outcome is not None:
            reason = context.outcome.reason
        payload: dict[str, Any] = {
            "sagaId": str(context.saga_id),
            "orderId": data["orderId"],
            "amount": data["totalAmount"] if paid is None else paid["amount"],
            "currency": data["currency"],
            "reason": reason,
            "requestedAt": _now(),
        }
        if paid is not None:
            payload["paymentId"] = paid["paymentId"]
        return PaymentRefundRequestedPayload.model_validate(payload)

    async def _confirm_order(
        self, connection: asyncpg.Connection, context: StepContext
    ) -> Mapping[str, Any]:
        paid = self._payment(context)
        if paid is None:
            raise SagaDefinitionError("confirm_order runs after a payment step succeeded")
        order_id = UUID(context.correlation_key)

        async def confirm() -> Mapping[str, Any]:
            changed = await self.service.confirm_on(
                connection, order_id, payment_id=UUID(paid["paymentId"])
            )
            if changed:
                context.after_commit(lambda: self.service.invalidate(order_id))
            return {"paymentId": paid["paymentId"]}

        async def fail() -> Mapping[str, Any]:
            raise InjectedFaultError("injected fault: the order cannot be confirmed now")

        fault = await self._faults.check(
            CONFIRM_ORDER, orderId=order_id, userId=context.data.get("userId")
        )
        return await inject(fault, confirm, fail=fail)

    async def _on_outcome(
        self,
        connection: asyncpg.Connection,
        context: SagaContext,
        outcome: Outcome,
        detail: str | None,
    ) -> None:
        if outcome.status != OrderStatus.CANCELED.value:
            raise SagaDefinitionError(f"unsupported saga outcome status {outcome.status!r}")
        order_id = UUID(context.correlation_key)
        changed = await self.service.cancel_on(
            connection, order_id, reason=CancelReason(outcome.reason), detail=detail
        )
        if changed:
            context.after_commit(lambda: self.service.invalidate(order_id))
