"""The shipping app in-process against the real ``shipping`` PostgreSQL database and
the real Kafka broker of the local infrastructure.

Isolation from a running local stack (and from other test runs):

- each app gets a throw-away schema of the shipping database (``search_path`` in
  the DSN), so its tables, outbox and inbox are its own and dropped afterwards;
- each app consumes in a unique consumer group whose offsets are committed at the
  topics' ends before it starts, so it handles the orders produced by the tests
  and never replays the topics' history (which would publish shipping events
  about real orders);
- the events a test asserts on are picked by the shipment id found in its own
  app's schema: any other shipping instance consuming the same orders.* records
  publishes its own shipments, under other ids.

orders.* records are produced with the runtime's ``KafkaEventProducer``; the
shipping.* records are read back by a session-wide collector (a fresh consumer
group, also started at the ends). Bearer tokens are signed with a test RSA key that
a tiny local JWKS server publishes, so the runtime's real verification runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from grpclib.client import Channel

from generated import catalog
from generated.events.registry import (
    EVENTS_BY_TOPIC,
    ORDERS_CANCELED,
    ORDERS_CONFIRMED,
    SHIPPING_SCHEDULED,
    SHIPPING_UPDATED,
    Event,
)
from generated.grpc.shipping.v1 import ShippingServiceStub
from generated.models.events import OrderCanceledPayload, OrderConfirmedPayload
from generated.services.shipping.events import CONSUMES
from handwritten.runtime.events import EventRecord, InvalidEventError, encode, new_headers
from handwritten.runtime.kafka import KafkaEventProducer, decode_record
from handwritten.runtime.settings import local_database_url
from handwritten.shipping.app import ShippingRuntime, build_app
from handwritten.shipping.settings import ShippingSettings
from tests.support.jwks import jwks_server

PROBLEM_JSON = "application/problem+json"
DEADLINE = 30.0
SHIPPING_URL = local_database_url("shipping")


# --------------------------------------------------------------------------- waiting


async def wait_for(
    condition: Callable[[], Awaitable[bool]], *, within: float = DEADLINE, what: str
) -> None:
    """Poll ``condition`` until true; fail the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


# --------------------------------------------------------------------------- tokens


@dataclass
class TokenIssuer:
    """Signs RS256 access tokens the way the auth service does (kid, iss, aud…)."""

    key: rsa.RSAPrivateKey
    kid: str

    def token(
        self,
        user_id: uuid.UUID | str | None = None,
        *,
        roles: Sequence[str] = ("customer",),
        key: rsa.RSAPrivateKey | None = None,
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": catalog.JWT_ISSUER,
            "aud": catalog.JWT_AUDIENCE,
            "sub": str(user_id or uuid.uuid4()),
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": str(uuid.uuid4()),
            "roles": list(roles),
        }
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": self.kid})

    def headers(self, user_id: uuid.UUID | str | None = None, **options: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id, **options)}"}

    def admin_headers(self) -> dict[str, str]:
        return self.headers(roles=["admin", "customer"])


@pytest.fixture(scope="session")
def issuer() -> TokenIssuer:
    return TokenIssuer(
        rsa.generate_private_key(public_exponent=65537, key_size=2048), kid="shipping-test"
    )


@pytest.fixture(scope="session")
def jwks_url(issuer: TokenIssuer) -> Iterator[str]:
    """A local JWKS endpoint publishing the issuer's public key."""
    with jwks_server(issuer) as url:
        yield url


# --------------------------------------------------------------------------- kafka


async def start_group_at_end(bootstrap: str, group: str, topics: Iterable[str]) -> None:
    """Commit offsets at the current end of ``topics`` for a new consumer ``group``."""
    partitions = [
        TopicPartition(topic, partition)
        for topic in topics
        for partition in range(EVENTS_BY_TOPIC[topic].partitions)
    ]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.commit(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


@dataclass
class Collector:
    """Every shipping.* event published since the session started."""

    events: list[Event[Any]] = field(default_factory=list)

    def of_shipment(self, shipment_id: uuid.UUID, topic: str | None = None) -> list[Event[Any]]:
        return [
            event
            for event in self.events
            if event.payload.shipment_id == shipment_id
            and (topic is None or event.spec.topic == topic)
        ]

    def of_order(self, order_id: uuid.UUID) -> list[Event[Any]]:
        return [event for event in self.events if event.payload.order_id == order_id]


@pytest.fixture(scope="session")
async def collector(kafka_bootstrap: str) -> AsyncIterator[Collector]:
    topics = [SHIPPING_SCHEDULED.topic, SHIPPING_UPDATED.topic]
    group = f"shipping-test-collector-{uuid.uuid4().hex[:8]}"
    await start_group_at_end(kafka_bootstrap, group, topics)
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    collected = Collector()

    async def collect() -> None:
        async for record in consumer:
            # Another producer's broken record is not this suite's business.
            with contextlib.suppress(InvalidEventError):
                collected.events.append(decode_record(record))

    task = asyncio.create_task(collect())
    try:
        yield collected
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await consumer.stop()


@dataclass
class Orders:
    """Plays the orders service on Kafka: orders.confirmed / orders.canceled records."""

    producer: KafkaEventProducer

    async def send(self, record: EventRecord) -> uuid.UUID:
        """Publish a record (again, for a redelivery); its event id."""
        await self.producer.send_record(record)
        return event_id_of(record)

    @staticmethod
    def confirmed(
        order_id: uuid.UUID,
        user_id: uuid.UUID,
        *,
        city: str = "Campinas",
        state: str = "SP",
        correlation_id: str | None = None,
    ) -> EventRecord:
        payload = OrderConfirmedPayload.model_validate(
            {
                "orderId": str(order_id),
                "userId": str(user_id),
                "paymentId": str(uuid.uuid4()),
                "items": [
                    {
                        "productId": str(uuid.uuid4()),
                        "productName": "Test product",
                        "quantity": 2,
                        "unitPrice": "10.50",
                    }
                ],
                "totalAmount": "21.00",
                "currency": "BRL",
                "shippingAddress": {
                    "street": "Rua das Flores, 10",
                    "city": city,
                    "state": state,
                    "zipCode": "13010-000",
                },
                "confirmedAt": dt.datetime.now(dt.UTC).isoformat(),
            }
        )
        headers = new_headers(
            ORDERS_CONFIRMED,
            producer="orders",
            correlation_id=correlation_id or f"test-{uuid.uuid4().hex[:12]}",
        )
        return encode(ORDERS_CONFIRMED, payload, headers)

    @staticmethod
    def canceled(
        order_id: uuid.UUID, user_id: uuid.UUID, *, reason: str = "CUSTOMER_REQUEST"
    ) -> EventRecord:
        payload = OrderCanceledPayload.model_validate(
            {
                "orderId": str(order_id),
                "userId": str(user_id),
                "reason": reason,
                "totalAmount": "21.00",
                "currency": "BRL",
                "canceledAt": dt.datetime.now(dt.UTC).isoformat(),
            }
        )
        headers = new_headers(
            ORDERS_CANCELED, producer="orders", correlation_id=f"test-{uuid.uuid4().hex[:12]}"
        )
        return encode(ORDERS_CANCELED, payload, headers)


def event_id_of(record: EventRecord) -> uuid.UUID:
    return uuid.UUID(dict(record.headers)["event-id"].decode())


def header_of(record: EventRecord, name: str) -> str:
    return dict(record.headers)[name].decode()


@pytest.fixture(scope="session")
async def orders(kafka_bootstrap: str) -> AsyncIterator[Orders]:
    producer = KafkaEventProducer(kafka_bootstrap, service="orders")
    await producer.start()
    try:
        yield Orders(producer)
    finally:
        await producer.stop()


# --------------------------------------------------------------------------- service


@dataclass
class Shipping:
    """One started shipping app, its own schema, and the ways to talk to it."""

    app: FastAPI
    http: httpx.AsyncClient
    stub: ShippingServiceStub
    db: asyncpg.Pool
    settings: ShippingSettings

    @property
    def runtime(self) -> ShippingRuntime:
        runtime = self.app.state.shipping
        assert isinstance(runtime, ShippingRuntime)
        return runtime

    async def shipment_row(self, order_id: uuid.UUID) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self.db.fetchrow(
            "SELECT * FROM shipments WHERE order_id = $1", order_id
        )
        return row

    async def shipment_id(self, order_id: uuid.UUID) -> uuid.UUID:
        """The id of the order's shipment, once this app has scheduled it."""

        async def scheduled() -> bool:
            return await self.shipment_row(order_id) is not None

        await wait_for(scheduled, what=f"a shipment of order {order_id}")
        row = await self.shipment_row(order_id)
        assert row is not None
        shipment_id: uuid.UUID = row["shipment_id"]
        return shipment_id

    async def status(self, order_id: uuid.UUID) -> str | None:
        value: str | None = await self.db.fetchval(
            "SELECT status FROM shipments WHERE order_id = $1", order_id
        )
        return value

    async def processed(self, *event_ids: uuid.UUID) -> None:
        """Wait until this app's consumer has handled (committed) every event id."""

        async def handled() -> bool:
            count: int = await self.db.fetchval(
                "SELECT count(*) FROM processed_events WHERE consumer = $1"
                " AND event_id = ANY($2::uuid[])",
                self.settings.shipping_consumer_group,
                list(event_ids),
            )
            return count == len(set(event_ids))

        await wait_for(handled, what=f"the consumer to handle {event_ids}")

    async def outbox(self, order_id: uuid.UUID) -> list[asyncpg.Record]:
        """This app's outbox rows about ``order_id``, oldest first."""
        rows: list[asyncpg.Record] = await self.db.fetch(
            "SELECT topic, headers, value, published_at FROM outbox WHERE key = $1 ORDER BY id",
            str(order_id),
        )
        return rows

    async def published(self, order_id: uuid.UUID) -> None:
        """Wait until the relay has published every outbox row about ``order_id``."""

        async def done() -> bool:
            rows = await self.outbox(order_id)
            return bool(rows) and all(row["published_at"] is not None for row in rows)

        await wait_for(done, what=f"the outbox rows of order {order_id} to be published")


@asynccontextmanager
async def throwaway_schema(prefix: str) -> AsyncIterator[str]:
    """A fresh schema of the shipping database; dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(SHIPPING_URL)
    try:
        await admin.execute(f"CREATE SCHEMA {name}")
        try:
            yield name
        finally:
            await admin.execute(f"DROP SCHEMA {name} CASCADE")
    finally:
        await admin.close()


@asynccontextmanager
async def running(
    *, jwks_url: str, kafka_bootstrap: str, prefix: str, **overrides: Any
) -> AsyncIterator[Shipping]:
    """Start an app on its own schema and consumer group (lifespan: pool, migrations,
    consumer, progression job, outbox relay, gRPC) and clients to it."""
    async with throwaway_schema(prefix) as schema:
        url = f"{SHIPPING_URL}?search_path={schema}"
        group = f"shipping-test-{uuid.uuid4().hex[:8]}"
        await start_group_at_end(kafka_bootstrap, group, [spec.topic for spec in CONSUMES])
        values: dict[str, Any] = {
            "database_url": url,
            "grpc_port": 0,
            "jwks_url": jwks_url,
            "kafka_bootstrap_servers": kafka_bootstrap,
            "shipping_consumer_group": group,
            "shutdown_grace_seconds": 2,
            "db_pool_max": 5,
        }
        settings = ShippingSettings(**{**values, **overrides})
        app = build_app(settings)
        async with app.router.lifespan_context(app):
            runtime = app.state.shipping
            assert runtime.grpc is not None
            channel = Channel("127.0.0.1", runtime.grpc.port)
            db = await asyncpg.create_pool(url, min_size=1, max_size=3)
            assert db is not None
            try:
                async with httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://shipping.test"
                ) as http:
                    yield Shipping(
                        app, http, ShippingServiceStub(channel, timeout=10), db, settings
                    )
            finally:
                channel.close()
                await db.close()


@pytest.fixture(scope="session")
async def shipping(jwks_url: str, kafka_bootstrap: str) -> AsyncIterator[Shipping]:
    """An app whose shipments stay SCHEDULED for the whole session (an hour's step)."""
    async with running(
        jwks_url=jwks_url,
        kafka_bootstrap=kafka_bootstrap,
        prefix="shipping_test",
        shipping_step_seconds=3600,
    ) as app:
        yield app


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert "Traceback" not in response.text
    return body
