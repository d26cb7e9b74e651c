"""No lost events: orders are accepted while Kafka is down and their events arrive after.

Stops the real local broker (``infra.sh down kafka``), places orders through the
gateway, starts the broker again and checks that every orders.created event reaches
Kafka exactly once per event id, in per-order sequence.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections import defaultdict
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer

from generated.events.registry import ORDERS_CREATED
from handwritten.runtime.kafka import decode_record, event_consumer
from tests.e2e.conftest import Account, wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
GRACE_SECONDS = 3  # how long to keep reading for a duplicate behind the original
INFRA = ["bash", str(REPO_ROOT / "infrastructure/local/infra.sh")]
ORDERS = 5


def _kafka(action: str) -> None:
    subprocess.run([*INFRA, action, "kafka"], check=True, capture_output=True, timeout=180)


async def _a_product(gateway: httpx.AsyncClient, admin: Account) -> str:
    created = await gateway.post(
        "/api/inventory/products",
        json={
            "name": f"Outage {uuid.uuid4().hex[:8]}",
            "description": "",
            "price": "12.50",
            "availableQuantity": 100,
        },
        headers=admin.bearer,
    )
    assert created.status_code == 201, created.text
    return str(created.json()["productId"])


def _order_body(product_id: str) -> dict[str, object]:
    return {
        "items": [{"productId": product_id, "quantity": 1}],
        "shippingAddress": {
            "street": "Rua Augusta, 500",
            "city": "São Paulo",
            "state": "SP",
            "zipCode": "01305-000",
        },
        "paymentMethod": {"token": "tok_visa"},
    }


async def test_orders_placed_while_kafka_is_down_publish_once_it_returns(
    gateway: httpx.AsyncClient, admin: Account, account: Account, kafka_bootstrap: str
) -> None:
    product = await _a_product(gateway, admin)
    order_ids: list[str] = []
    _kafka("down")
    try:
        for _ in range(ORDERS):
            response = await gateway.post(
                "/api/orders", json=_order_body(product), headers=account.bearer
            )
            assert response.status_code == 201, response.text
            order_ids.append(response.json()["orderId"])
    finally:
        _kafka("up")

    seen: dict[str, list[str]] = defaultdict(list)
    group = f"test-outage-{uuid.uuid4()}"
    consumer: AIOKafkaConsumer = event_consumer(
        kafka_bootstrap, group_id=group, topics=[ORDERS_CREATED.topic], client_id=group
    )
    await consumer.start()
    try:

        async def collect() -> None:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    key = (record.key or b"").decode()
                    if key in order_ids:
                        seen[key].append(str(decode_record(record).headers.event_id))

        async def all_arrived() -> bool:
            await collect()
            return all(seen[order_id] for order_id in order_ids)

        await wait_for(all_arrived, seconds=90, what="the backlog to reach Kafka")
        # A duplicate would sit right behind the original: keep reading a moment.
        deadline = asyncio.get_running_loop().time() + GRACE_SECONDS
        while asyncio.get_running_loop().time() < deadline:
            await collect()
    finally:
        await consumer.stop()
    for order_id in order_ids:
        assert len(seen[order_id]) == len(set(seen[order_id])) == 1, seen[order_id]
