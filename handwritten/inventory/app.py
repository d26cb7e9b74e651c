"""Wiring of the inventory service: resources, lifespan, the FastAPI app, CLI tasks.

One process serves REST (uvicorn) and gRPC (grpclib, on GRPC_PORT) and runs two
background tasks: the reservation expiry job and the outbox relay that publishes
inventory.reserved / inventory.released to Kafka.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from fastapi import APIRouter, Depends, FastAPI
from grpclib.health.service import Health
from redis.asyncio import Redis

from generated.services.inventory.api import build_router
from generated.services.inventory.events import SERVICE_NAME, InventoryEventPublisher
from handwritten.inventory.adapters.cache import NoProductCache, RedisProductCache
from handwritten.inventory.adapters.events import PublishedReservationEvents
from handwritten.inventory.adapters.postgres import unit_of_work_factory
from handwritten.inventory.adapters.seed import seed_demo_products
from handwritten.inventory.entrypoints.expiry import ExpiryJob
from handwritten.inventory.entrypoints.grpc import InventoryGrpcService
from handwritten.inventory.entrypoints.rest import InventoryApi, RestComponents
from handwritten.inventory.service_layer.catalogue import Catalogue
from handwritten.inventory.service_layer.ports import ProductCache, ReservationEvents
from handwritten.inventory.service_layer.stock import StockKeeper
from handwritten.inventory.settings import InventorySettings
from handwritten.runtime.auth import RequestAuthenticator
from handwritten.runtime.db import migrate
from handwritten.runtime.faults import open_switchboard
from handwritten.runtime.faults_api import FaultFlagsApi
from handwritten.runtime.grpc_server import GrpcServer
from handwritten.runtime.health import Probe, postgres_probe
from handwritten.runtime.http import create_app
from handwritten.runtime.jwt import JwksClient
from handwritten.runtime.lifecycle import database_url, open_pool, stop_on_exit
from handwritten.runtime.logging import get_logger
from handwritten.runtime.outbox import OutboxRelay, OutboxSender, migrate_outbox

log = get_logger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@dataclass
class InventoryRuntime:
    """Resources opened by the lifespan (``app.state.inventory``); ``None`` before start."""

    pool: asyncpg.Pool | None = None
    catalogue: Catalogue | None = None
    stock: StockKeeper | None = None
    grpc: GrpcServer | None = None
    expiry: ExpiryJob | None = None
    relay: OutboxRelay | None = None


async def apply_migrations(pool: asyncpg.Pool) -> list[str]:
    """The service's tables, then the outbox table, in the inventory database."""
    async with pool.acquire() as connection:
        return await migrate(connection, MIGRATIONS) + await migrate_outbox(connection)


def outbox_events(connection: asyncpg.Connection) -> ReservationEvents:
    """Reservation events written to the outbox in the use case's transaction."""
    return PublishedReservationEvents(
        InventoryEventPublisher(OutboxSender(connection, SERVICE_NAME))
    )


def build_app(settings: InventorySettings | None = None) -> FastAPI:
    """The inventory service app; resources open and close with its lifespan."""
    settings = settings or InventorySettings()
    api = InventoryApi()
    runtime = InventoryRuntime()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            pool = runtime.pool = await open_pool(settings)
            stack.push_async_callback(pool.close)
            if settings.migrate_on_start:
                await apply_migrations(pool)
            if settings.seed_demo_products:
                async with pool.acquire() as connection:
                    added = await seed_demo_products(connection)
                if added:
                    log.info("demo products added", count=added)

            cache: ProductCache = NoProductCache()
            if settings.inventory_cache_ttl_seconds > 0:
                # Short timeouts: a slow Redis must degrade to cache misses, not stall reads.
                redis = Redis.from_url(
                    settings.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
                )
                stack.push_async_callback(redis.aclose)
                cache = RedisProductCache(redis, ttl_seconds=settings.inventory_cache_ttl_seconds)

            http = httpx.AsyncClient()
            stack.push_async_callback(http.aclose)
            authenticator = RequestAuthenticator(
                JwksClient(settings.jwks_url, http),
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
            )

            uow = unit_of_work_factory(pool, outbox_events)
            catalogue = runtime.catalogue = Catalogue(uow, cache)
            stock = runtime.stock = StockKeeper(
                uow, cache, reservation_ttl_seconds=settings.reservation_ttl_seconds
            )

            if settings.outbox_relay_enabled:
                relay = runtime.relay = OutboxRelay(
                    lambda: asyncpg.connect(database_url(settings)),
                    bootstrap_servers=settings.kafka_bootstrap_servers,
                    service=SERVICE_NAME,
                )
                stop_on_exit(stack, "outbox-relay", asyncio.create_task(relay.run()), relay.stop)

            expiry = runtime.expiry = ExpiryJob(
                stock,
                interval_seconds=settings.reservation_expiry_interval_seconds,
                batch_size=settings.reservation_expiry_batch_size,
            )
            stop_on_exit(
                stack, "reservation-expiry", asyncio.create_task(expiry.run()), expiry.stop
            )

            faults = await open_switchboard(settings, stack)
            grpc = runtime.grpc = GrpcServer(
                [InventoryGrpcService(catalogue, stock, faults), Health()], service=SERVICE_NAME
            )
            await grpc.start(settings.grpc_host, settings.grpc_port)
            # Registered last, so it runs first on shutdown: calls in flight finish
            # while the database and the background tasks are still there.
            stack.push_async_callback(grpc.stop, grace_seconds=settings.shutdown_grace_seconds)

            api.attach(
                RestComponents(
                    catalogue=catalogue,
                    authenticator=authenticator,
                    faults=FaultFlagsApi(faults, authenticator),
                )
            )
            stack.callback(api.attach, None)
            yield
        runtime.pool = runtime.catalogue = runtime.stock = None
        runtime.grpc = runtime.expiry = runtime.relay = None

    def probes(_: FastAPI) -> dict[str, Probe]:
        # Only PostgreSQL decides readiness: without Redis the cache is bypassed and
        # without Kafka events wait in the outbox, so the service still serves.
        return {} if runtime.pool is None else {"postgres": postgres_probe(runtime.pool)}

    # The admin check runs as a dependency of every route, before body validation.
    routes = APIRouter(dependencies=[Depends(api.authorize)])
    routes.include_router(build_router(api))
    app = create_app(
        service=SERVICE_NAME,
        title="MicroCommerce Inventory API",
        version="1.0.0",
        description="Products, prices and stock; reservations with expiry; no oversell.",
        routers=[routes],
        lifespan=lifespan,
        probes=probes,
    )
    app.state.inventory = runtime
    return app


async def migrate_database(settings: InventorySettings) -> list[str]:
    """``python -m handwritten.inventory migrate``: the migrations applied now."""
    pool = await open_pool(settings)
    try:
        return await apply_migrations(pool)
    finally:
        await pool.close()
