"""Every process's ``/metrics`` exposes the platform's series, and one order moves them.

Scrapes each service (ports from the generated catalog) and the gateway's status
listener, places one order through the gateway, waits for it to be delivered, then
polls the scrapes until every expected series has moved. Other tests may run on the
same stack at the same time: counters are compared as "grew by at least", never
as exact values.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from generated import catalog
from tests.e2e.conftest import Account
from tests.e2e.saga_support import new_product, place_order, wait_status

GATEWAY_STATUS_URL = os.environ.get("GATEWAY_STATUS_URL", "http://127.0.0.1:8100")
INVENTORY = "/inventory.v1.InventoryService"
SAGA = "create_order"
#: How long the series may take to catch up after the order is delivered (the lag is
#: refreshed every 10 s, the outbox relay publishes the last events asynchronously).
SETTLE_SECONDS = 60.0

Labels = frozenset[tuple[str, str]]
Samples = dict[tuple[str, Labels], float]
Scrapes = dict[str, Samples]


def metrics_urls() -> dict[str, str]:
    urls = {
        name: f"http://127.0.0.1:{service.http_port}/metrics"
        for name, service in catalog.SERVICES.items()
    }
    urls["gateway"] = f"{GATEWAY_STATUS_URL}/metrics"
    return urls


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


async def scrape(client: httpx.AsyncClient) -> Scrapes:
    async def one(url: str) -> Samples:
        response = await client.get(url)
        assert response.status_code == 200, f"{url}: {response.status_code}"
        assert response.headers["content-type"].startswith("text/plain"), url
        return parse(response.text)

    urls = metrics_urls()
    scraped = await asyncio.gather(*(one(url) for url in urls.values()))
    return dict(zip(urls, scraped, strict=True))


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(value for (n, have), value in samples.items() if n == name and wanted <= have)


def series(samples: Samples, name: str, **labels: str) -> list[Mapping[str, str]]:
    """Label sets of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return [dict(have) for (n, have) in samples if n == name and wanted <= have]


@dataclass(frozen=True)
class Grew:
    """``name{labels}`` on ``process`` grew by at least ``by`` after the order."""

    process: str
    name: str
    labels: Mapping[str, str]
    by: float = 1

    def check(self, before: Scrapes, after: Scrapes) -> str | None:
        old = total(before[self.process], self.name, **self.labels)
        new = total(after[self.process], self.name, **self.labels)
        if new - old >= self.by:
            return None
        return f"{self.process}: {self.name}{dict(self.labels)} went {old} → {new}, not +{self.by}"


def order_expectations() -> list[Grew]:
    """The series one delivered order must move (see specs/sagas/create_order.saga.yaml)."""
    post_order = {"service": "orders", "method": "POST", "route": "/api/orders"}
    payment = {"group": str(catalog.SERVICES["payment"].consumer_group)}
    return [
        # HTTP RED of the route that took the order, at the gateway and in the service.
        Grew("gateway", "kong_http_requests_total", {"service": "orders", "code": "201"}),
        Grew("orders", "http_requests_total", {**post_order, "status": "201"}),
        Grew("orders", "http_request_duration_seconds_count", post_order),
        # gRPC: orders priced through inventory, then the saga reserved and committed.
        *(
            Grew(side, name, {"service": service, "method": f"{INVENTORY}/{method}", "code": "OK"})
            for method in ("CheckAvailability", "ReserveProducts", "CommitReservation")
            for side, name, service in (
                ("inventory", "grpc_server_handled_total", "inventory"),
                ("orders", "grpc_client_handled_total", "orders"),
            )
        ),
        Grew(
            "orders",
            "grpc_client_handling_seconds_count",
            {"service": "orders", "method": f"{INVENTORY}/ReserveProducts"},
        ),
        # Kafka: payment handled the command; shipping the confirmation.
        Grew(
            "payment",
            "consumer_events_total",
            {**payment, "topic": "payments.requested", "outcome": "handled"},
        ),
        Grew(
            "payment",
            "consumer_handler_duration_seconds_count",
            {**payment, "topic": "payments.requested"},
        ),
        Grew(
            "shipping",
            "consumer_events_total",
            {
                "group": str(catalog.SERVICES["shipping"].consumer_group),
                "topic": "orders.confirmed",
                "outcome": "handled",
            },
        ),
        # Outboxes: orders.created, payments.requested, orders.confirmed, orders.shipped
        # and orders.delivered from orders; payments.processed from payment.
        Grew("orders", "outbox_published_events_total", {"service": "orders"}, by=5),
        Grew("payment", "outbox_published_events_total", {"service": "payment"}),
        # The saga: started, every step succeeded, completed.
        Grew("orders", "saga_started_total", {"saga": SAGA}),
        Grew("orders", "saga_completed_total", {"saga": SAGA}),
        *(
            Grew(
                "orders",
                "saga_step_duration_seconds_count",
                {"saga": SAGA, "step": step, "phase": "action", "result": "succeeded"},
            )
            for step in (
                "reserve_inventory",
                "process_payment",
                "commit_reservation",
                "confirm_order",
            )
        ),
    ]


def missing_gauges(after: Scrapes) -> list[str]:
    """The gauges every process must expose, whatever the traffic."""
    missing = []
    for process, samples in after.items():
        if not series(samples, "process_start_time_seconds"):
            missing.append(f"{process}: process_start_time_seconds")
    partitions = {topic.name: topic.partitions for topic in catalog.TOPICS}
    for name, service in catalog.SERVICES.items():
        samples = after[name]
        if service.database:
            for state in ("idle", "in_use"):
                if not series(samples, "db_pool_connections", service=name, state=state):
                    missing.append(f"{name}: db_pool_connections state={state}")
            if total(samples, "db_pool_max_connections", service=name) <= 0:
                missing.append(f"{name}: db_pool_max_connections > 0")
        if service.consumer_group:
            # One replica runs locally: it owns every partition of what it consumes.
            for topic in service.consumes:
                reported = series(
                    samples, "consumer_lag_records", group=service.consumer_group, topic=topic
                )
                if len(reported) != partitions[topic]:
                    missing.append(
                        f"{name}: consumer_lag_records of {topic}: {len(reported)}"
                        f" of {partitions[topic]} partitions"
                    )
    for downstream in catalog.SERVICES["bff"].calls:
        state = series(after["bff"], "circuit_breaker_state", service="bff", breaker=downstream)
        if len(state) != 1:
            missing.append(f"bff: circuit_breaker_state of {downstream}")
    return missing


async def settle(
    client: httpx.AsyncClient, before: Scrapes, check: Callable[[Scrapes, Scrapes], list[str]]
) -> Scrapes:
    """Scrape until ``check`` finds nothing wrong; fail with what is still wrong."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        after = await scrape(client)
        wrong = check(before, after)
        if not wrong:
            return after
        if time.monotonic() > deadline:
            raise AssertionError("series did not move as expected:\n  " + "\n  ".join(wrong))
        await asyncio.sleep(1)


async def test_one_order_moves_the_series_of_every_process(
    gateway: httpx.AsyncClient, account: Account, admin: Account
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        before = await scrape(client)
        product = await new_product(gateway, admin, stock=5)
        order_id = await place_order(gateway, account, product)
        order = await wait_status(
            gateway, account, order_id, {"DELIVERED", "CANCELED"}, seconds=120
        )
        assert order["status"] == "DELIVERED", order

        expectations = order_expectations()

        def wrong(old: Scrapes, new: Scrapes) -> list[str]:
            moved = [grew.check(old, new) for grew in expectations]
            return [problem for problem in moved if problem] + missing_gauges(new)

        after = await settle(client, before, wrong)

    # Latency histograms are cumulative: the +Inf bucket counts every observation.
    post_order = {"service": "orders", "method": "POST", "route": "/api/orders"}
    assert total(
        after["orders"], "http_request_duration_seconds_bucket", le="+Inf", **post_order
    ) == (total(after["orders"], "http_request_duration_seconds_count", **post_order))
    # The lag of a group is never negative.
    assert all(
        value >= 0
        for (name, _), value in after["payment"].items()
        if name == "consumer_lag_records"
    )
