"""The analytics app in-process against the real Kafka broker and Redis of the local
infrastructure, on real ClickHouse (chdb, in the test process's temporary directory).

Isolation from a running local stack (and from other test runs):

- each app has a ClickHouse database of its own (and so its own Redis cache
  namespace, which is keyed by database);
- each app consumes in a unique consumer group whose offsets are committed at the
  topics' ends before it starts, so it applies the events the tests produce and
  whatever else is produced meanwhile, never the topics' history;
- the events a test asserts on fall on a unique UTC day picked at random between
  2031 and 2148, so nothing else (another run's events replayed by a rebuild, the
  local stack's orders of today) lands on it.

Events are produced onto the real topics with the runtime's ``KafkaEventProducer``
(valid AsyncAPI payloads and headers, see ``tests.unit.analytics.factory``). Bearer
tokens are signed with a test RSA key that a local JWKS server publishes, so the
runtime's real verification runs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI
from grpclib.client import Channel

from generated.events.registry import EVENTS_BY_TOPIC, Event
from generated.grpc.analytics.v1 import AnalyticsServiceStub
from handwritten.analytics.adapters.clickhouse import ChdbClickHouse
from handwritten.analytics.app import TOPICS, AnalyticsRuntime, build_app
from handwritten.analytics.settings import AnalyticsSettings
from handwritten.runtime.events import EventRecord
from handwritten.runtime.kafka import KafkaEventProducer
from tests.support.jwks import TokenIssuer, jwks_server
from tests.unit.analytics.engine import chdb_path, new_database
from tests.unit.analytics.factory import record

DEADLINE = 60.0
PROBLEM_JSON = "application/problem+json"
#: ClickHouse's ``Date`` ends on 2149-06-06: test days stay well inside.
_FIRST_TEST_DAY = dt.date(2031, 1, 1)
_TEST_DAYS = (dt.date(2148, 12, 31) - _FIRST_TEST_DAY).days


def unique_day() -> dt.date:
    """A UTC day no other run is likely to use (one in ~43,000)."""
    return _FIRST_TEST_DAY + dt.timedelta(days=random.SystemRandom().randrange(_TEST_DAYS))


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


@pytest.fixture(scope="session")
def issuer() -> TokenIssuer:
    return TokenIssuer(kid="analytics-test")


@pytest.fixture(scope="session")
def jwks_url(issuer: TokenIssuer) -> Iterator[str]:
    with jwks_server(issuer) as url:
        yield url


# --------------------------------------------------------------------------- kafka


def _partitions(topics: Iterable[str]) -> list[TopicPartition]:
    return [
        TopicPartition(topic, partition)
        for topic in topics
        for partition in range(EVENTS_BY_TOPIC[topic].partitions)
    ]


async def start_group_at_end(bootstrap: str, group: str, topics: Iterable[str]) -> None:
    """Commit offsets at the current end of ``topics`` for a new consumer ``group``."""
    partitions = _partitions(topics)
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
class Producer:
    """Publishes events onto the real topics, and tells when a group has read them."""

    producer: KafkaEventProducer
    bootstrap: str

    async def publish(self, events: Sequence[Event[Any] | EventRecord]) -> None:
        for item in events:
            await self.producer.send_record(item if isinstance(item, EventRecord) else record(item))

    async def consumed(self, group: str) -> None:
        """Wait until ``group`` has committed everything published so far."""
        partitions = _partitions(TOPICS)
        probe = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=group, enable_auto_commit=False
        )
        await probe.start()
        try:
            end = await probe.end_offsets(partitions)

            async def caught_up() -> bool:
                for partition in partitions:
                    committed = await probe.committed(partition)
                    if (committed or 0) < end[partition]:
                        return False
                return True

            await wait_for(caught_up, what=f"consumer group {group} to commit {end}")
        finally:
            await probe.stop()


@pytest.fixture(scope="session")
async def producer(kafka_bootstrap: str) -> AsyncIterator[Producer]:
    kafka = KafkaEventProducer(kafka_bootstrap, service="orders")
    await kafka.start()
    try:
        yield Producer(kafka, kafka_bootstrap)
    finally:
        await kafka.stop()


# --------------------------------------------------------------------------- service


@dataclass
class Analytics:
    """One started analytics app and the ways to talk to it."""

    app: FastAPI
    http: httpx.AsyncClient
    stub: AnalyticsServiceStub
    settings: AnalyticsSettings

    @property
    def runtime(self) -> AnalyticsRuntime:
        runtime = self.app.state.analytics
        assert isinstance(runtime, AnalyticsRuntime)
        return runtime

    @property
    def group(self) -> str:
        return self.settings.analytics_consumer_group


@pytest.fixture(scope="session")
async def chdb_engine() -> AsyncIterator[ChdbClickHouse]:
    """Keeps the process's chdb engine open between apps (opening takes a second)."""
    engine = await ChdbClickHouse.open(chdb_path())
    try:
        yield engine
    finally:
        await engine.close()


@asynccontextmanager
async def running(
    *, jwks_url: str, kafka_bootstrap: str, **overrides: Any
) -> AsyncIterator[Analytics]:
    """Start an app on its own database and consumer group (lifespan: ClickHouse,
    Redis, consumer, gRPC) and clients to it."""
    group = f"analytics-test-{uuid.uuid4().hex[:8]}"
    await start_group_at_end(kafka_bootstrap, group, TOPICS)
    values: dict[str, Any] = {
        "analytics_chdb_path": chdb_path(),
        "analytics_database": new_database("analytics_test"),
        "analytics_consumer_group": group,
        "analytics_cache_ttl_seconds": 60,
        "grpc_port": 0,
        "jwks_url": jwks_url,
        "kafka_bootstrap_servers": kafka_bootstrap,
        "shutdown_grace_seconds": 2,
    }
    settings = AnalyticsSettings(**{**values, **overrides})
    app = build_app(settings)
    async with app.router.lifespan_context(app):
        runtime = app.state.analytics
        assert runtime.grpc is not None
        channel = Channel("127.0.0.1", runtime.grpc.port)
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://analytics.test"
            ) as http:
                yield Analytics(app, http, AnalyticsServiceStub(channel, timeout=10), settings)
        finally:
            channel.close()
            assert runtime.store is not None
            await runtime.store._ch.command(
                f"DROP DATABASE IF EXISTS {settings.analytics_database}"
            )


@pytest.fixture(scope="session")
async def analytics(
    jwks_url: str, kafka_bootstrap: str, chdb_engine: ChdbClickHouse
) -> AsyncIterator[Analytics]:
    async with running(jwks_url=jwks_url, kafka_bootstrap=kafka_bootstrap) as app:
        yield app


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert "Traceback" not in response.text
    return body
