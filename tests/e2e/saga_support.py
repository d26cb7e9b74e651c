"""Helpers shared by the saga end-to-end and resilience suites.

Everything goes through the gateway of the running local stack, except what a client
cannot see: row counts in the services' own databases, the services' processes (to
kill and restart them) and Kafka (to re-deliver records).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from generated import catalog
from tests.e2e.conftest import Account

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_DIR = Path(os.environ.get("MC_LOCAL_DIR", REPO_ROOT / ".local"))
POSTGRES = "postgresql://{db}:{db}@127.0.0.1:5432/{db}"

ADDRESS = {
    "street": "Av. Paulista, 1000",
    "city": "São Paulo",
    "state": "SP",
    "zipCode": "01310-100",
}
# The order statuses after which the saga has nothing left to do before shipping.
CONFIRMED_OR_BEYOND = {"CONFIRMED", "SHIPPED", "DELIVERED"}
SETTLED = CONFIRMED_OR_BEYOND | {"CANCELED"}
TERMINAL_SAGA_STATES = {"COMPLETED", "COMPENSATED"}
# Each user may send 100 requests a minute on order routes: poll well below that.
POLL_SECONDS = 1.0


async def poll(
    condition: Callable[[], Awaitable[bool]],
    *,
    seconds: float,
    what: str,
    interval: float = POLL_SECONDS,
) -> None:
    """``wait_for`` with a gentler interval, so polling stays under the rate limit."""
    deadline = time.monotonic() + seconds
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(interval)


def order_body(product_id: str, quantity: int = 1, token: str = "tok_visa") -> dict[str, Any]:
    return {
        "items": [{"productId": product_id, "quantity": quantity}],
        "shippingAddress": ADDRESS,
        "paymentMethod": {"token": token},
    }


async def new_product(
    gateway: httpx.AsyncClient, admin: Account, *, stock: int, price: str = "25.00"
) -> str:
    """A product of the test's own, so repeated runs never exhaust shared stock."""
    created = await gateway.post(
        "/api/inventory/products",
        json={
            "name": f"Saga {uuid.uuid4().hex[:8]}",
            "description": "saga e2e",
            "price": price,
            "availableQuantity": stock,
        },
        headers=admin.bearer,
    )
    assert created.status_code == 201, created.text
    return str(created.json()["productId"])


async def stock(gateway: httpx.AsyncClient, product_id: str) -> tuple[int, int]:
    """(availableQuantity, reservedQuantity) of a product."""
    response = await gateway.get(f"/api/inventory/products/{product_id}")
    assert response.status_code == 200, response.text
    body = response.json()
    return int(body["availableQuantity"]), int(body["reservedQuantity"])


async def place_order(
    gateway: httpx.AsyncClient, account: Account, product_id: str, token: str = "tok_visa"
) -> str:
    created = await gateway.post(
        "/api/orders", json=order_body(product_id, token=token), headers=account.bearer
    )
    assert created.status_code == 201, created.text
    assert created.json()["status"] == "PENDING"
    return str(created.json()["orderId"])


async def get_order(gateway: httpx.AsyncClient, account: Account, order_id: str) -> dict[str, Any]:
    response = await gateway.get(f"/api/orders/{order_id}", headers=account.bearer)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def get_saga(gateway: httpx.AsyncClient, account: Account, order_id: str) -> dict[str, Any]:
    response = await gateway.get(f"/api/orders/{order_id}/saga", headers=account.bearer)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def event_types(gateway: httpx.AsyncClient, account: Account, order_id: str) -> list[str]:
    response = await gateway.get(f"/api/orders/{order_id}/events", headers=account.bearer)
    assert response.status_code == 200, response.text
    events = response.json()["events"]
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1)), events
    return [str(e["type"]) for e in events]


async def wait_status(
    gateway: httpx.AsyncClient,
    account: Account,
    order_id: str,
    statuses: set[str],
    *,
    seconds: float,
) -> dict[str, Any]:
    """Poll the order until its status is one of ``statuses``; return it."""
    latest: dict[str, Any] = {}

    async def reached() -> bool:
        latest.update(await get_order(gateway, account, order_id))
        return latest["status"] in statuses

    try:
        await poll(reached, seconds=seconds, what=f"order {order_id} to reach {sorted(statuses)}")
    except AssertionError as error:
        raise AssertionError(f"{error}; last seen {latest}") from None
    return latest


async def wait_saga_terminal(
    gateway: httpx.AsyncClient, account: Account, order_id: str, *, seconds: float
) -> dict[str, Any]:
    latest: dict[str, Any] = {}

    async def terminal() -> bool:
        latest.clear()
        latest.update(await get_saga(gateway, account, order_id))
        return latest["state"] in TERMINAL_SAGA_STATES

    try:
        await poll(terminal, seconds=seconds, what=f"the saga of {order_id} to end")
    except AssertionError as error:
        raise AssertionError(f"{error}; last seen {latest}") from None
    return latest


async def admin_payment(gateway: httpx.AsyncClient, admin: Account, order_id: str) -> Any:
    response = await gateway.get(f"/api/payments/orders/{order_id}", headers=admin.bearer)
    assert response.status_code == 200, response.text
    return response.json()


async def db_count(database: str, sql: str, *args: Any) -> int:
    connection = await asyncpg.connect(POSTGRES.format(db=database))
    try:
        return int(await connection.fetchval(sql, *args))
    finally:
        await connection.close()


async def payment_rows(order_id: str) -> int:
    return await db_count(
        "payment", "SELECT count(*) FROM payments WHERE order_id = $1", uuid.UUID(order_id)
    )


async def shipment_rows(order_id: str) -> int:
    return await db_count(
        "shipping", "SELECT count(*) FROM shipments WHERE order_id = $1", uuid.UUID(order_id)
    )


# --- the local processes ---------------------------------------------------------------


def _services_module() -> Any:
    """``infrastructure/local/services.py`` (not a package), loaded once."""
    name = "mc_local_services"
    if name not in sys.modules:
        path = REPO_ROOT / "infrastructure/local/services.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def service_pid(name: str) -> int:
    return int((LOCAL_DIR / "run" / f"{name}.pid").read_text().strip())


def ready_url(name: str) -> str:
    return f"http://127.0.0.1:{catalog.SERVICES[name].http_port}/health/ready"


def is_ready(name: str) -> bool:
    try:
        with urllib.request.urlopen(ready_url(name), timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def kill_hard(name: str) -> int:
    """SIGKILL the service's process (no drain, no cleanup); return the dead pid."""
    pid = service_pid(name)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and "\nState:\tZ" not in _proc_status(pid):
        assert time.monotonic() < deadline, f"{name} (pid {pid}) survived SIGKILL"
        time.sleep(0.05)
    return pid


def _proc_status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return "\nState:\tZ"


async def restart(name: str, *, seconds: float = 120) -> None:
    """Start just ``name`` again (the local runner's own start) and wait until ready."""
    services = _services_module()
    (process,) = [p for p in services.processes() if p.name == name]
    await asyncio.to_thread(services.start, process)

    async def ready() -> bool:
        return await asyncio.to_thread(is_ready, name)

    await poll(ready, seconds=seconds, what=f"{name} to be ready again", interval=0.5)


def stop(name: str) -> None:
    """Stop just ``name`` with the local runner's own stop (SIGTERM, drain, then SIGKILL).

    Unlike ``MC_SERVICES=<name> services.py down`` this leaves the gateway running.
    Blocking: call it through ``asyncio.to_thread`` from a test.
    """
    services = _services_module()
    (process,) = [p for p in services.processes() if p.name == name]
    services.stop(process)


# --- Kafka re-delivery -------------------------------------------------------------------


def topics_of(prefixes: Iterable[str]) -> list[str]:
    return sorted(t.name for t in catalog.TOPICS if t.name.startswith(tuple(prefixes)))


async def records_of_order(bootstrap: str, topics: list[str], order_id: str) -> list[Any]:
    """Every record keyed by ``order_id`` on ``topics``, read from the beginning."""
    group = f"test-redelivery-{uuid.uuid4()}"
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        partitions = set()
        for _ in range(100):
            partitions = consumer.assignment()
            if partitions:
                break
            await consumer.getmany(timeout_ms=200)
        # Ends fixed now: everything of this (settled) order is already below them.
        ends = await consumer.end_offsets(list(partitions))
        await consumer.seek_to_beginning(*partitions)
        found: list[Any] = []
        deadline = time.monotonic() + 120
        while [tp for tp, end in ends.items() if await _behind(consumer, tp, end)]:
            assert time.monotonic() < deadline, "reading the topics took too long"
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batch.values():
                found.extend(r for r in records if (r.key or b"").decode() == order_id)
        return found
    finally:
        await consumer.stop()


async def _behind(consumer: AIOKafkaConsumer, tp: TopicPartition, end: int) -> bool:
    return bool(await consumer.position(tp) < end)


async def republish(bootstrap: str, records: list[Any]) -> dict[TopicPartition, int]:
    """Produce each record again (same key, value and headers); return the last offsets."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    last: dict[TopicPartition, int] = {}
    try:
        for record in records:
            sent = await producer.send_and_wait(
                record.topic,
                value=record.value,
                key=record.key,
                headers=list(record.headers),
                partition=record.partition,
            )
            tp = TopicPartition(sent.topic, sent.partition)
            last[tp] = max(last.get(tp, -1), sent.offset)
    finally:
        await producer.stop()
    return last


async def wait_consumed(
    bootstrap: str, produced: dict[TopicPartition, int], services: Iterable[str]
) -> None:
    """Wait until each running consumer of those topics has committed past them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        groups = {
            str(catalog.SERVICES[name].consumer_group): set(catalog.SERVICES[name].consumes)
            for name in services
            if catalog.SERVICES[name].consumer_group
        }

        async def committed() -> bool:
            for group, consumes in groups.items():
                offsets = await admin.list_consumer_group_offsets(group)
                for tp, offset in produced.items():
                    if tp.topic in consumes:
                        done = offsets.get(tp)
                        if done is None or done.offset <= offset:
                            return False
            return True

        await poll(committed, seconds=90, what="the services to consume the re-deliveries")
    finally:
        await admin.close()
