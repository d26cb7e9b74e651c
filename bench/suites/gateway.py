"""Gateway overhead: our docker-less gateway vs calling the service directly.

Two routes, each through :8000 and straight to the service:

- ``GET /api/orders?limit=1``: JWT (RS256, iss/aud) + per-user rate limiting
  (Redis counter) + correlation id + proxying; the orders service verifies the same
  token itself, so "direct" still pays for JWT verification once.
- ``GET /api/inventory/products/{id}``: a public route (correlation id + proxying
  only), to separate the proxy's cost from the plugins'.

Each at a fixed rate (open model) and at saturation (closed loop). Requests are
spread over a pool of users so that no user exceeds 100/minute: the gateway answers
200 with its rate-limit headers, never 429.
"""

from __future__ import annotations

from typing import Any

import httpx

from bench.accounts import ORDERS, UserPool, bench_products
from bench.context import Context, require_stack
from bench.drivers import Run, closed_loop, fixed_rate
from bench.results import SuiteResult, Table, ms, per_second, times, unexpected_outcomes
from bench.stack import gateway_url, service_url
from bench.stats import LatencySummary, rate, ratio, summarize_json

TITLE = "Gateway overhead: through :8000 vs direct to the service"
RATE_HEADER = "x-ratelimit-remaining-minute"


class Probe:
    """Sends one GET of a route and checks what the gateway added."""

    def __init__(self, client: httpx.AsyncClient, pool: UserPool | None, path: str) -> None:
        self.client = client
        self.pool = pool
        self.path = path
        self.rate_limit_headers = 0

    async def __call__(self, _: int) -> str:
        headers: dict[str, str] = {}
        if self.pool is not None:
            user = self.pool.take(ORDERS)
            if user is None:
                return "no-budget"
            await self.pool.auth.ensure_fresh(user)
            headers = user.bearer
        response = await self.client.get(self.path, headers=headers)
        if RATE_HEADER in response.headers:
            self.rate_limit_headers += 1
        return str(response.status_code)


def measurement(run: Run, probe: Probe) -> dict[str, Any]:
    return {
        "requests": len(run.samples),
        "dropped": run.dropped,
        "statuses": run.outcomes(),
        "ok_per_second": rate(run.count(["200"]), run.elapsed),
        "latency_200": summarize_json(LatencySummary.of(run.latencies(["200"]))),
        "rate_limit_headers": probe.rate_limit_headers,
    }


async def run(ctx: Context) -> SuiteResult:
    fixed = ctx.pick(20.0, 10.0)  # under the gateway's capacity even on a busy machine
    duration = ctx.pick(15.0, 5.0)
    clients = ctx.count(16, 8)
    results: dict[str, dict[str, Any]] = {}
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=gateway_url(), timeout=30, limits=limits) as gateway:
        await require_stack()
        ctx.log("gateway: preparing users")
        pool = await UserPool.prepare(gateway, ctx.count(120, 30))
        product = (await bench_products(gateway))[0]
        routes = {
            "orders (JWT + rate limit)": ("/api/orders?limit=1", "orders", pool),
            "inventory product (public)": (
                f"/api/inventory/products/{product.product_id}",
                "inventory",
                None,
            ),
        }
        try:
            for route, (path, service, users) in routes.items():
                async with httpx.AsyncClient(
                    base_url=service_url(service), timeout=30, limits=limits
                ) as direct:
                    targets = {"gateway": gateway, "direct": direct}
                    for load in ("rate", "saturation"):
                        for target, client in targets.items():
                            probe = Probe(client, users, path)
                            ctx.log(f"gateway: {route} {target} {load}")
                            if load == "rate":
                                driven = await fixed_rate(probe, rate=fixed, duration=duration)
                            else:
                                driven = await closed_loop(
                                    probe, concurrency=clients, duration=duration
                                )
                            results[f"{route} | {target} | {load}"] = measurement(driven, probe)
        finally:
            pool.save()
    return _result(ctx, results, list(routes), fixed, duration, clients)


def _result(
    ctx: Context,
    results: dict[str, dict[str, Any]],
    routes: list[str],
    fixed: float,
    duration: float,
    clients: int,
) -> SuiteResult:
    rows, ratio_rows = [], []
    for route in routes:
        for load in ("rate", "saturation"):
            label = f"{fixed:g}/s" if load == "rate" else f"saturation, {clients} clients"
            pair = {t: results[f"{route} | {t} | {load}"] for t in ("gateway", "direct")}
            for target, data in pair.items():
                latency = data["latency_200"] or {}
                rows.append(
                    [
                        route,
                        target,
                        label,
                        per_second(data["ok_per_second"]),
                        ms(latency.get("p50_ms")),
                        ms(latency.get("p95_ms")),
                        ms(latency.get("p99_ms")),
                        _other_statuses(data["statuses"]),
                    ]
                )
            via, direct = pair["gateway"]["latency_200"] or {}, pair["direct"]["latency_200"] or {}
            ratio_rows.append(
                [
                    route,
                    label,
                    ms(_minus(via.get("p50_ms"), direct.get("p50_ms"))),
                    times(ratio(via.get("p50_ms"), direct.get("p50_ms"))),
                    times(ratio(via.get("p99_ms"), direct.get("p99_ms"))),
                    times(ratio(pair["gateway"]["ok_per_second"], pair["direct"]["ok_per_second"])),
                ]
            )
    return SuiteResult(
        suite="gateway",
        title=TITLE,
        parameters={
            "fixed_rate_per_second": fixed,
            "phase_seconds": duration,
            "saturation_clients": clients,
            "quick": ctx.quick,
        },
        results=results,
        tables=[
            Table(
                "Requests answered 200 and their latency",
                ["route", "target", "load", "200/s", "p50 ms", "p95", "p99", "other statuses"],
                rows,
            ),
            Table(
                "Gateway ÷ direct",
                ["route", "load", "p50 added ms", "p50", "p99", "throughput"],
                ratio_rows,
            ),
        ],
        notes=[
            _rate_limit_note(results, routes[0]),
            *unexpected_outcomes(
                {label: data["statuses"] for label, data in results.items()}, expected=["200"]
            ),
        ],
    )


def _rate_limit_note(results: dict[str, dict[str, Any]], route: str) -> str:
    """Proof that rate limiting was on: its headers on the gateway's answers."""
    answered = seen = 0
    for load in ("rate", "saturation"):
        data = results[f"{route} | gateway | {load}"]
        answered += sum(n for status, n in data["statuses"].items() if status.isdigit())
        seen += data["rate_limit_headers"]
    return (
        f"Rate limiting was on: {seen} of the {answered} gateway answers on {route}"
        f" carried X-RateLimit-Remaining-Minute."
    )


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 3)


def _other_statuses(statuses: dict[str, int]) -> str:
    other = {k: v for k, v in statuses.items() if k != "200"}
    return ", ".join(f"{k}: {v}" for k, v in other.items()) or "none"
