"""The orders use cases, shared by the REST and gRPC entrypoints.

Writes go through the event-sourced aggregate (``AggregateRepository``): one
transaction appends the events, writes their outbox rows and updates the
``orders_view`` row. Reads come from ``orders_view`` (through the cache).

The create-order saga (``OrderSagas``) is started in the transaction that creates
the order, so no order is ever left without its saga; a cancel asks the saga to
turn back (refund, stock back) in the transaction that cancels the order. The
``*_on`` commands run on a caller's open transaction (the saga's, a consumer's)
and leave cache invalidation to the caller, after its commit.

Visibility: every read or change takes ``visible_to``, the user whose orders the
caller may see, or ``None`` for an unscoped (admin) caller. An order of someone
else behaves exactly like one that does not exist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID, uuid4

import asyncpg

from handwritten.orders.domain import order as orders
from handwritten.orders.domain.errors import (
    InvalidOrderError,
    OrderNotFoundError,
    SagaNotFoundError,
)
from handwritten.orders.domain.order import CancelReason, Order, OrderState, OrderStatus
from handwritten.orders.domain.pricing import Shortage, price
from handwritten.orders.domain.requests import RequestedLine, ShippingAddress
from handwritten.orders.service_layer.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    decode_cursor,
    encode_cursor,
)
from handwritten.orders.service_layer.ports import (
    Inventory,
    NoSagas,
    OrderCache,
    OrderSagas,
    OrderViews,
    SagaView,
)
from handwritten.orders.service_layer.read_model import OrderView, view_of
from handwritten.runtime.eventstore import (
    AggregateRepository,
    CommandResult,
    DomainEvent,
    StoredEvent,
)

#: Extra work inside the transaction that creates an order (e.g. storing the
#: idempotent response), given the new order's view; raising rolls the order back.
WithinCreate = Callable[[asyncpg.Connection, OrderView], Awaitable[None]]
#: A command on an existing order: its events, or a domain error.
Decide = Callable[[Order], Sequence[DomainEvent]]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class PlaceOrder:
    """A validated request to place an order (prices are not part of it)."""

    user_id: UUID
    lines: tuple[RequestedLine, ...]
    shipping_address: ShippingAddress
    payment_method_token: str


@dataclass(frozen=True)
class Placed:
    order: OrderView


@dataclass(frozen=True)
class OutOfStock:
    """Not enough stock: no order was created."""

    unavailable: tuple[Shortage, ...]


@dataclass(frozen=True)
class OrdersPage:
    items: list[OrderView]
    next_cursor: str | None


def _visible(view: OrderView, visible_to: UUID | None) -> bool:
    return visible_to is None or view.user_id == visible_to


class OrdersService:
    """Application service of the orders bounded context."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        repository: AggregateRepository[OrderState],
        views: OrderViews,
        inventory: Inventory,
        cache: OrderCache,
        sagas: OrderSagas | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._pool = pool
        self._repository = repository
        self._views = views
        self._inventory = inventory
        self._cache = cache
        self._sagas = sagas or NoSagas()
        self._clock = clock

    # ---------------------------------------------------------------- writes

    async def place_order(
        self, request: PlaceOrder, *, within: WithinCreate | None = None
    ) -> Placed | OutOfStock:
        """Price the lines from inventory and create the order, or report the shortage.

        ``InventoryUnavailableError`` when inventory cannot answer: nothing is created.
        """
        availability = await self._inventory.check_availability(request.lines)
        pricing = price(request.lines, availability)
        if pricing.shortages:
            return OutOfStock(pricing.shortages)
        lines = pricing.lines
        order_id = uuid4()
        now = self._clock()

        def decide(state: OrderState) -> list[DomainEvent]:
            return orders.place(
                state,
                order_id=order_id,
                user_id=request.user_id,
                lines=lines,
                shipping_address=request.shipping_address,
                payment_method_token=request.payment_method_token,
                now=now,
            )

        async with self._pool.acquire() as connection, connection.transaction():
            result = await self._repository.execute(connection, order_id, decide)
            assert result.state is not None
            # Same transaction: the order exists if and only if its saga does.
            await self._sagas.start(connection, result.state)
            view = view_of(result.state, result.version)
            if within is not None:
                await within(connection, view)
        return Placed(view)

    async def cancel_order(
        self,
        order_id: UUID,
        *,
        visible_to: UUID | None,
        reason: CancelReason = CancelReason.CUSTOMER_REQUEST,
        detail: str | None = None,
    ) -> OrderView:
        """Cancel (409 once shipped); canceling a canceled order changes nothing.

        The saga turns back in the same transaction: refund if paid, stock released
        or restored, and the shipment canceled (shipping consumes orders.canceled).
        """
        now = self._clock()

        async def turn_back(connection: asyncpg.Connection) -> None:
            await self._sagas.cancel(connection, order_id, reason)

        return await self._change(
            order_id,
            visible_to,
            lambda order: orders.cancel(order, reason=reason, now=now, detail=detail),
            before=turn_back,
        )

    async def confirm_order(self, order_id: UUID, *, payment_id: UUID) -> OrderView:
        """PENDING → CONFIRMED (the saga's last step)."""
        now = self._clock()
        return await self._change(
            order_id, None, lambda order: orders.confirm(order, payment_id=payment_id, now=now)
        )

    async def mark_shipped(self, order_id: UUID, *, tracking_code: str) -> OrderView:
        now = self._clock()
        return await self._change(
            order_id,
            None,
            lambda order: orders.mark_shipped(order, tracking_code=tracking_code, now=now),
        )

    async def mark_delivered(self, order_id: UUID) -> OrderView:
        now = self._clock()
        return await self._change(
            order_id, None, lambda order: orders.mark_delivered(order, now=now)
        )

    # ---------------------------------------- on a caller's open transaction

    async def confirm_on(
        self, connection: asyncpg.Connection, order_id: UUID, *, payment_id: UUID
    ) -> bool:
        """The saga's confirm step; whether the order changed."""
        now = self._clock()
        return await self._apply_on(
            connection,
            order_id,
            lambda order: orders.confirm(order, payment_id=payment_id, now=now),
        )

    async def cancel_on(
        self,
        connection: asyncpg.Connection,
        order_id: UUID,
        *,
        reason: CancelReason,
        detail: str | None = None,
    ) -> bool:
        """The saga's outcome when it turns back; a canceled order stays as it is."""
        now = self._clock()
        return await self._apply_on(
            connection,
            order_id,
            lambda order: orders.cancel(order, reason=reason, now=now, detail=detail),
        )

    async def shipment_scheduled_on(
        self, connection: asyncpg.Connection, order_id: UUID, *, tracking_code: str
    ) -> bool:
        now = self._clock()
        return await self._apply_on(
            connection,
            order_id,
            lambda order: orders.schedule_shipment(order, tracking_code=tracking_code, now=now),
        )

    async def shipped_on(
        self, connection: asyncpg.Connection, order_id: UUID, *, tracking_code: str
    ) -> bool:
        now = self._clock()
        return await self._apply_on(
            connection,
            order_id,
            lambda order: orders.mark_shipped(order, tracking_code=tracking_code, now=now),
        )

    async def delivered_on(
        self, connection: asyncpg.Connection, order_id: UUID, *, tracking_code: str
    ) -> bool:
        """DELIVERED; an order still CONFIRMED is marked shipped first."""
        now = self._clock()

        def decide(order: Order) -> Sequence[DomainEvent]:
            if order.status is OrderStatus.CONFIRMED:
                shipped = orders.mark_shipped(order, tracking_code=tracking_code, now=now)
                in_transit = orders.apply(order, shipped[0])
                assert in_transit is not None
                return [*shipped, *orders.mark_delivered(in_transit, now=now)]
            return orders.mark_delivered(order, now=now)

        return await self._apply_on(connection, order_id, decide)

    async def refunded_on(
        self, connection: asyncpg.Connection, order_id: UUID, *, payment_id: UUID | None
    ) -> bool:
        now = self._clock()
        return await self._apply_on(
            connection,
            order_id,
            lambda order: orders.record_refund(order, payment_id=payment_id, now=now),
        )

    async def invalidate(self, order_id: UUID) -> None:
        """Forget the cached order (after the commit of an ``*_on`` change)."""
        await self._cache.invalidate([order_id])

    async def _apply_on(
        self, connection: asyncpg.Connection, order_id: UUID, decide: Decide
    ) -> bool:
        result = await self._execute(connection, order_id, None, decide)
        return bool(result.events)

    async def _execute(
        self,
        connection: asyncpg.Connection,
        order_id: UUID,
        visible_to: UUID | None,
        decide: Decide,
    ) -> CommandResult[OrderState]:
        def scoped(state: OrderState) -> Sequence[DomainEvent]:
            # Checked on the aggregate itself, inside the command's transaction.
            if state is None or (visible_to is not None and state.user_id != visible_to):
                raise OrderNotFoundError(order_id)
            return decide(state)

        return await self._repository.execute(connection, order_id, scoped)

    async def _change(
        self,
        order_id: UUID,
        visible_to: UUID | None,
        decide: Decide,
        *,
        before: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
    ) -> OrderView:
        async with self._pool.acquire() as connection, connection.transaction():
            if before is not None:
                await before(connection)
            result = await self._execute(connection, order_id, visible_to, decide)
        if result.events:
            # After the commit: invalidating earlier would let a reader cache the old
            # row again before the new one is visible.
            await self._cache.invalidate([order_id])
        assert result.state is not None
        return view_of(result.state, result.version)

    # ----------------------------------------------------------------- reads

    async def get_order(self, order_id: UUID, *, visible_to: UUID | None) -> OrderView:
        view = await self._cache.get(order_id)
        if view is None:
            view = await self._views.get(order_id)
            if view is not None:
                await self._cache.put(view)
        if view is None or not _visible(view, visible_to):
            raise OrderNotFoundError(order_id)
        return view

    async def get_orders(
        self, order_ids: Sequence[UUID], *, visible_to: UUID | None
    ) -> list[OrderView]:
        """The visible orders among ``order_ids``, in request order, each once."""
        unique = list(dict.fromkeys(order_ids))
        found = await self._views.get_many(unique)
        return [
            found[order_id]
            for order_id in unique
            if order_id in found and _visible(found[order_id], visible_to)
        ]

    async def list_orders(
        self,
        *,
        visible_to: UUID | None,
        limit: int = DEFAULT_PAGE_SIZE,
        cursor: str | None = None,
        status: OrderStatus | None = None,
    ) -> OrdersPage:
        """Newest first, ``limit`` per page; ``visible_to=None`` lists every user's."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidOrderError.single("limit", f"must be between 1 and {MAX_PAGE_SIZE}")
        after = None if cursor is None else decode_cursor(cursor)
        page = await self._views.page(user_id=visible_to, status=status, after=after, limit=limit)
        return OrdersPage(
            page.items, None if page.next_key is None else encode_cursor(page.next_key)
        )

    async def count_orders(self, *, visible_to: UUID | None, status: OrderStatus | None) -> int:
        return await self._views.count(user_id=visible_to, status=status)

    async def saga(self, order_id: UUID, *, visible_to: UUID | None) -> SagaView:
        """The order's create-order saga (404 rules as ``get_order``, then no saga)."""
        await self.get_order(order_id, visible_to=visible_to)
        found = await self._sagas.find(order_id)
        if found is None:
            raise SagaNotFoundError(order_id)
        return found

    async def history(self, order_id: UUID, *, visible_to: UUID | None) -> list[StoredEvent]:
        """Every event of the order, in sequence (404 rules as ``get_order``)."""
        await self.get_order(order_id, visible_to=visible_to)
        async with self._pool.acquire() as connection:
            events = await self._repository.history(connection, order_id)
        if not events:
            raise OrderNotFoundError(order_id)
        return events
