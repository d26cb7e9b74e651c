"""The load generator against the running stack: a few seconds of traffic, real orders."""

from __future__ import annotations

import json

import httpx

from bench.load import LoadConfig, render, run_load

MIX = {
    "order": 50.0,
    "browse": 20.0,
    "bff": 10.0,
    "my_orders": 10.0,
    "cancel": 3.0,
    "signup": 4.0,
    "login": 3.0,
}


async def test_a_short_load_run_places_and_confirms_orders(gateway: httpx.AsyncClient) -> None:
    config = LoadConfig(
        rate=4.0,
        duration=5.0,
        mix=MIX,
        tokens={"visa": 100.0},
        settle_seconds=60.0,
        seed=2026,
        gateway=str(gateway.base_url).rstrip("/"),
    )

    summary = await run_load(config)

    report = render(summary)  # the console table of the same numbers
    orders = summary["orders"]
    assert orders["placed"] > 0, report
    assert orders["confirmed"] > 0, report
    assert orders["unsettled"] == 0, report
    assert summary["totals"]["rate_limited"] == 0, report  # the pool spreads the users
    created = summary["requests"]["POST /api/orders"]
    assert created["statuses"].get("201") == orders["placed"], report
    assert created["latency_ms"]["p50_ms"] > 0
    assert "POST /api/orders" in report
    assert summary["arrivals"]["started"] > 0
    json.dumps(summary)  # the headless summary is plain JSON
