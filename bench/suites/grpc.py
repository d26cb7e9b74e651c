"""Inventory ReserveProducts on grpclib vs the same proto on grpc.aio.

Each server runs as its own process (``bench.grpc_server``) and is called from this
one with its own library's client (grpclib's channel and the generated betterproto2
stub; grpc.aio's channel and protoc's stub), one call at a time and from 16
concurrent callers:

- ``trivial``: a fixed answer, no I/O — the cost of the gRPC stack itself;
- ``reserve``: the real reservation (``StockKeeper.reserve`` on PostgreSQL: advisory
  lock per order, row locks, reservation and outbox rows) on a scratch schema, spread
  over 16 products so callers do not queue on one product's row lock. Run on
  grpclib bare, on grpclib inside the runtime's ``GrpcServer`` (metrics, access log,
  correlation id: as the inventory service runs), and on grpc.aio.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpclib.client import Channel

from bench import grpcio_stubs
from bench.context import Context, wait_until
from bench.drivers import closed_loop
from bench.postgres import ScratchDatabase, scratch_database
from bench.results import SuiteResult, Table, ms, per_second, times, unexpected_outcomes
from bench.stack import REPO_ROOT, SCRATCH_DIR
from bench.stats import LatencySummary, rate, ratio, summarize_json
from generated.grpc.inventory.v1 import (
    InventoryServiceStub,
    ProductQuantity,
    ReserveProductsRequest,
)
from handwritten.runtime.db import migrate
from handwritten.runtime.outbox import migrate_outbox

TITLE = "Inventory gRPC ReserveProducts: grpclib vs grpc.aio"
SCHEMA = "grpc_bench"
PRODUCTS = 16
HOST = "127.0.0.1"
INVENTORY_MIGRATIONS = REPO_ROOT / "handwritten/inventory/migrations"
#: (implementation, handler) pairs, in the order they run.
VARIANTS = [
    ("grpclib", "trivial"),
    ("grpcio", "trivial"),
    ("grpclib", "reserve"),
    ("grpclib-runtime", "reserve"),
    ("grpcio", "reserve"),
]

Call = Callable[[int], Awaitable[str]]


async def prepare_schema(database: ScratchDatabase) -> list[str]:
    """The inventory tables in a scratch schema, with products stocked for the run."""
    connection = await database.connect()
    try:
        await connection.execute(f"CREATE SCHEMA {SCHEMA}")
    finally:
        await connection.close()
    connection = await database.connect(schema=SCHEMA)
    try:
        await migrate(connection, INVENTORY_MIGRATIONS)
        await migrate_outbox(connection)
        rows = await connection.fetch(
            "INSERT INTO products (name, price, available_quantity)"
            " SELECT 'Bench ' || n, 10.00, 1000000 FROM generate_series(1, $1) AS n"
            " RETURNING product_id",
            PRODUCTS,
        )
    finally:
        await connection.close()
    return [str(row["product_id"]) for row in rows]


@contextlib.asynccontextmanager
async def server(impl: str, handler: str, database: ScratchDatabase) -> AsyncIterator[int]:
    """Start ``bench.grpc_server`` and yield its port; stop it on exit."""
    ready = SCRATCH_DIR / f"grpc-{impl}-{handler}.port"
    ready.unlink(missing_ok=True)
    log = (SCRATCH_DIR / "grpc-server.log").open("ab")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.grpc_server",
        "--impl",
        impl,
        "--handler",
        handler,
        "--url",
        database.url,
        "--schema",
        SCHEMA,
        "--ready-file",
        str(ready),
        cwd=REPO_ROOT,
        stdout=log,
        stderr=log,
    )

    async def listening() -> bool:
        if process.returncode is not None:
            raise RuntimeError(f"bench.grpc_server exited {process.returncode} (see {log.name})")
        return ready.exists() and ready.read_text(encoding="utf-8").isdigit()

    try:
        if not await wait_until(listening, seconds=30, interval=0.1):
            raise RuntimeError(f"bench.grpc_server did not start (see {log.name})")
        yield int(ready.read_text(encoding="utf-8"))
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
        log.close()
        ready.unlink(missing_ok=True)


@contextlib.asynccontextmanager
async def client(impl: str, port: int, products: list[str]) -> AsyncIterator[Call]:
    """A call of ReserveProducts with the implementation's own client library."""
    if impl == "grpcio":
        messages, services = grpcio_stubs.load()
        channel = grpc.aio.insecure_channel(f"{HOST}:{port}")
        stub: Any = services.InventoryServiceStub(channel)

        async def call_grpcio(number: int) -> str:
            request = messages.ReserveProductsRequest(order_id=str(uuid.uuid4()))
            request.items.add(product_id=products[number % len(products)], quantity=1)
            response = await stub.ReserveProducts(request, timeout=10)
            return "ok" if response.reserved else "not-reserved"

        try:
            yield call_grpcio
        finally:
            await channel.close()
        return
    grpclib_channel = Channel(HOST, port)
    grpclib_stub = InventoryServiceStub(grpclib_channel)

    async def call_grpclib(number: int) -> str:
        response = await grpclib_stub.reserve_products(
            ReserveProductsRequest(
                order_id=str(uuid.uuid4()),
                items=[ProductQuantity(product_id=products[number % len(products)], quantity=1)],
            ),
            timeout=10,
        )
        return "ok" if response.reserved else "not-reserved"

    try:
        yield call_grpclib
    finally:
        grpclib_channel.close()


async def run(ctx: Context) -> SuiteResult:
    duration = ctx.pick(8.0, 3.0)
    concurrency = [1, 16]
    grpcio_stubs.generate()
    results: dict[str, dict[str, Any]] = {}
    async with scratch_database() as database:
        products = await prepare_schema(database)
        for impl, handler in VARIANTS:
            async with server(impl, handler, database) as port:
                client_impl = "grpcio" if impl == "grpcio" else "grpclib"
                async with client(client_impl, port, products) as call:
                    await closed_loop(call, concurrency=4, duration=ctx.pick(1.0, 0.5))  # warm-up
                    for callers in concurrency:
                        ctx.log(f"grpc: {impl} {handler}, {callers} caller(s), {duration:g} s")
                        driven = await closed_loop(call, concurrency=callers, duration=duration)
                        failures = {k: v for k, v in driven.outcomes().items() if k != "ok"}
                        results[f"{impl} | {handler} | {callers}"] = {
                            "calls": len(driven.samples),
                            "outcomes": driven.outcomes(),
                            "calls_per_second": rate(driven.count(["ok"]), driven.elapsed),
                            "latency": summarize_json(LatencySummary.of(driven.latencies(["ok"]))),
                            "failures": failures,
                        }
    return _result(ctx, results, duration, concurrency)


def _result(
    ctx: Context, results: dict[str, dict[str, Any]], duration: float, concurrency: list[int]
) -> SuiteResult:
    rows = []
    for impl, handler in VARIANTS:
        for callers in concurrency:
            data = results[f"{impl} | {handler} | {callers}"]
            latency = data["latency"] or {}
            baseline = results.get(f"grpcio | {handler} | {callers}")
            rows.append(
                [
                    handler,
                    impl,
                    str(callers),
                    per_second(data["calls_per_second"]),
                    ms(latency.get("p50_ms")),
                    ms(latency.get("p95_ms")),
                    ms(latency.get("p99_ms")),
                    times(ratio(data["calls_per_second"], baseline["calls_per_second"]))
                    if baseline and impl != "grpcio"
                    else "",
                    ", ".join(f"{k}: {v}" for k, v in data["failures"].items()) or "none",
                ]
            )
    return SuiteResult(
        suite="grpc",
        title=TITLE,
        parameters={
            "phase_seconds": duration,
            "callers": concurrency,
            "products": PRODUCTS,
            "clients": "each server called with its own library's client",
            "quick": ctx.quick,
        },
        results=results,
        tables=[
            Table(
                "ReserveProducts calls (client and server in separate processes, loopback)",
                [
                    "handler",
                    "server",
                    "callers",
                    "calls/s",
                    "p50 ms",
                    "p95",
                    "p99",
                    "÷ grpc.aio",
                    "failures",
                ],
                rows,
            )
        ],
        notes=[
            "grpclib = betterproto2 messages + grpclib (what the platform uses);"
            " grpc.aio = protoc's protobuf messages + grpcio's C core, generated at bench time"
            " into .local/bench/grpcio.",
            *unexpected_outcomes(
                {label: data["outcomes"] for label, data in results.items()}, expected=["ok"]
            ),
            "The client runs in the benchmark's process on the same two cores as the server"
            " and PostgreSQL: a saturated number is the whole machine's.",
        ],
    )
