"""What the use cases need from the outside world (implemented in ``adapters``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

import asyncpg

from handwritten.orders.domain.order import CancelReason, Order, OrderStatus
from handwritten.orders.domain.pricing import Availability
from handwritten.orders.domain.requests import RequestedLine
from handwritten.orders.service_layer.paging import PageKey
from handwritten.orders.service_layer.read_model import OrderView


class InventoryUnavailableError(Exception):
    """Inventory could not answer in time (down, overloaded, timed out): 503."""


class Inventory(Protocol):
    async def check_availability(self, lines: Sequence[RequestedLine]) -> Availability:
        """Names, prices and stock of the requested products (no stock is held).

        ``InventoryUnavailableError`` when inventory cannot be reached in time.
        """
        ...


@dataclass(frozen=True)
class ViewPage:
    """One page of the read model, newest first."""

    items: list[OrderView]
    next_key: PageKey | None


class OrderViews(Protocol):
    """Queries on the ``orders_view`` read model."""

    async def get(self, order_id: UUID) -> OrderView | None: ...

    async def get_many(self, order_ids: Sequence[UUID]) -> dict[UUID, OrderView]: ...

    async def page(
        self,
        *,
        user_id: UUID | None,
        status: OrderStatus | None,
        after: PageKey | None,
        limit: int,
    ) -> ViewPage:
        """Orders of ``user_id`` (all users when ``None``), newest first."""
        ...

    async def count(self, *, user_id: UUID | None, status: OrderStatus | None) -> int: ...


class OrderCache(Protocol):
    """A best-effort cache of single orders: misses and failures are the same."""

    async def get(self, order_id: UUID) -> OrderView | None: ...

    async def put(self, view: OrderView) -> None: ...

    async def invalidate(self, order_ids: Sequence[UUID]) -> None: ...

    async def clear(self) -> None:
        """Forget every cached order (after a projection rebuild)."""
        ...


@dataclass(frozen=True)
class SagaStepView:
    """One step of an order's saga as the API shows it."""

    name: str
    status: str
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    compensated_at: datetime | None
    error: str | None


@dataclass(frozen=True)
class SagaView:
    """The create-order saga of one order."""

    saga_id: UUID
    order_id: UUID
    state: str
    current_step: str | None
    steps: tuple[SagaStepView, ...]


class OrderSagas(Protocol):
    """The create-order saga, as the use cases drive it."""

    async def start(self, connection: asyncpg.Connection, order: Order) -> None:
        """Record the saga of a new order in the transaction that creates it."""
        ...

    async def cancel(
        self, connection: asyncpg.Connection, order_id: UUID, reason: CancelReason
    ) -> None:
        """Ask the order's saga to turn back (locks it: call before the aggregate)."""
        ...

    async def find(self, order_id: UUID) -> SagaView | None: ...


class NoSagas(OrderSagas):
    """No orchestration (tools and tests that drive orders by hand)."""

    async def start(self, connection: asyncpg.Connection, order: Order) -> None:
        return None

    async def cancel(
        self, connection: asyncpg.Connection, order_id: UUID, reason: CancelReason
    ) -> None:
        return None

    async def find(self, order_id: UUID) -> SagaView | None:
        return None
