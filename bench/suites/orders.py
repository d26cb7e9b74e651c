"""End to end: POST /api/orders and the create-order saga, through the gateway and direct.

For each target (the gateway on :8000, the orders service on :8102 with the same
bearer token) the suite places orders at fixed rates (open model) and at saturation
(closed loop), then waits for every saga to end. It reports POST throughput and
p50/p95/p99 latency (201s only), sagas completed per second (completed sagas over
the time from the first POST to the last saga's end) and POST-to-saga-end latency,
read from the orders database's ``saga_instances``.

Commits per order: PostgreSQL's commit counters of every service database across
the first phase, until all its orders are DELIVERED (the whole life of an order:
saga, projections, outboxes, inboxes, shipping), minus the idle background rate
measured just before. ``pgbench`` (TPC-B-like, one commit per transaction) on a
scratch database of the same cluster gives the commit ceiling; ceiling / commits
per order is the order rate PostgreSQL alone would allow.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from bench.accounts import ORDERS, Product, UserPool, bench_products
from bench.context import Context, require_stack, wait_until
from bench.drivers import Run, closed_loop, fixed_rate
from bench.postgres import Cluster, commits, pgbench, scratch_database
from bench.results import SuiteResult, Table, ms, per_second, times, unexpected_outcomes
from bench.stack import database_url, gateway_url, service_url
from bench.stats import LatencySummary, rate, ratio, summarize_json

TITLE = "End to end: POST /api/orders and the create-order saga"
TERMINAL = ("COMPLETED", "COMPENSATED", "FAILED")
ADDRESS = {
    "street": "Av. Paulista, 1000",
    "city": "São Paulo",
    "state": "SP",
    "zipCode": "01310-100",
}


@dataclass
class Phase:
    """One measured phase: where, how, and the orders it placed (id → POST wall time)."""

    target: str
    mode: str  # "rate" or "saturation"
    load: float  # orders/s offered, or concurrent clients
    placed: dict[str, float] = field(default_factory=dict)
    run: Run | None = None
    sagas: dict[str, tuple[str, float | None]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.load:g}/s" if self.mode == "rate" else f"saturation ({self.load:g} clients)"


class OrderPlacer:
    """Places one-item tok_visa orders of the bench products for pool users."""

    def __init__(self, client: httpx.AsyncClient, pool: UserPool, products: list[Product]) -> None:
        self._client = client
        self._pool = pool
        self._products = products
        self._rng = random.Random(7)  # noqa: S311 - product choice, not security

    async def place(self, base_url: str, phase: Phase) -> str:
        user = self._pool.take(ORDERS)
        if user is None:
            return "no-budget"
        await self._pool.auth.ensure_fresh(user)
        product = self._rng.choice(self._products)
        posted = time.time()
        response = await self._client.post(
            f"{base_url}/api/orders",
            headers={**user.bearer, "Idempotency-Key": str(uuid.uuid4())},
            json={
                "items": [{"productId": product.product_id, "quantity": 1}],
                "shippingAddress": ADDRESS,
                "paymentMethod": {"token": "tok_visa"},
            },
        )
        if response.status_code == 201:
            phase.placed[str(response.json()["orderId"])] = posted
        return str(response.status_code)


async def saga_states(
    connection: asyncpg.Connection, order_ids: list[str]
) -> dict[str, tuple[str, float | None]]:
    """State and end (epoch seconds) of the create-order saga of each order."""
    rows = await connection.fetch(
        "SELECT correlation_key, state, extract(epoch FROM finished_at)::float8 AS finished"
        " FROM saga_instances WHERE saga_type = 'create_order'"
        " AND correlation_key = ANY($1::text[])",
        order_ids,
    )
    return {row["correlation_key"]: (row["state"], row["finished"]) for row in rows}


async def wait_for_sagas(connection: asyncpg.Connection, phase: Phase, seconds: float) -> None:
    ids = list(phase.placed)

    async def ended() -> bool:
        phase.sagas = await saga_states(connection, ids)
        return all(phase.sagas.get(i, ("", None))[0] in TERMINAL for i in ids)

    await wait_until(ended, seconds=seconds, interval=0.5)


async def wait_delivered(connection: asyncpg.Connection, ids: list[str], seconds: float) -> bool:
    async def delivered() -> bool:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM orders_view WHERE order_id = ANY($1::uuid[])"
            " AND status IN ('DELIVERED', 'CANCELED')",
            ids,
        )
        return count == len(ids)

    return await wait_until(delivered, seconds=seconds, interval=0.5)


def phase_result(phase: Phase) -> dict[str, Any]:
    assert phase.run is not None
    run = phase.run
    created = run.count(["201"])
    completed = {i: s for i, s in phase.sagas.items() if s[0] == "COMPLETED" and s[1]}
    saga_latency = [completed[i][1] - phase.placed[i] for i in completed]  # type: ignore[operator]
    first_post = min(phase.placed.values(), default=None)
    last_end = max((s[1] for s in completed.values() if s[1]), default=None)
    saga_window = (last_end - first_post) if first_post and last_end else 0.0
    return {
        "target": phase.target,
        "mode": phase.mode,
        "load": phase.load,
        "elapsed_seconds": round(run.elapsed, 2),
        "posts": {
            "sent": len(run.samples),
            "dropped": run.dropped,
            "statuses": run.outcomes(),
            "created_per_second": rate(created, run.elapsed),
        },
        "post_latency_201": summarize_json(LatencySummary.of(run.latencies(["201"]))),
        "sagas": {
            "completed": len(completed),
            "compensated": sum(1 for s in phase.sagas.values() if s[0] == "COMPENSATED"),
            "unfinished": len(phase.placed)
            - sum(1 for s in phase.sagas.values() if s[0] in TERMINAL),
            "completed_per_second": rate(len(completed), saga_window),
            "post_to_end_latency": summarize_json(LatencySummary.of(saga_latency)),
        },
    }


async def run(ctx: Context) -> SuiteResult:
    rates = [5.0, 15.0] if not ctx.quick else [5.0]
    duration = ctx.pick(20.0, 6.0)
    clients = ctx.count(16, 8)
    targets = {"gateway": gateway_url(), "direct": service_url("orders")}
    limits = httpx.Limits(max_connections=300, max_keepalive_connections=100)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        gateway = httpx.AsyncClient(base_url=gateway_url(), timeout=30)
        async with gateway:
            await require_stack()
            ctx.log("orders: preparing users and products")
            pool = await UserPool.prepare(gateway, ctx.count(80, 30))
            products = await bench_products(gateway)
            placer = OrderPlacer(client, pool, products)
            connection = await asyncpg.connect(database_url("orders"))
            try:
                phases, accounting = await _measure(
                    ctx, placer, connection, targets, rates, duration, clients
                )
            finally:
                await connection.close()
                pool.save()
    ctx.log("orders: pgbench on a scratch database")
    cluster = Cluster.local()
    async with scratch_database(cluster) as database:
        bench = await pgbench(cluster, database, clients=8, seconds=int(ctx.pick(20, 5)))
    return _result(ctx, phases, accounting, bench.__dict__, rates, duration, clients)


async def _measure(
    ctx: Context,
    placer: OrderPlacer,
    connection: asyncpg.Connection,
    targets: dict[str, str],
    rates: list[float],
    duration: float,
    clients: int,
) -> tuple[list[Phase], dict[str, Any]]:
    idle_seconds = ctx.pick(10.0, 4.0)
    ctx.log(f"orders: idle commit rate over {idle_seconds:g} s")
    before = await commits()
    await asyncio.sleep(idle_seconds)
    idle_rate = (sum((await commits()).values()) - sum(before.values())) / idle_seconds

    phases: list[Phase] = []
    accounting: dict[str, Any] = {"idle_commits_per_second": round(idle_rate, 2)}
    plan = [(t, "rate", r) for r in rates for t in targets] + [
        (t, "saturation", float(clients)) for t in targets
    ]
    for index, (target, mode, load) in enumerate(plan):
        phase = Phase(target, mode, load)
        base = targets[target]
        ctx.log(f"orders: {target} {phase.label} for {duration:g} s")
        started = time.monotonic()
        counters = await commits() if index == 0 else None

        async def operation(_: int, phase: Phase = phase, base: str = base) -> str:
            return await placer.place(base, phase)

        if mode == "rate":
            phase.run = await fixed_rate(operation, rate=load, duration=duration)
        else:
            phase.run = await closed_loop(operation, concurrency=int(load), duration=duration)
        await wait_for_sagas(connection, phase, seconds=120)
        if counters is not None:
            # The first phase also pays for the whole life of its orders (to DELIVERED).
            await wait_delivered(connection, list(phase.placed), seconds=90)
            await asyncio.sleep(2.0)  # backends flush their counters at most once a second
            after = await commits()
            window = time.monotonic() - started
            total = sum(after.values()) - sum(counters.values())
            orders = len(phase.placed)
            accounting.update(
                {
                    "orders": orders,
                    "window_seconds": round(window, 1),
                    "commits_by_database": {db: after[db] - counters[db] for db in after},
                    "commits_per_order_raw": ratio(total, orders),
                    "commits_per_order": ratio(total - idle_rate * window, orders),
                }
            )
        phases.append(phase)
    return phases, accounting


def _phase_label(result: dict[str, Any]) -> str:
    load = "saturation" if result["mode"] == "saturation" else f"{result['load']:g}/s"
    return f"{result['target']} {load}"


def _result(
    ctx: Context,
    phases: list[Phase],
    accounting: dict[str, Any],
    bench: dict[str, Any],
    rates: list[float],
    duration: float,
    clients: int,
) -> SuiteResult:
    results = [phase_result(phase) for phase in phases]
    by_key = {(r["target"], r["mode"], r["load"]): r for r in results}
    rows = []
    for r in results:
        post, saga = r["post_latency_201"] or {}, r["sagas"]["post_to_end_latency"] or {}
        rows.append(
            [
                r["target"],
                f"{r['load']:g}/s" if r["mode"] == "rate" else f"saturation, {r['load']:g} clients",
                per_second(r["posts"]["created_per_second"]),
                ms(post.get("p50_ms")),
                ms(post.get("p95_ms")),
                ms(post.get("p99_ms")),
                per_second(r["sagas"]["completed_per_second"]),
                ms(saga.get("p50_ms")),
                ms(saga.get("p99_ms")),
                f"{r['sagas']['unfinished']}",
            ]
        )
    ratio_rows = []
    for mode, load in [("rate", r) for r in rates] + [("saturation", float(clients))]:
        via, direct = by_key.get(("gateway", mode, load)), by_key.get(("direct", mode, load))
        if not via or not direct:
            continue
        vp, dp = via["post_latency_201"] or {}, direct["post_latency_201"] or {}
        ratio_rows.append(
            [
                f"{load:g}/s" if mode == "rate" else "saturation",
                times(ratio(vp.get("p50_ms"), dp.get("p50_ms"))),
                times(ratio(vp.get("p99_ms"), dp.get("p99_ms"))),
                times(
                    ratio(via["posts"]["created_per_second"], direct["posts"]["created_per_second"])
                ),
                times(
                    ratio(
                        via["sagas"]["completed_per_second"],
                        direct["sagas"]["completed_per_second"],
                    )
                ),
            ]
        )
    per_order = accounting.get("commits_per_order")
    ceiling = ratio(bench["tps"], per_order)
    best = max(
        (r["sagas"]["completed_per_second"] or 0 for r in results if r["mode"] == "saturation"),
        default=None,
    )
    tables = [
        Table(
            "Orders placed and sagas completed (201s only; saga latency = POST sent → saga end)",
            [
                "target",
                "load",
                "POST 201/s",
                "POST p50 ms",
                "p95",
                "p99",
                "sagas/s",
                "saga p50 ms",
                "saga p99",
                "unfinished",
            ],
            rows,
        ),
        Table(
            "Gateway ÷ direct (latency ratio > 1: the gateway's cost)",
            ["load", "POST p50", "POST p99", "POST/s", "sagas/s"],
            ratio_rows,
        ),
        Table(
            "PostgreSQL ceiling (pgbench TPC-B-like, 8 clients, same cluster)",
            ["commits per order", "pgbench TPS", "ceiling orders/s", "best sagas/s", "share"],
            [
                [
                    f"{per_order}",
                    per_second(bench["tps"]),
                    per_second(ceiling),
                    per_second(best),
                    times(ratio(best, ceiling)),
                ]
            ],
        ),
    ]
    return SuiteResult(
        suite="orders",
        title=TITLE,
        parameters={
            "rates_per_second": rates,
            "phase_seconds": duration,
            "saturation_clients": clients,
            "order": "1 item, quantity 1, tok_visa, Idempotency-Key",
            "pgbench": {"clients": 8, "script": "tpcb-like", "mode": "prepared"},
            "quick": ctx.quick,
        },
        results={
            "phases": results,
            "commits": accounting,
            "pgbench": bench,
            "ceiling_orders_per_second": ceiling,
        },
        tables=tables,
        notes=[
            "Commits per order count every transaction of every service database from the"
            " first phase's start until its orders were DELIVERED, minus the idle rate"
            " measured just before; other traffic on the machine inflates it.",
            "The local cluster runs with synchronous_commit = off (infrastructure/local/"
            "postgres.sh), for the services and pgbench alike.",
            "Direct = the orders service's own port with the same bearer token (it verifies"
            " the JWT itself); the gateway adds JWT verification, the Redis rate-limit"
            " counter, correlation id and proxying.",
            *unexpected_outcomes(
                {_phase_label(r): r["posts"]["statuses"] for r in results}, expected=["201"]
            ),
        ],
    )
