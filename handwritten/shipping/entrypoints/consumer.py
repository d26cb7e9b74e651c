"""Kafka in: orders.confirmed schedules a shipment, orders.canceled cancels it.

The runtime's ``ConsumerRunner`` calls ``event_handler`` inside the transaction that
also records the event id in the inbox, so a redelivered event changes nothing;
the events this causes go to the outbox in that same transaction. Once-per-order
(whatever the event ids) is the use cases' business: see ``service_layer``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Protocol

import asyncpg

from generated.events.registry import Event
from generated.models.events import OrderCanceledPayload, OrderConfirmedPayload
from generated.services.shipping.events import ShippingEventHandlers, dispatch
from handwritten.runtime.backoff import Backoff
from handwritten.runtime.consumer import Handler
from handwritten.runtime.logging import get_logger
from handwritten.runtime.tracing import current_traceparent
from handwritten.shipping.domain.route import Destination
from handwritten.shipping.domain.shipments import CancelDecision, ScheduleDecision
from handwritten.shipping.service_layer.ports import UnitOfWork
from handwritten.shipping.service_layer.shipping import (
    ConfirmedOrder,
    cancel_shipment,
    schedule_shipment,
)

log = get_logger(__name__)

#: A unit of work on the runner's open transaction whose events are caused by ``event``.
UnitOfWorkOn = Callable[[asyncpg.Connection, Event[Any]], UnitOfWork]


class OrderEventHandlers(ShippingEventHandlers):
    """The generated handler protocol over one unit of work (one consumed event)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def on_orders_confirmed(self, event: Event[OrderConfirmedPayload]) -> None:
        order = event.payload
        result = await schedule_shipment(
            self._uow,
            ConfirmedOrder(
                order_id=order.order_id,
                user_id=order.user_id,
                destination=Destination(order.shipping_address.city, order.shipping_address.state),
                correlation_id=event.headers.correlation_id,
                # This event's processing span: where the delivery spans hang.
                traceparent=current_traceparent(),
            ),
        )
        if result.decision is ScheduleDecision.SCHEDULE:
            assert result.shipment is not None
            log.info(
                "shipment scheduled",
                order_id=str(order.order_id),
                shipment_id=str(result.shipment.shipment_id),
                tracking_code=result.shipment.tracking_code,
            )
        elif result.decision is ScheduleDecision.ORDER_CANCELED:
            log.warning(
                "confirmed order was already canceled; nothing shipped",
                order_id=str(order.order_id),
            )
        else:
            log.info("order already has its shipment", order_id=str(order.order_id))

    async def on_orders_canceled(self, event: Event[OrderCanceledPayload]) -> None:
        order = event.payload
        result = await cancel_shipment(self._uow, order.order_id, reason=order.reason.value)
        context = {"order_id": str(order.order_id), "reason": order.reason.value}
        if result.decision is CancelDecision.CANCEL:
            log.info("shipment canceled", **context)
        elif result.decision is CancelDecision.REMEMBER:
            log.info("order canceled before its shipment was scheduled; remembered", **context)
        elif result.decision is CancelDecision.TOO_LATE:
            assert result.shipment is not None
            # The orders service refuses cancels once shipped: this is an anomaly to
            # look into, but retrying cannot help, so the event is consumed.
            log.warning(
                "cancel ignored: the shipment has already left",
                status=result.shipment.status.value,
                **context,
            )
        else:
            log.info("shipment already canceled", **context)


def event_handler(unit_of_work_on: UnitOfWorkOn) -> Handler:
    """The ``ConsumerRunner`` handler: dispatch ``event`` inside the runner's transaction."""

    async def handle(connection: asyncpg.Connection, event: Event[Any]) -> None:
        await dispatch(OrderEventHandlers(unit_of_work_on(connection, event)), event)

    return handle


class Runner(Protocol):
    """What the supervisor needs of a ``ConsumerRunner``."""

    async def run(self) -> None: ...

    def stop(self) -> None: ...


class ConsumerSupervisor:
    """Keeps a ``ConsumerRunner`` going: restarts it (with backoff) when Kafka is
    unreachable or a handler kept failing, so the service heals once the cause is
    gone; the failing record was not committed, so nothing is skipped."""

    def __init__(self, new_runner: Callable[[], Runner], *, backoff: Backoff) -> None:
        self._new_runner = new_runner
        self._backoff = backoff
        self._stopping = asyncio.Event()
        self._runner: Runner | None = None
        #: Times the runner stopped on an error (observability and tests).
        self.failures = 0

    def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            self._runner.stop()

    async def run(self) -> None:
        while not self._stopping.is_set():
            self._runner = runner = self._new_runner()
            try:
                await runner.run()
            except Exception as exc:
                self.failures += 1
                delay = self._backoff.delay(self.failures - 1)
                log.error("consumer stopped; restarting", delay=round(delay, 2), exc_info=exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
            else:
                self.failures = 0
