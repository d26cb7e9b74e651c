"""The load generator: realistic traffic through the gateway, at a chosen arrival rate.

    python -m bench.load --rate 5 --duration 60            # make load RATE=5 DURATION=60
    python -m bench.load --rate 20 --duration 300 --mix browse=50,order=30,bff=20

An open model: customers arrive at ``--rate`` per second (Poisson), each running one
scenario drawn from ``--mix`` (browse, order, bff, my_orders, cancel, signup, login;
see ``bench.traffic``), whether or not earlier visitors were answered — as real
traffic does, so a slow system builds a backlog instead of slowing the generator
down. Orders use the bench's own well-stocked products and a payment token drawn
from ``--tokens`` (visa succeeds, declined fails, timeout makes the saga time out
after 30 s). After the run, the orders' outcomes are collected through the API for
up to ``--settle`` seconds.

Requests are spread over a pool of users so that the gateway's 100 requests/minute
per user never answers 429 to the generator itself (``--users``; by default sized
from the rate). The summary (JSON, ``--summary``) holds requests by endpoint with
status counts and latency percentiles, and how many orders were confirmed or
canceled (by reason and by payment token); a table goes to the console.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import random
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.accounts import DEFAULT_BUDGET, UserPool, bench_products
from bench.drivers import fixed_rate
from bench.stack import SCRATCH_DIR, gateway_url
from bench.stats import LatencySummary, rate, summarize_json
from bench.traffic import (
    DEFAULT_MIX,
    DEFAULT_TOKENS,
    PAYMENT_TOKENS,
    SCENARIOS,
    SETTLE_SUFFIX,
    NoBudgetError,
    PlacedOrder,
    Traffic,
    settle,
)

CONFIRMED_OR_BEYOND = ("CONFIRMED", "SHIPPED", "DELIVERED")
#: Requests per scenario run on the order routes and GraphQL (to size the user pool).
_ORDER_ROUTE_REQUESTS = {"order": 1.0, "cancel": 1.0, "my_orders": 2.0}
_GRAPHQL_REQUESTS = {"bff": 1.0}


@dataclass(frozen=True)
class LoadConfig:
    """One load run (see the module docstring)."""

    rate: float = 5.0
    duration: float = 60.0
    mix: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    tokens: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TOKENS))
    users: int | None = None
    settle_seconds: float = 45.0
    max_in_flight: int = 500
    seed: int | None = None
    gateway: str = field(default_factory=gateway_url)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.duration <= 0:
            raise ValueError("--rate and --duration must be positive")
        unknown = set(self.mix) - set(SCENARIOS)
        if unknown:
            raise ValueError(f"unknown scenarios {sorted(unknown)}; known: {sorted(SCENARIOS)}")
        if set(self.tokens) - set(PAYMENT_TOKENS):
            raise ValueError(f"payment tokens are {sorted(PAYMENT_TOKENS)}")
        if not any(weight > 0 for weight in self.mix.values()):
            raise ValueError("the mix needs a scenario with a positive weight")
        if not any(weight > 0 for weight in self.tokens.values()):
            raise ValueError("the token mix needs a token with a positive weight")

    def pool_size(self) -> int:
        """Users needed so that no user goes over the per-minute budget (with margin)."""
        if self.users is not None:
            return self.users
        total = sum(self.mix.values())

        def per_second(requests: Mapping[str, float]) -> float:
            return sum(self.rate * self.mix.get(s, 0) / total * n for s, n in requests.items())

        busiest = max(per_second(_ORDER_ROUTE_REQUESTS), per_second(_GRAPHQL_REQUESTS))
        return max(5, math.ceil(busiest * 60 / DEFAULT_BUDGET * 1.5))


def parse_weights(text: str) -> dict[str, float]:
    """``browse=30,order=25`` → ``{"browse": 30.0, "order": 25.0}``."""
    weights: dict[str, float] = {}
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"{part!r} is not name=weight")
        weights[name.strip()] = float(value)
        if weights[name.strip()] < 0:
            raise ValueError(f"{part!r}: weights are not negative")
    return weights


async def run_load(config: LoadConfig, *, log: Any = None) -> dict[str, Any]:
    """Prepare users and products, drive the traffic, settle orders; the summary."""
    say = log or (lambda message: None)
    rng = random.Random(config.seed)  # noqa: S311 - traffic shape, not security
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=config.gateway, timeout=30, limits=limits) as client:
        say(f"preparing {config.pool_size()} users and the bench products")
        pool = await UserPool.prepare(client, config.pool_size())
        products = await bench_products(client)
        traffic = Traffic(client, pool, products, tokens=config.tokens, rng=rng)
        names = [name for name, weight in config.mix.items() if weight > 0]
        weights = [config.mix[name] for name in names]
        runs: Counter[str] = Counter()
        failed: Counter[str] = Counter()
        skipped: Counter[str] = Counter()

        async def arrival(_: int) -> str:
            name = rng.choices(names, weights=weights)[0]
            runs[name] += 1
            try:
                await SCENARIOS[name](traffic)
            except NoBudgetError:
                skipped[name] += 1
                return "skipped"
            except Exception:
                failed[name] += 1
                raise
            return "ok"

        started_at = dt.datetime.now(dt.UTC)
        say(f"driving {config.rate}/s for {config.duration:g} s through {config.gateway}")
        run = await fixed_rate(
            arrival,
            rate=config.rate,
            duration=config.duration,
            max_in_flight=config.max_in_flight,
            poisson=True,
            rng=rng,
        )
        if traffic.orders:
            say(f"settling {len(traffic.orders)} orders (up to {config.settle_seconds:g} s)")
            await settle(traffic, seconds=config.settle_seconds)
        pool.save()
    return summarize(config, traffic, run.elapsed, run.dropped, runs, failed, skipped, started_at)


def summarize(
    config: LoadConfig,
    traffic: Traffic,
    elapsed: float,
    dropped: int,
    runs: Counter[str],
    failed: Counter[str],
    skipped: Counter[str],
    started_at: dt.datetime,
) -> dict[str, Any]:
    """The JSON summary of a run (see the module docstring)."""
    requests: dict[str, Any] = {}
    total = errors = limited = 0
    for endpoint in sorted(traffic.recorder.latencies):
        statuses = dict(sorted(traffic.recorder.statuses[endpoint].items()))
        count = sum(statuses.values())
        if not endpoint.endswith(SETTLE_SUFFIX):  # the traffic itself, not the follow-up
            total += count
            errors += sum(n for s, n in statuses.items() if s.startswith(("5", "error")))
            limited += statuses.get("429", 0)
        requests[endpoint] = {
            "count": count,
            "statuses": statuses,
            "latency_ms": summarize_json(LatencySummary.of(traffic.recorder.latencies[endpoint])),
        }
    return {
        "gateway": config.gateway,
        "started_at": started_at.isoformat(timespec="seconds"),
        "config": {
            "rate": config.rate,
            "duration": config.duration,
            "mix": dict(config.mix),
            "tokens": dict(config.tokens),
            "users": len(traffic.pool.users),
            "settle_seconds": config.settle_seconds,
            "seed": config.seed,
        },
        "elapsed_seconds": round(elapsed, 2),
        "arrivals": {"started": sum(runs.values()), "dropped": dropped},
        "scenarios": {
            name: {"runs": runs[name], "failed": failed[name], "skipped_no_budget": skipped[name]}
            for name in sorted(runs)
        },
        "requests": requests,
        "totals": {
            "requests": total,
            "errors": errors,
            "rate_limited": limited,
            "requests_per_second": rate(total, elapsed),
        },
        "orders": order_outcomes(traffic.orders),
    }


def order_outcomes(orders: Sequence[PlacedOrder]) -> dict[str, Any]:
    """How the placed orders ended, overall and by payment token.

    ``unexpected`` counts outcomes the payment token does not explain: a visa order
    canceled for another reason than the customer's request, or a declined or
    timed-out payment that was confirmed.
    """
    by_token: dict[str, Counter[str]] = {}
    reasons: Counter[str] = Counter()
    unexpected = 0
    for order in orders:
        outcome = _outcome(order)
        by_token.setdefault(order.token, Counter())[outcome] += 1
        if order.status == "CANCELED":
            reasons[order.cancel_reason or "unknown"] += 1
        if order.token == PAYMENT_TOKENS["visa"]:
            unexpected += outcome == "canceled" and order.cancel_reason != "CUSTOMER_REQUEST"
        else:
            unexpected += outcome == "confirmed"
    confirmed = sum(c["confirmed"] for c in by_token.values())
    canceled = sum(c["canceled"] for c in by_token.values())
    return {
        "placed": len(orders),
        "confirmed": confirmed,
        "canceled": canceled,
        "unsettled": len(orders) - confirmed - canceled,
        "canceled_by_reason": dict(sorted(reasons.items())),
        "by_token": {token: dict(sorted(c.items())) for token, c in sorted(by_token.items())},
        "unexpected": unexpected,
    }


def _outcome(order: PlacedOrder) -> str:
    if order.status in CONFIRMED_OR_BEYOND:
        return "confirmed"
    if order.status == "CANCELED":
        return "canceled"
    return "unsettled"


def render(summary: dict[str, Any]) -> str:
    """A console table of a summary."""
    lines = [
        f"{'endpoint':<36} {'count':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  statuses",
    ]
    for endpoint, data in summary["requests"].items():
        latency = data["latency_ms"] or {}
        statuses = " ".join(f"{s}:{n}" for s, n in data["statuses"].items())
        lines.append(
            f"{endpoint:<36} {data['count']:>7} {latency.get('p50_ms', 0):>8.1f}"
            f" {latency.get('p95_ms', 0):>8.1f} {latency.get('p99_ms', 0):>8.1f}  {statuses}"
        )
    totals, orders = summary["totals"], summary["orders"]
    lines += [
        "",
        f"requests {totals['requests']} ({totals['requests_per_second']}/s),"
        f" errors {totals['errors']}, rate limited {totals['rate_limited']},"
        f" arrivals dropped {summary['arrivals']['dropped']}",
        f"orders placed {orders['placed']}: confirmed {orders['confirmed']},"
        f" canceled {orders['canceled']} {orders['canceled_by_reason']},"
        f" unsettled {orders['unsettled']}, unexpected {orders['unexpected']}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rate", type=float, default=5.0, help="arrivals per second (5)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of traffic (60)")
    parser.add_argument("--mix", type=parse_weights, default=None, help="scenario weights")
    parser.add_argument("--tokens", type=parse_weights, default=None, help="payment token mix")
    parser.add_argument("--users", type=int, default=None, help="user pool size (from rate)")
    parser.add_argument("--settle", type=float, default=45.0, help="seconds to await sagas")
    parser.add_argument("--seed", type=int, default=None, help="random seed (repeatable mix)")
    parser.add_argument("--gateway", default=gateway_url(), help="gateway base URL")
    parser.add_argument("--summary", type=Path, default=None, help="summary JSON path")
    args = parser.parse_args(argv)
    try:
        config = LoadConfig(
            rate=args.rate,
            duration=args.duration,
            mix=args.mix or dict(DEFAULT_MIX),
            tokens=args.tokens or dict(DEFAULT_TOKENS),
            users=args.users,
            settle_seconds=args.settle,
            seed=args.seed,
            gateway=args.gateway,
        )
    except ValueError as exc:
        parser.error(str(exc))
    summary = asyncio.run(run_load(config, log=lambda m: print(f"[load] {m}", flush=True)))
    path = args.summary or SCRATCH_DIR / f"load-{summary['started_at'].replace(':', '')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(render(summary))
    print(f"[load] summary: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
