"""Wiring of the analytics service: resources, lifespan, the FastAPI app, CLI tasks.

One process serves REST (uvicorn) and gRPC (grpclib, on GRPC_PORT) and runs the
consumer in the background. ClickHouse is opened once per process (``open_store``):
a server through clickhouse-connect when CLICKHOUSE_URL is set, else embedded chdb.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import APIRouter, Depends, FastAPI
from grpclib.health.service import Health
from redis.asyncio import Redis

from generated.events.registry import Event
from generated.services.analytics.api import build_router
from generated.services.analytics.events import CONSUMES, SERVICE_NAME
from handwritten.analytics.adapters.cache import NoResultCache, RedisResultCache
from handwritten.analytics.adapters.clickhouse import open_clickhouse
from handwritten.analytics.adapters.store import ClickHouseAnalyticsStore
from handwritten.analytics.entrypoints.consumer import (
    AnalyticsConsumer,
    ApplyBatch,
    ConsumerSupervisor,
)
from handwritten.analytics.entrypoints.grpc import AnalyticsGrpcService
from handwritten.analytics.entrypoints.rebuild import RebuildResult, rebuild
from handwritten.analytics.entrypoints.rest import AnalyticsApi, RestComponents
from handwritten.analytics.service_layer.ingest import IngestResult, ingest
from handwritten.analytics.service_layer.ports import AnalyticsStore, ResultCache
from handwritten.analytics.service_layer.queries import AnalyticsQueries, CachedReader
from handwritten.analytics.settings import AnalyticsSettings
from handwritten.runtime.auth import RequestAuthenticator
from handwritten.runtime.backoff import Backoff
from handwritten.runtime.consumer import KafkaDeadLetters
from handwritten.runtime.grpc_server import GrpcServer
from handwritten.runtime.health import Probe
from handwritten.runtime.http import create_app
from handwritten.runtime.jwt import JwksClient
from handwritten.runtime.lifecycle import stop_on_exit
from handwritten.runtime.logging import get_logger

log = get_logger(__name__)

TOPICS = tuple(spec.topic for spec in CONSUMES)


@dataclass
class AnalyticsRuntime:
    """Resources opened by the lifespan (``app.state.analytics``); ``None`` before start."""

    store: ClickHouseAnalyticsStore | None = None
    reader: CachedReader | None = None
    cache: ResultCache | None = None
    grpc: GrpcServer | None = None
    consumer: ConsumerSupervisor | None = None


async def open_store(settings: AnalyticsSettings) -> ClickHouseAnalyticsStore:
    clickhouse = await open_clickhouse(settings.clickhouse_url, settings.analytics_chdb_path)
    return ClickHouseAnalyticsStore(clickhouse, database=settings.analytics_database)


def result_cache(settings: AnalyticsSettings, redis: Redis | None) -> ResultCache:
    if redis is None or settings.analytics_cache_ttl_seconds == 0:
        return NoResultCache()
    return RedisResultCache(
        redis,
        namespace=settings.analytics_database,
        ttl_seconds=settings.analytics_cache_ttl_seconds,
    )


def apply_batch(store: AnalyticsStore, cache: ResultCache) -> ApplyBatch:
    """Ingest a batch; once written, cached reports are stale."""

    async def apply(events: Sequence[Event[Any]]) -> IngestResult:
        result = await ingest(store, events)
        if result.applied:
            await cache.invalidate()
        return result

    return apply


def build_app(settings: AnalyticsSettings | None = None) -> FastAPI:
    """The analytics service app; resources open and close with its lifespan."""
    settings = settings or AnalyticsSettings()
    api = AnalyticsApi()
    runtime = AnalyticsRuntime()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            store = runtime.store = await open_store(settings)
            stack.push_async_callback(store.close)
            if settings.migrate_on_start:
                await store.migrate()

            http = httpx.AsyncClient()
            stack.push_async_callback(http.aclose)
            authenticator = RequestAuthenticator(
                JwksClient(settings.jwks_url, http),
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
            )
            redis: Redis | None = None
            if settings.analytics_cache_ttl_seconds > 0:
                # Short timeouts: a slow Redis must degrade to cache misses, not stall reports.
                redis = Redis.from_url(
                    settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
                )
                stack.push_async_callback(redis.aclose)
            cache = runtime.cache = result_cache(settings, redis)
            reader = runtime.reader = CachedReader(store, cache)
            queries = AnalyticsQueries(reader)

            if settings.consumer_enabled:
                apply = apply_batch(store, cache)
                consumer = runtime.consumer = ConsumerSupervisor(
                    lambda: AnalyticsConsumer(
                        apply,
                        bootstrap_servers=settings.kafka_bootstrap_servers,
                        group_id=settings.analytics_consumer_group,
                        topics=TOPICS,
                        dead_letters=KafkaDeadLetters(
                            settings.kafka_bootstrap_servers, service=SERVICE_NAME
                        ),
                        batch_size=settings.analytics_batch_size,
                    ),
                    backoff=Backoff(initial=1.0, maximum=30.0),
                )
                stop_on_exit(stack, "consumer", asyncio.create_task(consumer.run()), consumer.stop)

            grpc = runtime.grpc = GrpcServer(
                [AnalyticsGrpcService(queries), Health()], service=SERVICE_NAME
            )
            await grpc.start(settings.grpc_host, settings.grpc_port)
            # Registered last, so it runs first on shutdown: calls in flight finish
            # while ClickHouse and the consumer are still there.
            stack.push_async_callback(grpc.stop, grace_seconds=settings.shutdown_grace_seconds)

            api.attach(RestComponents(queries=queries, authenticator=authenticator))
            stack.callback(api.attach, None)
            yield
        runtime.store = runtime.reader = runtime.cache = None
        runtime.grpc = runtime.consumer = None

    def probes(_: FastAPI) -> dict[str, Probe]:
        # Only ClickHouse decides readiness: without Kafka events wait in the topics,
        # without Redis reports skip the cache.
        store = runtime.store
        return {} if store is None else {"clickhouse": store.ping}

    # Authentication runs as a dependency of every route, before query validation.
    routes = APIRouter(dependencies=[Depends(api.authenticate)])
    routes.include_router(build_router(api))
    app = create_app(
        service=SERVICE_NAME,
        title="MicroCommerce Analytics API",
        version="1.0.0",
        description="Sales and order-flow reports from every domain event (CQRS read side).",
        routers=[routes],
        lifespan=lifespan,
        probes=probes,
    )
    app.state.analytics = runtime
    return app


async def migrate_store(settings: AnalyticsSettings) -> None:
    """``python -m handwritten.analytics migrate``: create the missing tables."""
    store = await open_store(settings)
    try:
        await store.migrate()
    finally:
        await store.close()


async def rebuild_store(settings: AnalyticsSettings) -> RebuildResult:
    """``python -m handwritten.analytics rebuild``: reset the tables and replay the topics."""
    store = await open_store(settings)
    try:
        result = await rebuild(
            store,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topics=TOPICS,
            batch_size=settings.analytics_batch_size,
        )
    finally:
        await store.close()
    if settings.analytics_cache_ttl_seconds > 0:
        redis = Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        try:
            await result_cache(settings, redis).invalidate()
        finally:
            await redis.aclose()
    return result
