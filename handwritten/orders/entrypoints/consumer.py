"""Kafka in: saga replies (payments.*) and shipment progress (shipping.*).

The runtime's ``ConsumerRunner`` calls ``event_handler`` inside the transaction that
records the event id in the inbox, so a redelivered event changes nothing:

- payments.processed / payments.failed / payments.refunded are recorded for the
  saga step awaiting them (correlated by ``sagaId``); a saga worker acts on them. A
  refund that returned money is also recorded on the order (payment REFUNDED).
- shipping.scheduled records the tracking code; shipping.updated moves the order:
  IN_TRANSIT → SHIPPED (orders.shipped), DELIVERED → DELIVERED (orders.delivered);
  SCHEDULED and CANCELED updates change nothing here.

An event the order's state refuses (e.g. a shipment update for a canceled order) or
about an order this deployment does not have is logged and consumed: retrying it
could never succeed, and it must not stop the partition.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import asyncpg

from generated.events.registry import Event
from generated.models.events import (
    PaymentFailedPayload,
    PaymentProcessedPayload,
    PaymentRefundedPayload,
    RefundOutcome,
    ShipmentScheduledPayload,
    ShipmentStatus,
    ShipmentUpdatedPayload,
)
from generated.services.orders.events import OrdersEventHandlers, dispatch
from handwritten.orders.domain.errors import InvalidTransitionError, OrderNotFoundError
from handwritten.orders.service_layer.orders import OrdersService
from handwritten.runtime.backoff import Backoff
from handwritten.runtime.consumer import Handler, after_commit
from handwritten.runtime.logging import get_logger
from handwritten.runtime.saga import SagaEngine

log = get_logger(__name__)


class OrderEventHandlers(OrdersEventHandlers):
    """The generated handler protocol on one consumed event's transaction."""

    def __init__(
        self, connection: asyncpg.Connection, service: OrdersService, saga: SagaEngine
    ) -> None:
        self._connection = connection
        self._service = service
        self._saga = saga

    async def on_payments_processed(self, event: Event[PaymentProcessedPayload]) -> None:
        await self._saga.record_reply(self._connection, event)

    async def on_payments_failed(self, event: Event[PaymentFailedPayload]) -> None:
        await self._saga.record_reply(self._connection, event)

    async def on_payments_refunded(self, event: Event[PaymentRefundedPayload]) -> None:
        await self._saga.record_reply(self._connection, event)
        refund = event.payload
        if refund.outcome is RefundOutcome.refunded:
            await self._change(
                event,
                lambda: self._service.refunded_on(
                    self._connection, refund.order_id, payment_id=refund.payment_id
                ),
            )

    async def on_shipping_scheduled(self, event: Event[ShipmentScheduledPayload]) -> None:
        shipment = event.payload
        await self._change(
            event,
            lambda: self._service.shipment_scheduled_on(
                self._connection, shipment.order_id, tracking_code=shipment.tracking_code
            ),
        )

    async def on_shipping_updated(self, event: Event[ShipmentUpdatedPayload]) -> None:
        update = event.payload
        if update.status is ShipmentStatus.in_transit:
            await self._change(
                event,
                lambda: self._service.shipped_on(
                    self._connection, update.order_id, tracking_code=update.tracking_code
                ),
            )
        elif update.status is ShipmentStatus.delivered:
            await self._change(
                event,
                lambda: self._service.delivered_on(
                    self._connection, update.order_id, tracking_code=update.tracking_code
                ),
            )

    async def _change(self, event: Event[Any], change: Callable[[], Awaitable[bool]]) -> None:
        order_id = event.payload.order_id
        context = {"topic": event.spec.topic, "order_id": str(order_id)}
        try:
            changed = await change()
        except OrderNotFoundError:
            log.debug("event for an order of another deployment ignored", **context)
            return
        except InvalidTransitionError as exc:
            log.warning("event refused by the order's state; consumed", reason=str(exc), **context)
            return
        if changed:
            after_commit(lambda: self._service.invalidate(order_id))


def event_handler(service: OrdersService, saga: SagaEngine) -> Handler:
    """The ``ConsumerRunner`` handler: dispatch ``event`` on the runner's transaction."""

    async def handle(connection: asyncpg.Connection, event: Event[Any]) -> None:
        await dispatch(OrderEventHandlers(connection, service, saga), event)

    return handle


class Runner(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> None: ...


class ConsumerSupervisor:
    """Keeps a ``ConsumerRunner`` going: restarts it (with backoff) when Kafka is
    unreachable or a handler kept failing; the failing record was not committed, so
    nothing is skipped."""

    def __init__(self, new_runner: Callable[[], Runner], *, backoff: Backoff) -> None:
        self._new_runner = new_runner
        self._backoff = backoff
        self._stopping = asyncio.Event()
        self._runner: Runner | None = None
        #: Times the runner stopped on an error.
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
