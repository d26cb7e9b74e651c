"""Wiring of the orders service: resources, lifespan, the FastAPI app, CLI tasks.

One process serves REST (uvicorn) and gRPC (grpclib, on GRPC_PORT) over the same
``OrdersService``, and runs background tasks: the outbox relay that publishes
orders.* and the saga's commands to Kafka, the saga worker that advances the
create-order sagas, the consumer of payments.* and shipping.*, and the purge of
expired idempotency keys.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from fastapi import APIRouter, Depends, FastAPI
from grpclib.health.service import Health
from redis.asyncio import Redis

from generated.sagas.create_order import CREATE_ORDER
from generated.services.orders.api import build_router
from generated.services.orders.events import CONSUMES, SERVICE_NAME
from handwritten.orders.adapters.cache import NoOrderCache, RedisOrderCache
from handwritten.orders.adapters.inventory_grpc import GrpcInventory, open_channel
from handwritten.orders.adapters.orders_view import PostgresOrderViews, rebuild_orders_view
from handwritten.orders.adapters.repository import order_repository
from handwritten.orders.adapters.saga import CreateOrderSaga
from handwritten.orders.domain.order import OrderState
from handwritten.orders.entrypoints.consumer import ConsumerSupervisor, event_handler
from handwritten.orders.entrypoints.grpc import OrdersGrpcService
from handwritten.orders.entrypoints.rest import OrdersApi, RestComponents
from handwritten.orders.service_layer.orders import OrdersService
from handwritten.orders.service_layer.ports import OrderCache
from handwritten.orders.settings import OrdersSettings
from handwritten.runtime.auth import RequestAuthenticator
from handwritten.runtime.backoff import Backoff
from handwritten.runtime.consumer import ConsumerRunner
from handwritten.runtime.db import migrate
from handwritten.runtime.eventstore import AggregateRepository, migrate_event_store
from handwritten.runtime.faults import open_switchboard
from handwritten.runtime.faults_api import FaultFlagsApi
from handwritten.runtime.grpc_server import GrpcServer
from handwritten.runtime.health import Probe, postgres_probe
from handwritten.runtime.http import create_app
from handwritten.runtime.idempotency import IdempotencyStore, migrate_idempotency
from handwritten.runtime.inbox import migrate_inbox
from handwritten.runtime.jwt import JwksClient
from handwritten.runtime.lifecycle import database_url, open_pool, stop_on_exit
from handwritten.runtime.logging import get_logger
from handwritten.runtime.outbox import OutboxRelay, migrate_outbox
from handwritten.runtime.saga import SagaWorker, migrate_saga

log = get_logger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@dataclass
class OrdersRuntime:
    """Resources opened by the lifespan (``app.state.orders``); ``None`` before start."""

    pool: asyncpg.Pool | None = None
    repository: AggregateRepository[OrderState] | None = None
    service: OrdersService | None = None
    idempotency: IdempotencyStore | None = None
    grpc: GrpcServer | None = None
    relay: OutboxRelay | None = None
    cache: OrderCache | None = None
    saga: CreateOrderSaga | None = None
    saga_worker: SagaWorker | None = None
    consumer: ConsumerSupervisor | None = None


async def apply_migrations(pool: asyncpg.Pool) -> list[str]:
    """The event store, outbox, inbox, idempotency and saga tables, then the service's own."""
    async with pool.acquire() as connection:
        return (
            await migrate_event_store(connection)
            + await migrate_outbox(connection)
            + await migrate_inbox(connection)
            + await migrate_idempotency(connection)
            + await migrate_saga(connection)
            + await migrate(connection, MIGRATIONS)
        )


def open_cache(settings: OrdersSettings, stack: AsyncExitStack) -> OrderCache:
    if settings.orders_cache_ttl_seconds <= 0:
        return NoOrderCache()
    # Short timeouts: a slow Redis must degrade to cache misses, not stall reads.
    redis = Redis.from_url(settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    stack.push_async_callback(redis.aclose)
    return RedisOrderCache(redis, ttl_seconds=settings.orders_cache_ttl_seconds)


async def purge_idempotency_keys(store: IdempotencyStore, every_seconds: float) -> None:
    """Delete expired idempotency keys now and then (each replica; cheap and idempotent)."""
    while True:
        try:
            purged = await store.purge_expired()
            if purged:
                log.info("expired idempotency keys purged", count=purged)
        except Exception as exc:
            log.warning("idempotency key purge failed", error=repr(exc))
        await asyncio.sleep(every_seconds)


def build_app(settings: OrdersSettings | None = None) -> FastAPI:
    """The orders service app; resources open and close with its lifespan."""
    settings = settings or OrdersSettings()
    api = OrdersApi()
    runtime = OrdersRuntime()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            pool = runtime.pool = await open_pool(settings)
            stack.push_async_callback(pool.close)
            if settings.migrate_on_start:
                await apply_migrations(pool)
            cache = runtime.cache = open_cache(settings, stack)

            http = httpx.AsyncClient()
            stack.push_async_callback(http.aclose)
            authenticator = RequestAuthenticator(
                JwksClient(settings.jwks_url, http),
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
            )

            channel = open_channel(settings.inventory_grpc_target)
            stack.callback(channel.close)
            repository = runtime.repository = order_repository(
                snapshot_every=settings.snapshot_every
            )
            faults = await open_switchboard(settings, stack)
            saga = runtime.saga = CreateOrderSaga(
                CREATE_ORDER,
                pool=pool,
                inventory=channel,
                compensation_alert_after=settings.saga_compensation_alert_after,
                faults=faults,
            )
            service = runtime.service = OrdersService(
                pool=pool,
                repository=repository,
                views=PostgresOrderViews(pool),
                inventory=GrpcInventory(
                    channel, timeout_seconds=settings.inventory_timeout_seconds
                ),
                cache=cache,
                sagas=saga,
            )
            saga.bind(service)
            idempotency = runtime.idempotency = IdempotencyStore(
                pool,
                ttl=dt.timedelta(seconds=settings.idempotency_ttl_seconds),
                in_flight_timeout=dt.timedelta(
                    seconds=settings.idempotency_in_flight_timeout_seconds
                ),
            )

            if settings.outbox_relay_enabled:
                relay = runtime.relay = OutboxRelay(
                    lambda: asyncpg.connect(database_url(settings)),
                    bootstrap_servers=settings.kafka_bootstrap_servers,
                    service=SERVICE_NAME,
                )
                stop_on_exit(stack, "outbox-relay", asyncio.create_task(relay.run()), relay.stop)
            if settings.saga_worker_enabled:
                worker = runtime.saga_worker = SagaWorker(
                    saga.engine,
                    pool,
                    concurrency=settings.saga_worker_concurrency,
                    poll_interval=settings.saga_poll_interval_seconds,
                    listen=lambda: asyncpg.connect(database_url(settings)),
                )
                stop_on_exit(stack, "saga-worker", asyncio.create_task(worker.run()), worker.stop)
            if settings.consumer_enabled:
                handler = event_handler(service, saga.engine)
                consumer = runtime.consumer = ConsumerSupervisor(
                    lambda: ConsumerRunner(
                        pool,
                        bootstrap_servers=settings.kafka_bootstrap_servers,
                        group_id=settings.orders_consumer_group,
                        topics=[spec.topic for spec in CONSUMES],
                        handler=handler,
                        client_id=f"{SERVICE_NAME}-consumer",
                        service=SERVICE_NAME,
                    ),
                    backoff=Backoff(initial=1.0, maximum=30.0),
                )
                stop_on_exit(stack, "consumer", asyncio.create_task(consumer.run()), consumer.stop)
            stop_on_exit(
                stack,
                "idempotency-purge",
                asyncio.create_task(
                    purge_idempotency_keys(idempotency, settings.idempotency_purge_interval_seconds)
                ),
            )

            grpc = runtime.grpc = GrpcServer(
                [OrdersGrpcService(service, idempotency), Health()], service=SERVICE_NAME
            )
            await grpc.start(settings.grpc_host, settings.grpc_port)
            # Registered last, so it runs first on shutdown: calls in flight finish
            # while the database and the background tasks are still there.
            stack.push_async_callback(grpc.stop, grace_seconds=settings.shutdown_grace_seconds)

            api.attach(
                RestComponents(
                    service=service,
                    authenticator=authenticator,
                    idempotency=idempotency,
                    faults=FaultFlagsApi(faults, authenticator),
                )
            )
            stack.callback(api.attach, None)
            yield
        runtime.pool = runtime.repository = runtime.service = runtime.idempotency = None
        runtime.grpc = runtime.relay = runtime.cache = None
        runtime.saga = runtime.saga_worker = runtime.consumer = None

    def probes(_: FastAPI) -> dict[str, Probe]:
        # Only PostgreSQL decides readiness: without Redis the cache is bypassed and
        # without Kafka events wait in the outbox; without inventory only creating
        # orders fails (503), reads still work.
        return {} if runtime.pool is None else {"postgres": postgres_probe(runtime.pool)}

    # Authentication runs as a dependency of every route, before body validation.
    routes = APIRouter(dependencies=[Depends(api.authenticate)])
    routes.include_router(build_router(api))
    app = create_app(
        service=SERVICE_NAME,
        title="MicroCommerce Orders API",
        version="1.0.0",
        description=(
            "Event-sourced orders priced from inventory, with their event history, "
            "idempotent creation and the orders_view read model."
        ),
        routers=[routes],
        lifespan=lifespan,
        probes=probes,
    )
    app.state.orders = runtime
    return app


async def migrate_database(settings: OrdersSettings) -> list[str]:
    """``python -m handwritten.orders migrate``: the migrations applied now."""
    pool = await open_pool(settings)
    try:
        return await apply_migrations(pool)
    finally:
        await pool.close()


async def rebuild_projections(settings: OrdersSettings) -> int:
    """``python -m handwritten.orders rebuild-projections``: orders_view from the events.

    Returns the number of orders projected. The order cache is cleared afterwards
    so no entry from before the rebuild outlives it.
    """
    pool = await open_pool(settings)
    try:
        await apply_migrations(pool)
        async with pool.acquire() as connection:
            count = await rebuild_orders_view(connection)
    finally:
        await pool.close()
    async with AsyncExitStack() as stack:
        await open_cache(settings, stack).clear()
    return count
