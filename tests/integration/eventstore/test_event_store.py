"""Event store on real PostgreSQL: concurrency, snapshots, upcasting, atomicity."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from generated.events.registry import PAYMENTS_PROCESSED
from generated.models.events import PaymentProcessedPayload
from handwritten.runtime.eventstore import (
    AggregateRepository,
    ConcurrencyError,
    DomainEvent,
    Loaded,
    NewEvent,
    OutboxMessage,
    Snapshot,
    all_events,
    append,
    load,
    load_snapshot,
    rebuild,
    save_snapshot,
)
from handwritten.runtime.inbox import first_time
from tests.integration.eventstore.database import Schema
from tests.unit.eventstore.toy import ACCOUNT, Account, Rejected, deposit, open_account

CONCURRENT = 20


def payment_for(aggregate_id: uuid.UUID, state: Account, event: DomainEvent) -> list[OutboxMessage]:
    """The toy's integration events: every deposit is announced as a processed payment."""
    if event.event_type != "Deposited":
        return []
    payload = PaymentProcessedPayload.model_validate(
        {
            "sagaId": str(uuid.uuid4()),
            "orderId": str(aggregate_id),
            "paymentId": str(uuid.uuid4()),
            "userId": str(uuid.uuid4()),
            "amount": f"{Decimal(event.data['amount']):.2f}",
            "currency": "BRL",
            "gatewayTransactionId": f"balance-{state.balance}",
            "processedAt": "2026-11-28T12:00:00Z",
        }
    )
    return [OutboxMessage(PAYMENTS_PROCESSED, payload)]


def repository(**options: Any) -> AggregateRepository[Account]:
    return AggregateRepository(ACCOUNT, service="orders", messages=payment_for, **options)


async def opened(db: Schema) -> uuid.UUID:
    aggregate_id = uuid.uuid4()
    connection = await db.connect()
    try:
        await repository().execute(connection, aggregate_id, open_account("ana"))
    finally:
        await connection.close()
    return aggregate_id


async def sequence_numbers(connection: asyncpg.Connection, aggregate_id: uuid.UUID) -> list[int]:
    return [event.sequence_number for event in await load(connection, aggregate_id)]


async def outbox_keys(connection: asyncpg.Connection, aggregate_id: uuid.UUID) -> int:
    count: int = await connection.fetchval(
        "SELECT count(*) FROM outbox WHERE key = $1", str(aggregate_id)
    )
    return count


async def test_concurrent_appends_at_the_same_version_exactly_one_wins(db: Schema) -> None:
    aggregate_id = await opened(db)
    connections = await asyncio.gather(*(db.connect() for _ in range(CONCURRENT)))
    try:
        results = await asyncio.gather(
            *(
                append(
                    connection,
                    "Account",
                    aggregate_id,
                    1,
                    [NewEvent("Deposited", {"amount": i + 1}, schema_version=2)],
                )
                for i, connection in enumerate(connections)
            ),
            return_exceptions=True,
        )
        winners = [result for result in results if isinstance(result, list)]
        losers = [result for result in results if isinstance(result, ConcurrencyError)]
        assert len(winners) == 1 and len(losers) == CONCURRENT - 1, results
        assert [event.sequence_number for event in winners[0]] == [2]
        assert await sequence_numbers(connections[0], aggregate_id) == [1, 2]
        stored = await load(connections[0], aggregate_id, 1)
        assert stored[0].data == winners[0][0].data  # the winner's event, not overwritten
    finally:
        await asyncio.gather(*(connection.close() for connection in connections))


async def test_append_refuses_a_version_the_aggregate_has_not_reached(db: Schema) -> None:
    aggregate_id = await opened(db)
    connection = await db.connect()
    try:
        with pytest.raises(ConcurrencyError):
            await append(connection, "Account", aggregate_id, 5, [NewEvent("Closed", {})])
        with pytest.raises(ConcurrencyError):  # version 0 = new, but it exists
            await append(connection, "Account", aggregate_id, 0, [NewEvent("Opened", {})])
        assert await sequence_numbers(connection, aggregate_id) == [1]
    finally:
        await connection.close()


async def test_with_retries_all_concurrent_commands_land_gaplessly(db: Schema) -> None:
    aggregate_id = await opened(db)
    # Each failed attempt means another command committed in between, so with 20
    # commands none can fail more than 19 times: 20 attempts always suffice.
    repo = repository(max_attempts=CONCURRENT, snapshot_every=7)
    pool = await db.pool(min_size=CONCURRENT, max_size=CONCURRENT)
    try:

        async def run(amount: int) -> int:
            async with pool.acquire() as connection:
                result = await repo.execute(connection, aggregate_id, deposit(amount))
                return result.attempts

        attempts = await asyncio.gather(*(run(amount) for amount in range(1, CONCURRENT + 1)))
        assert sum(attempts) > CONCURRENT, "the commands never actually conflicted"
        async with pool.acquire() as connection:
            assert await sequence_numbers(connection, aggregate_id) == list(
                range(1, CONCURRENT + 2)
            )
            loaded = await repo.load(connection, aggregate_id)
            assert loaded.state.balance == sum(range(1, CONCURRENT + 1))
            assert sorted(loaded.state.movements) == list(range(1, CONCURRENT + 1))
            # One outbox row per deposit, written by the winning attempts only.
            assert await outbox_keys(connection, aggregate_id) == CONCURRENT
    finally:
        await pool.close()


class Overtaken(AggregateRepository[Account]):
    """Test seam: a rival deposits 1 between this repository's load and its append,
    on its first ``times`` loads through any connection other than the rival's."""

    def __init__(self, rival: asyncpg.Connection, times: int, **options: Any) -> None:
        super().__init__(ACCOUNT, service="orders", messages=payment_for, **options)
        self.rival, self.times = rival, times

    async def load(
        self, connection: asyncpg.Connection, aggregate_id: uuid.UUID
    ) -> Loaded[Account]:
        loaded = await super().load(connection, aggregate_id)
        if connection is not self.rival and self.times > 0:
            self.times -= 1
            await self.execute(self.rival, aggregate_id, deposit(1))
        return loaded


async def test_bounded_retries_give_up_with_concurrency_error(db: Schema) -> None:
    aggregate_id = await opened(db)
    connection, rival = await db.connect(), await db.connect()
    repo = Overtaken(rival, times=100, max_attempts=3)
    calls = 0

    def deposit_100(state: Account) -> list[DomainEvent]:
        nonlocal calls
        calls += 1
        return [DomainEvent("Deposited", {"amount": 100})]

    try:
        with pytest.raises(ConcurrencyError):
            await repo.execute(connection, aggregate_id, deposit_100)
        assert calls == 3
        amounts = [e.data["amount"] for e in await load(connection, aggregate_id, 1)]
        assert amounts == [1, 1, 1]  # only the rival's deposits
    finally:
        await connection.close()
        await rival.close()


async def test_inside_an_open_transaction_a_conflict_retries_only_the_savepoint(
    db: Schema,
) -> None:
    """How a consumer handler uses it: the inbox mark and the command commit together."""
    aggregate_id = await opened(db)
    connection, rival = await db.connect(), await db.connect()
    repo = Overtaken(rival, times=1)
    event_id = uuid.uuid4()
    try:
        async with connection.transaction():
            assert await first_time(connection, "test-handler", event_id)
            result = await repo.execute(connection, aggregate_id, deposit(7))
        assert result.attempts == 2
        amounts = [e.data["amount"] for e in await load(connection, aggregate_id, 1)]
        assert amounts == [1, 7]
        assert await outbox_keys(connection, aggregate_id) == 2
        async with connection.transaction():
            assert not await first_time(connection, "test-handler", event_id)
    finally:
        await connection.close()
        await rival.close()


async def test_snapshot_plus_tail_equals_full_replay(db: Schema) -> None:
    aggregate_id = await opened(db)
    repo = repository(snapshot_every=5)
    connection = await db.connect()
    try:
        for amount in range(1, 12):
            await repo.execute(connection, aggregate_id, deposit(amount))
        snapshot = await load_snapshot(connection, aggregate_id)
        assert snapshot is not None and snapshot.last_sequence_number == 10

        via_snapshot = await repo.load(connection, aggregate_id)
        events = await load(connection, aggregate_id, upcasters=ACCOUNT.upcasters)
        full = rebuild(ACCOUNT, aggregate_id, None, [(e.sequence_number, e.domain) for e in events])
        assert via_snapshot.snapshot_sequence == 10  # it really started from the snapshot
        assert (via_snapshot.state, via_snapshot.version) == (full.state, full.version)
        assert full.version == 12 and full.state.balance == sum(range(1, 12))
    finally:
        await connection.close()


async def test_a_snapshot_of_an_outdated_format_is_ignored(db: Schema) -> None:
    aggregate_id = await opened(db)
    repo = repository(snapshot_every=0)
    connection = await db.connect()
    try:
        for amount in (10, 20, 30):
            await repo.execute(connection, aggregate_id, deposit(amount))
        truth = await repo.load(connection, aggregate_id)

        # A snapshot in the current format is trusted as is (here: deliberately wrong)…
        lying = {"accountId": str(aggregate_id), "owner": "x", "balance": 999, "closed": False,
                 "movements": [999]}  # fmt: skip
        await save_snapshot(
            connection, Snapshot(aggregate_id, "Account", ACCOUNT.snapshot_version, lying, 4)
        )
        assert (await repo.load(connection, aggregate_id)).state.balance == 999

        # …one in an older format (a v1 layout) is not: full replay, never a misread.
        old = {"total": "60.00", "owner_name": "ana"}
        await save_snapshot(
            connection, Snapshot(aggregate_id, "Account", ACCOUNT.snapshot_version - 1, old, 4)
        )
        loaded = await repo.load(connection, aggregate_id)
        assert loaded.snapshot_sequence == 0
        assert (loaded.state, loaded.version) == (truth.state, truth.version)

        # The next command replaces it with a current-format snapshot once due.
        await repository(snapshot_every=3).execute(connection, aggregate_id, deposit(1))
        replaced = await load_snapshot(connection, aggregate_id)
        assert replaced is not None
        assert (replaced.snapshot_version, replaced.last_sequence_number) == (2, 5)
        assert replaced.state["balance"] == 61
    finally:
        await connection.close()


async def test_upcaster_turns_a_v1_event_into_v2_on_load(db: Schema) -> None:
    aggregate_id = await opened(db)
    connection = await db.connect()
    try:
        # Written by "old code": Deposited v1 carried {"value": "<decimal string>"}.
        await append(
            connection,
            "Account",
            aggregate_id,
            1,
            [NewEvent("Deposited", {"value": "42"}, schema_version=1)],
        )
        raw = await connection.fetchval(
            "SELECT event_data::text FROM events WHERE aggregate_id = $1 AND sequence_number = 2",
            aggregate_id,
        )
        assert json.loads(raw) == {"value": "42"}  # the stored row is never rewritten

        [event] = await load(connection, aggregate_id, 1, upcasters=ACCOUNT.upcasters)
        assert (event.schema_version, event.data) == (2, {"amount": 42})
        assert event.metadata.schema_version == 1  # as written
        assert (await repository().load(connection, aggregate_id)).state.balance == 42

        # New events are written at the current version and need no upcasting.
        await repository().execute(connection, aggregate_id, deposit(8))
        [latest] = await load(connection, aggregate_id, 2)
        assert (latest.schema_version, latest.data) == (2, {"amount": 8})
    finally:
        await connection.close()


async def test_a_failed_command_transaction_leaves_no_events_and_no_outbox_rows(
    db: Schema,
) -> None:
    aggregate_id = await opened(db)
    connection = await db.connect()

    def two_deposits(state: Account) -> Sequence[DomainEvent]:
        return [DomainEvent("Deposited", {"amount": 1}), DomainEvent("Deposited", {"amount": 2})]

    def second_message_fails(
        aggregate: uuid.UUID, state: Account, event: DomainEvent
    ) -> list[OutboxMessage]:
        if event.data["amount"] == 2:
            raise RuntimeError("boom after the append and the first outbox row")
        return payment_for(aggregate, state, event)

    try:
        failing = AggregateRepository(
            ACCOUNT, service="orders", messages=second_message_fails, snapshot_every=1
        )
        with pytest.raises(RuntimeError, match="boom"):
            await failing.execute(connection, aggregate_id, two_deposits)
        with pytest.raises(Rejected):  # a domain rejection is not retried, writes nothing
            await repository().execute(connection, aggregate_id, open_account("bob"))
        assert await sequence_numbers(connection, aggregate_id) == [1]
        assert await outbox_keys(connection, aggregate_id) == 0
        assert await load_snapshot(connection, aggregate_id) is None
        assert not connection.is_in_transaction()
    finally:
        await connection.close()


async def test_all_events_pages_through_every_aggregate_in_id_order(db: Schema) -> None:
    first, second = await opened(db), await opened(db)
    connection = await db.connect()
    try:
        await repository().execute(connection, first, deposit(3))
        await repository().execute(connection, second, deposit(4))
        seen, after = [], 0
        while page := await all_events(connection, after, 2, upcasters=ACCOUNT.upcasters):
            seen.extend(page)
            after = page[-1].id
        ids = [event.id for event in seen]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        mine = [
            (e.aggregate_id, e.sequence_number) for e in seen if e.aggregate_id in (first, second)
        ]
        assert mine == [(first, 1), (second, 1), (first, 2), (second, 2)]
    finally:
        await connection.close()
