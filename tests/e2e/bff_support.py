"""Helpers of the BFF end-to-end suites: GraphQL through the gateway, and what the
services say about themselves (their Prometheus ``/metrics`` and access logs).

A client cannot see how many calls the BFF made downstream, so these read the
servers' side: every gRPC server counts its calls in ``grpc_server_handled_total``
and writes one access-log line per call carrying the correlation id, which the
gateway keeps from the client's ``X-Correlation-ID`` and the BFF forwards as gRPC
metadata.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from generated import catalog
from tests.e2e.conftest import LOG_DIR, Account
from tests.e2e.saga_support import ADDRESS, poll

#: The RPCs the BFF's reads use, per downstream (``handwritten/bff/adapters/grpc_clients.py``).
BFF_READ_METHODS: dict[str, tuple[str, ...]] = {
    "orders": (
        "/orders.v1.OrdersService/ListOrders",
        "/orders.v1.OrdersService/GetOrders",
        "/orders.v1.OrdersService/GetOrderSummary",
    ),
    "inventory": ("/inventory.v1.InventoryService/GetProducts",),
    "shipping": ("/shipping.v1.ShippingService/GetShipments",),
}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def graphql(
    gateway: httpx.AsyncClient,
    account: Account,
    query: str,
    *,
    path: str = "/graphql",
    variables: Mapping[str, Any] | None = None,
    correlation_id: str | None = None,
) -> dict[str, Any]:
    """POST ``query`` through the gateway as ``account``; the response body (HTTP 200)."""
    headers = dict(account.bearer)
    if correlation_id is not None:
        headers["X-Correlation-ID"] = correlation_id
    response = await gateway.post(
        path, json={"query": query, "variables": dict(variables or {})}, headers=headers
    )
    assert response.status_code == 200, response.text
    if correlation_id is not None:
        assert response.headers["x-correlation-id"] == correlation_id
    body: dict[str, Any] = response.json()
    return body


async def scrape(service: str) -> Samples:
    """Every sample of ``service``'s ``/metrics`` (read directly: not a public route)."""
    port = catalog.SERVICES[service].http_port
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str | Iterable[str]) -> float:
    """Sum of the ``name`` samples whose labels match (a label may list allowed values)."""
    wanted = {
        key: {value} if isinstance(value, str) else set(value) for key, value in labels.items()
    }
    found = 0.0
    for (sample, sample_labels), value in samples.items():
        if sample != name:
            continue
        present = dict(sample_labels)
        if all(present.get(key) in allowed for key, allowed in wanted.items()):
            found += value
    return found


async def handled_reads(service: str) -> float:
    """gRPC calls ``service`` handled so far on the methods the BFF reads with."""
    return total(
        await scrape(service),
        "grpc_server_handled_total",
        service=service,
        method=BFF_READ_METHODS[service],
    )


def new_correlation_id(purpose: str) -> str:
    return f"e2e-{purpose}-{uuid.uuid4().hex}"


@dataclass
class AccessLogs:
    """The services' access logs from a mark on: the RPCs served for one correlation id."""

    services: tuple[str, ...]
    _marks: dict[str, int] = field(default_factory=dict)

    def mark(self) -> None:
        """Remember where each log ends now; later reads look only past this point."""
        self._marks = {name: _size(name) for name in self.services}

    def rpcs(self, service: str, correlation_id: str) -> list[dict[str, Any]]:
        """The access-log entries of the RPCs ``service`` served for ``correlation_id``."""
        path = LOG_DIR / f"{service}.log"
        with path.open("rb") as log:
            log.seek(self._marks.get(service, 0))
            text = log.read().decode(errors="replace")
        found: list[dict[str, Any]] = []
        for line in text.splitlines():
            if correlation_id not in line:
                continue  # cheap filter before parsing
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # not a JSON line (e.g. a crash trace)
            if entry.get("event") == "rpc" and entry.get("correlation_id") == correlation_id:
                found.append(entry)
        return found

    async def wait_rpcs(self, correlation_id: str, *, seconds: float = 10) -> dict[str, int]:
        """RPCs per service for ``correlation_id``, once every service has logged one."""

        async def logged() -> bool:
            return all(self.rpcs(name, correlation_id) for name in self.services)

        await poll(logged, seconds=seconds, what=f"the RPCs of {correlation_id}", interval=0.1)
        return {name: len(self.rpcs(name, correlation_id)) for name in self.services}


def _size(service: str) -> int:
    path = LOG_DIR / f"{service}.log"
    return path.stat().st_size if path.exists() else 0


async def new_products(
    gateway: httpx.AsyncClient, admin: Account, prices: Iterable[str], *, stock: int = 1000
) -> list[dict[str, Any]]:
    """Products of the test's own (so names and stock are nobody else's)."""
    created: list[dict[str, Any]] = []
    for price in prices:
        response = await gateway.post(
            "/api/inventory/products",
            json={
                "name": f"BFF e2e {uuid.uuid4().hex[:8]}",
                "description": "bff e2e",
                "price": price,
                "availableQuantity": stock,
            },
            headers=admin.bearer,
        )
        assert response.status_code == 201, response.text
        created.append(response.json())
    return created


async def place_order(
    gateway: httpx.AsyncClient, account: Account, lines: Iterable[tuple[str, int]]
) -> str:
    """A paid (``tok_visa``) order of ``lines`` (product id, quantity); its id."""
    response = await gateway.post(
        "/api/orders",
        json={
            "items": [{"productId": product, "quantity": quantity} for product, quantity in lines],
            "shippingAddress": ADDRESS,
            "paymentMethod": {"token": "tok_visa"},
        },
        headers=account.bearer,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["orderId"])


SHIPPED_QUERY = "query Shipped($n: Int!) { orders(first: $n) { id shipping { trackingCode } } }"


async def wait_shipments(
    gateway: httpx.AsyncClient, account: Account, order_ids: Iterable[str], *, seconds: float = 120
) -> None:
    """Poll the BFF (gently: 100 requests a minute per user) until every order has a
    shipment."""
    expected = set(order_ids)
    missing: set[str] = set(expected)

    async def scheduled() -> bool:
        body = await graphql(gateway, account, SHIPPED_QUERY, variables={"n": len(expected)})
        orders = (body.get("data") or {}).get("orders") or []
        shipped = {o["id"] for o in orders if o["shipping"] and o["shipping"]["trackingCode"]}
        missing.clear()
        missing.update(expected - shipped)
        return not missing

    try:
        await poll(scheduled, seconds=seconds, what="a shipment for every order", interval=1.5)
    except AssertionError as error:
        raise AssertionError(f"{error}; still without one: {sorted(missing)}") from None


@dataclass
class BlackHole:
    """A TCP listener that accepts connections and never answers: a hung server.

    Counts the bytes clients sent, so a test can tell whether a call was attempted.
    """

    received: int = 0
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._writers.append(writer)
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                self.received += len(chunk)

    def close_connections(self) -> None:
        for writer in self._writers:
            writer.close()
        self._writers.clear()


@contextlib.asynccontextmanager
async def black_hole(port: int) -> AsyncIterator[BlackHole]:
    """Listen on 127.0.0.1:``port`` as a hung server until the block ends."""
    hole = BlackHole()
    server = await asyncio.start_server(hole.serve_connection, "127.0.0.1", port)
    try:
        yield hole
    finally:
        server.close()
        hole.close_connections()
        await server.wait_closed()
