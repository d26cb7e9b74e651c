"""Event store: append and aggregate load, ours vs the ``eventsourcing`` library.

Both run on one scratch database of the local cluster, each in its own schema, with
the same event payload (an order line of ~200 bytes of JSON) and one client:

- append: 1 and 100 events per append, each append a new aggregate, timed from
  building the event objects to the commit. Ours: ``NewEvent``s and ``append`` in a
  transaction (asyncpg). Theirs: an ``Aggregate`` whose creation and method calls
  produce the events, then ``Application.save`` (psycopg 3, its PostgreSQL
  *application* recorder, which also takes an EXCLUSIVE table lock per insert to
  number notifications gaplessly and NOTIFYs).
- load: aggregates of 10 and 1,000 events, replayed from the first event and from a
  snapshot taken at the last one. Ours: ``AggregateRepository.load`` (snapshot row +
  tail, JSON decode, upcast, fold). Theirs: ``Application.repository.get``.

The library is synchronous; it runs on the same thread, alone, so each side has the
CPU to itself while it is measured.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from bench.context import Context
from bench.drivers import Run, Sample, repeat
from bench.postgres import ScratchDatabase, scratch_database
from bench.results import SuiteResult, Table, ms, per_second, times
from bench.stats import LatencySummary, rate, ratio, summarize_json
from handwritten.runtime.eventstore import (
    AggregateRepository,
    AggregateSpec,
    DomainEvent,
    NewEvent,
    append,
    migrate_event_store,
    save_snapshot,
    take_snapshot,
)

TITLE = "Event store: ours vs the eventsourcing library (PostgreSQL)"
OURS, THEIRS = "ours", "theirs"


def payload(number: int) -> dict[str, Any]:
    """The data of one event (the same fields and sizes on both sides)."""
    return {
        "order_id": "3f2b8c1e-6d0c-4a55-9a57-1f3c2b7d9e10",
        "sku": f"SKU-{number:06d}",
        "quantity": 1 + number % 3,
        "amount": "129.90",
        "note": "Deliver between 9 and 18h; leave with the doorman if nobody answers. " * 2,
    }


# ----------------------------------------------------------------------- theirs


class Counter(Aggregate):
    """The library's aggregate: created with one line, then ``add`` per further line."""

    def __init__(self, order_id: str, sku: str, quantity: int, amount: str, note: str) -> None:
        self.total = quantity

    @event("Added")
    def add(self, order_id: str, sku: str, quantity: int, amount: str, note: str) -> None:
        self.total += quantity


def their_application(database: ScratchDatabase, schema: str) -> Application[uuid.UUID]:
    return Application(
        env={
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": database.name,
            "POSTGRES_HOST": database.host,
            "POSTGRES_PORT": str(database.port),
            "POSTGRES_USER": database.user,
            "POSTGRES_PASSWORD": database.password,
            "POSTGRES_SCHEMA": schema,
            "CREATE_TABLE": "y",
            "IS_SNAPSHOTTING_ENABLED": "y",
        }
    )


def their_aggregate(events: int) -> Counter:
    aggregate = Counter(**payload(0))
    for number in range(1, events):
        aggregate.add(**payload(number))
    return aggregate


def time_sync(call: Callable[[int], object], iterations: int) -> Run:
    """``repeat`` for a synchronous call."""
    run = Run()
    start = time.perf_counter()
    for number in range(iterations):
        began = time.perf_counter()
        call(number)
        run.samples.append(Sample(began - start, time.perf_counter() - began, "ok"))
    run.elapsed = time.perf_counter() - start
    return run


# ------------------------------------------------------------------------- ours


def _apply(state: dict[str, int], event: DomainEvent) -> dict[str, int]:
    return {"total": state["total"] + int(event.data["quantity"])}


SPEC: AggregateSpec[dict[str, int]] = AggregateSpec(
    aggregate_type="Counter",
    initial=lambda _: {"total": 0},
    apply=_apply,
    snapshot_version=1,
    to_snapshot=dict,
    from_snapshot=lambda data: {"total": int(data["total"])},
)


def our_events(count: int) -> list[NewEvent]:
    return [
        NewEvent(event_type="Created" if n == 0 else "Added", data=payload(n)) for n in range(count)
    ]


async def our_append(connection: asyncpg.Connection, count: int) -> uuid.UUID:
    aggregate_id = uuid.uuid4()
    async with connection.transaction():
        await append(connection, SPEC.aggregate_type, aggregate_id, 0, our_events(count))
    return aggregate_id


async def our_aggregate(connection: asyncpg.Connection, events: int) -> uuid.UUID:
    aggregate_id = uuid.uuid4()
    for start in range(0, events, 100):
        batch = our_events(min(100, events - start))
        async with connection.transaction():
            await append(connection, SPEC.aggregate_type, aggregate_id, start, batch)
    return aggregate_id


# -------------------------------------------------------------------------- run


async def run(ctx: Context) -> SuiteResult:
    appends = {1: ctx.count(1500, 150), 100: ctx.count(150, 15)}
    loads = {10: ctx.count(500, 50), 1000: ctx.count(40, 5)}
    measurements: dict[str, dict[str, Any]] = {}
    async with scratch_database() as database:
        connection = await database.connect()
        await connection.execute(f"CREATE SCHEMA {OURS}; CREATE SCHEMA {THEIRS}")
        await connection.close()
        connection = await database.connect(schema=OURS)
        app = their_application(database, THEIRS)
        try:
            await migrate_event_store(connection)
            repository = AggregateRepository(SPEC, service="bench", snapshot_every=0)
            for size, iterations in appends.items():
                ctx.log(f"eventstore: append {size} × {iterations}")

                async def ours(_: int, size: int = size) -> str:
                    await our_append(connection, size)
                    return "ok"

                def theirs(_: int, size: int = size) -> None:
                    app.save(their_aggregate(size))

                measurements[f"append_{size}"] = _pair(
                    await repeat(ours, iterations=iterations),
                    time_sync(theirs, iterations),
                    events=size,
                )
            for size, iterations in loads.items():
                for snapshot in (False, True):
                    ctx.log(f"eventstore: load {size} events, snapshot={snapshot} × {iterations}")
                    our_id = await our_aggregate(connection, size)
                    their = their_aggregate(size)
                    app.save(their)
                    if snapshot:
                        loaded = await repository.load(connection, our_id)
                        await save_snapshot(connection, take_snapshot(SPEC, loaded))
                        app.take_snapshot(their.id)

                    async def load_ours(
                        _: int, our_id: uuid.UUID = our_id, size: int = size
                    ) -> str:
                        loaded = await repository.load(connection, our_id)
                        return "ok" if loaded.version == size else f"version {loaded.version}"

                    def load_theirs(
                        _: int, their_id: uuid.UUID = their.id, size: int = size
                    ) -> None:
                        loaded: Counter = app.repository.get(their_id)
                        if loaded.version != size:
                            raise RuntimeError(f"eventsourcing loaded version {loaded.version}")

                    key = f"load_{size}_{'snapshot' if snapshot else 'replay'}"
                    measurements[key] = _pair(
                        await repeat(load_ours, iterations=iterations),
                        time_sync(load_theirs, iterations),
                        events=size,
                    )
            stored = await _stored_sizes(connection)
        finally:
            app.close()
            await connection.close()
    return _result(ctx, measurements, appends, loads, stored)


def _pair(ours: Run, theirs: Run, *, events: int) -> dict[str, Any]:
    def side(run: Run) -> dict[str, Any]:
        failures = {k: v for k, v in run.outcomes().items() if k != "ok"}
        if failures:
            raise RuntimeError(f"benchmark calls failed: {failures}")
        return {
            "operations": len(run.samples),
            "operations_per_second": rate(len(run.samples), run.elapsed),
            "events_per_second": rate(len(run.samples) * events, run.elapsed),
            "latency": summarize_json(LatencySummary.of(run.latencies())),
        }

    result: dict[str, Any] = {OURS: side(ours), THEIRS: side(theirs)}
    result["ours_over_theirs_throughput"] = ratio(
        result[OURS]["operations_per_second"], result[THEIRS]["operations_per_second"]
    )
    return result


async def _stored_sizes(connection: asyncpg.Connection) -> dict[str, float]:
    """Average stored bytes per event on each side (what the same payload costs)."""
    # Schema names are this module's constants, not input.
    size = "pg_column_size(event_data) + pg_column_size(metadata)"
    ours: float = await connection.fetchval(f"SELECT avg({size})::float8 FROM {OURS}.events")  # noqa: S608
    theirs: float = await connection.fetchval(
        f"SELECT avg(pg_column_size(state))::float8 FROM {THEIRS}.application_events"  # noqa: S608
    )
    return {OURS: round(ours, 1), THEIRS: round(theirs, 1)}


def _result(
    ctx: Context,
    measurements: dict[str, dict[str, Any]],
    appends: dict[int, int],
    loads: dict[int, int],
    stored: dict[str, float],
) -> SuiteResult:
    labels = {
        "append_1": "append 1 event",
        "append_100": "append 100 events",
        "load_10_replay": "load 10 events, no snapshot",
        "load_10_snapshot": "load 10 events, snapshot",
        "load_1000_replay": "load 1,000 events, no snapshot",
        "load_1000_snapshot": "load 1,000 events, snapshot",
    }
    rows = []
    for key, label in labels.items():
        pair = measurements[key]
        ours, theirs = pair[OURS], pair[THEIRS]
        rows.append(
            [
                label,
                per_second(ours["operations_per_second"]),
                ms(ours["latency"]["p50_ms"]),
                ms(ours["latency"]["p99_ms"]),
                per_second(theirs["operations_per_second"]),
                ms(theirs["latency"]["p50_ms"]),
                ms(theirs["latency"]["p99_ms"]),
                times(pair["ours_over_theirs_throughput"]),
            ]
        )
    return SuiteResult(
        suite="eventstore",
        title=TITLE,
        parameters={
            "appends": {str(k): v for k, v in appends.items()},
            "loads": {str(k): v for k, v in loads.items()},
            "clients": 1,
            "quick": ctx.quick,
        },
        results={**measurements, "stored_bytes_per_event": stored},
        tables=[
            Table(
                "Operations per second and latency (one client)",
                [
                    "operation",
                    "ours ops/s",
                    "p50 ms",
                    "p99 ms",
                    "eventsourcing ops/s",
                    "p50 ms",
                    "p99 ms",
                    "ours ÷ theirs",
                ],
                rows,
            )
        ],
        notes=[
            "Ours: asyncpg, events + metadata as jsonb, optimistic concurrency on"
            " (aggregate_id, sequence_number). eventsourcing 9: psycopg 3 (binary),"
            " JSON-transcoded bytea, and its application recorder locks the events table"
            " per insert to keep notification ids gapless.",
            f"Stored bytes per event (payload + metadata): ours {stored[OURS]},"
            f" eventsourcing {stored[THEIRS]}.",
        ],
    )
