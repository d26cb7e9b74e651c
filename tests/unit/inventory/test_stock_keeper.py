"""The stock use cases against in-memory fakes of the ports (no database).

The fakes keep the same contract as the PostgreSQL adapters, including rollback of
a unit of work that raises, so the tests pin what the service layer decides and
records, with a controllable clock.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from handwritten.inventory.domain.errors import (
    ReservationConflictError,
    ReservationNotFoundError,
)
from handwritten.inventory.domain.products import NewProduct, Product, ProductChanges
from handwritten.inventory.domain.reservations import (
    ReleaseReason,
    Reservation,
    ReservationLine,
    ReservationStatus,
)
from handwritten.inventory.domain.stock import RequestedItem, StockLevel, UnavailableReason
from handwritten.inventory.service_layer.paging import PageKey
from handwritten.inventory.service_layer.ports import (
    ProductCache,
    ProductRepository,
    ReservationEvents,
    ReservationRepository,
    UnitOfWork,
    UnitOfWorkFactory,
)
from handwritten.inventory.service_layer.stock import StockKeeper

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
TTL = 900.0


@dataclass
class State:
    """Everything the fakes store; copied on entry so a failed unit of work rolls back."""

    now: datetime = T0
    products: dict[uuid.UUID, Product] = field(default_factory=dict)
    reservations: dict[uuid.UUID, Reservation] = field(default_factory=dict)
    events: list[tuple[str, uuid.UUID, str]] = field(default_factory=list)


class FakeProducts(ProductRepository):
    def __init__(self, state: State) -> None:
        self.s = state

    async def get(self, product_id: uuid.UUID) -> Product | None:
        return self.s.products.get(product_id)

    async def get_many(self, product_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Product]:
        return {i: self.s.products[i] for i in product_ids if i in self.s.products}

    async def page(self, after: PageKey | None, limit: int) -> list[Product]:
        raise NotImplementedError

    async def add(self, product: NewProduct) -> Product:
        raise NotImplementedError

    async def update(self, product_id: uuid.UUID, changes: ProductChanges) -> Product | None:
        raise NotImplementedError

    async def stock(self, product_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, StockLevel]:
        return {
            p.product_id: StockLevel(p.product_id, p.name, p.price, p.available_quantity)
            for p in (await self.get_many(product_ids)).values()
        }

    async def lock_stock(self, product_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, StockLevel]:
        return await self.stock(product_ids)

    def _move(self, product_id: uuid.UUID, available: int, reserved: int) -> None:
        p = self.s.products[product_id]
        new = replace(
            p,
            available_quantity=p.available_quantity + available,
            reserved_quantity=p.reserved_quantity + reserved,
        )
        # The tables' CHECK constraints.
        assert new.available_quantity >= 0 and new.reserved_quantity >= 0
        self.s.products[product_id] = new

    async def hold(self, product_id: uuid.UUID, quantity: int) -> bool:
        if self.s.products[product_id].available_quantity < quantity:
            return False
        self._move(product_id, -quantity, quantity)
        return True

    async def debit_held(self, product_id: uuid.UUID, quantity: int) -> None:
        self._move(product_id, 0, -quantity)

    async def return_held(self, product_id: uuid.UUID, quantity: int) -> None:
        self._move(product_id, quantity, -quantity)

    async def return_sold(self, product_id: uuid.UUID, quantity: int) -> None:
        self._move(product_id, quantity, 0)


class FakeReservations(ReservationRepository):
    def __init__(self, state: State) -> None:
        self.s = state

    async def serialize(self, order_id: uuid.UUID) -> None:
        return None

    async def get(self, order_id: uuid.UUID) -> Reservation | None:
        return self.s.reservations.get(order_id)

    async def lock(self, order_id: uuid.UUID) -> Reservation | None:
        return self.s.reservations.get(order_id)

    async def add(
        self, order_id: uuid.UUID, lines: Sequence[ReservationLine], ttl_seconds: float
    ) -> Reservation:
        reservation = Reservation(
            order_id,
            tuple(lines),
            ReservationStatus.RESERVED,
            self.s.now + timedelta(seconds=ttl_seconds),
        )
        self.s.reservations[order_id] = reservation
        return reservation

    async def set_status(
        self,
        order_id: uuid.UUID,
        status: ReservationStatus,
        *,
        current: ReservationStatus = ReservationStatus.RESERVED,
    ) -> None:
        assert self.s.reservations[order_id].status is current
        self.s.reservations[order_id] = replace(self.s.reservations[order_id], status=status)

    async def lock_due(self, limit: int) -> list[Reservation]:
        return [r for r in self.s.reservations.values() if r.is_due(self.s.now)][:limit]


class FakeEvents(ReservationEvents):
    def __init__(self, state: State) -> None:
        self.s = state

    async def reserved(self, reservation: Reservation, at: datetime) -> None:
        self.s.events.append(("reserved", reservation.order_id, ""))

    async def released(self, reservation: Reservation, reason: ReleaseReason, at: datetime) -> None:
        self.s.events.append(("released", reservation.order_id, reason.value))


class FakeUnitOfWork(UnitOfWork):
    def __init__(self, state: State) -> None:
        self.s = state

    @property
    def products(self) -> ProductRepository:
        return FakeProducts(self.s)

    @property
    def reservations(self) -> ReservationRepository:
        return FakeReservations(self.s)

    @property
    def events(self) -> ReservationEvents:
        return FakeEvents(self.s)

    async def now(self) -> datetime:
        return self.s.now


class RecordingCache(ProductCache):
    def __init__(self) -> None:
        self.invalidated: list[uuid.UUID] = []

    async def get_many(self, product_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Product]:
        return {}

    async def put_many(self, products: Sequence[Product]) -> None:
        return None

    async def invalidate(self, product_ids: Sequence[uuid.UUID]) -> None:
        self.invalidated.extend(product_ids)


@dataclass
class World:
    state: State
    cache: RecordingCache
    keeper: StockKeeper

    def add_product(self, stock: int, price: str = "10.00") -> uuid.UUID:
        product_id = uuid.uuid4()
        self.state.products[product_id] = Product(
            product_id, "Thing", "", Decimal(price), stock, 0, T0, T0
        )
        return product_id

    def levels(self, product_id: uuid.UUID) -> tuple[int, int]:
        p = self.state.products[product_id]
        return p.available_quantity, p.reserved_quantity


@pytest.fixture
def world() -> World:
    state = State()

    @asynccontextmanager
    async def unit_of_work() -> AsyncIterator[UnitOfWork]:
        snapshot = copy.deepcopy((state.products, state.reservations, state.events))
        try:
            yield FakeUnitOfWork(state)
        except BaseException:
            state.products, state.reservations, state.events = snapshot
            raise

    factory: UnitOfWorkFactory = unit_of_work
    cache = RecordingCache()
    return World(state, cache, StockKeeper(factory, cache, reservation_ttl_seconds=TTL))


async def test_reserve_holds_prices_and_records_one_event(world: World) -> None:
    a, b = world.add_product(5, "59.90"), world.add_product(5, "0.10")
    order = uuid.uuid4()
    outcome = await world.keeper.reserve(order, [RequestedItem(a, 2), RequestedItem(b, 5)])
    assert outcome.reserved and outcome.reservation is not None
    assert outcome.reservation.expires_at == T0 + timedelta(seconds=TTL)
    assert {(line.product_id, line.unit_price) for line in outcome.reservation.lines} == {
        (a, Decimal("59.90")),
        (b, Decimal("0.10")),
    }
    assert (world.levels(a), world.levels(b)) == ((3, 2), (0, 5))
    assert world.state.events == [("reserved", order, "")]
    assert set(world.cache.invalidated) == {a, b}

    replay = await world.keeper.reserve(order, [RequestedItem(b, 5), RequestedItem(a, 2)])
    assert replay.reservation == outcome.reservation
    assert world.levels(a) == (3, 2)
    assert len(world.state.events) == 1


async def test_a_refused_reserve_changes_and_records_nothing(world: World) -> None:
    a, b = world.add_product(5), world.add_product(1)
    outcome = await world.keeper.reserve(uuid.uuid4(), [RequestedItem(a, 1), RequestedItem(b, 2)])
    assert not outcome.reserved
    assert [(u.product_id, u.reason) for u in outcome.unavailable] == [
        (b, UnavailableReason.INSUFFICIENT_STOCK)
    ]
    assert (world.levels(a), world.levels(b)) == ((5, 0), (1, 0))
    assert world.state.reservations == {} and world.state.events == []


async def test_commit_debits_and_is_idempotent(world: World) -> None:
    a = world.add_product(5)
    order = uuid.uuid4()
    await world.keeper.reserve(order, [RequestedItem(a, 2)])
    await world.keeper.commit(order)
    await world.keeper.commit(order)
    assert world.levels(a) == (3, 0)
    assert world.state.reservations[order].status is ReservationStatus.COMMITTED
    with pytest.raises(ReservationConflictError):
        await world.keeper.release(order)
    with pytest.raises(ReservationNotFoundError):
        await world.keeper.commit(uuid.uuid4())


async def test_commit_after_expiry_expires_first_then_refuses(world: World) -> None:
    a = world.add_product(5)
    order = uuid.uuid4()
    await world.keeper.reserve(order, [RequestedItem(a, 4)])
    world.state.now = T0 + timedelta(seconds=TTL)  # due, and no sweep has run
    with pytest.raises(ReservationConflictError, match="EXPIRED"):
        await world.keeper.commit(order)
    # The expiry itself was kept (not rolled back with the refusal).
    assert world.state.reservations[order].status is ReservationStatus.EXPIRED
    assert world.levels(a) == (5, 0)
    assert world.state.events[-1] == ("released", order, "RESERVATION_EXPIRED")


async def test_release_returns_stock_once(world: World) -> None:
    a = world.add_product(3)
    order = uuid.uuid4()
    await world.keeper.reserve(order, [RequestedItem(a, 3)])
    assert await world.keeper.release(order) is True
    assert await world.keeper.release(order) is False
    assert await world.keeper.release(uuid.uuid4()) is False
    assert world.levels(a) == (3, 0)
    assert [e for e in world.state.events if e[0] == "released"] == [
        ("released", order, "ORDER_CANCELED")
    ]


async def test_expire_due_releases_only_what_is_due(world: World) -> None:
    a = world.add_product(10)
    early, late = uuid.uuid4(), uuid.uuid4()
    await world.keeper.reserve(early, [RequestedItem(a, 2)])
    world.state.now = T0 + timedelta(seconds=60)
    await world.keeper.reserve(late, [RequestedItem(a, 3)])
    world.state.now = T0 + timedelta(seconds=TTL + 1)
    assert await world.keeper.expire_due(100) == 1
    assert world.state.reservations[early].status is ReservationStatus.EXPIRED
    assert world.state.reservations[late].status is ReservationStatus.RESERVED
    assert world.levels(a) == (7, 3)
    assert await world.keeper.expire_due(100) == 0
