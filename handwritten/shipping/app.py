"""Wiring of the shipping service: resources, lifespan, the FastAPI app, CLI tasks.

One process serves REST (uvicorn) and gRPC (grpclib, on GRPC_PORT) and runs three
background tasks: the orders.* consumer, the progression job, and the outbox relay
that publishes shipping.scheduled / shipping.updated to Kafka.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from fastapi import APIRouter, Depends, FastAPI
from grpclib.health.service import Health

from generated.events.registry import Event
from generated.services.shipping.api import build_router
from generated.services.shipping.events import CONSUMES, SERVICE_NAME, ShippingEventPublisher
from handwritten.runtime.auth import RequestAuthenticator
from handwritten.runtime.backoff import Backoff
from handwritten.runtime.consumer import ConsumerRunner
from handwritten.runtime.db import migrate
from handwritten.runtime.grpc_server import GrpcServer
from handwritten.runtime.health import Probe, postgres_probe
from handwritten.runtime.http import create_app
from handwritten.runtime.inbox import migrate_inbox
from handwritten.runtime.jwt import JwksClient
from handwritten.runtime.lifecycle import database_url, open_pool, stop_on_exit
from handwritten.runtime.logging import get_logger
from handwritten.runtime.outbox import OutboxRelay, OutboxSender, migrate_outbox
from handwritten.shipping.adapters.events import PublishedShipmentEvents
from handwritten.shipping.adapters.postgres import PostgresUnitOfWork, unit_of_work_factory
from handwritten.shipping.entrypoints.consumer import ConsumerSupervisor, event_handler
from handwritten.shipping.entrypoints.grpc import ShippingGrpcService
from handwritten.shipping.entrypoints.progression import ProgressionJob
from handwritten.shipping.entrypoints.rest import RestComponents, ShippingApi
from handwritten.shipping.service_layer.ports import ShipmentEvents, UnitOfWork
from handwritten.shipping.service_layer.shipping import ShipmentQueries
from handwritten.shipping.settings import ShippingSettings

log = get_logger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@dataclass
class ShippingRuntime:
    """Resources opened by the lifespan (``app.state.shipping``); ``None`` before start."""

    pool: asyncpg.Pool | None = None
    queries: ShipmentQueries | None = None
    grpc: GrpcServer | None = None
    consumer: ConsumerSupervisor | None = None
    progression: ProgressionJob | None = None
    relay: OutboxRelay | None = None


async def apply_migrations(pool: asyncpg.Pool) -> list[str]:
    """The service's tables, then the outbox and inbox tables, in the shipping database."""
    async with pool.acquire() as connection:
        return (
            await migrate(connection, MIGRATIONS)
            + await migrate_outbox(connection)
            + await migrate_inbox(connection)
        )


def outbox_events(
    connection: asyncpg.Connection, *, causation_id: str | None = None
) -> ShipmentEvents:
    """Shipment events written to the outbox in the use case's transaction."""
    return PublishedShipmentEvents(
        ShippingEventPublisher(OutboxSender(connection, SERVICE_NAME)), causation_id=causation_id
    )


def consumed_unit_of_work(connection: asyncpg.Connection, event: Event[Any]) -> UnitOfWork:
    """A unit of work on the consumer's transaction; its events are caused by ``event``."""
    return PostgresUnitOfWork(
        connection, outbox_events(connection, causation_id=str(event.headers.event_id))
    )


def build_app(settings: ShippingSettings | None = None) -> FastAPI:
    """The shipping service app; resources open and close with its lifespan."""
    settings = settings or ShippingSettings()
    api = ShippingApi()
    runtime = ShippingRuntime()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            pool = runtime.pool = await open_pool(settings)
            stack.push_async_callback(pool.close)
            if settings.migrate_on_start:
                await apply_migrations(pool)

            http = httpx.AsyncClient()
            stack.push_async_callback(http.aclose)
            authenticator = RequestAuthenticator(
                JwksClient(settings.jwks_url, http),
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
            )
            uow = unit_of_work_factory(pool, outbox_events)
            queries = runtime.queries = ShipmentQueries(uow)

            if settings.outbox_relay_enabled:
                relay = runtime.relay = OutboxRelay(
                    lambda: asyncpg.connect(database_url(settings)),
                    bootstrap_servers=settings.kafka_bootstrap_servers,
                    service=SERVICE_NAME,
                )
                stop_on_exit(stack, "outbox-relay", asyncio.create_task(relay.run()), relay.stop)

            if settings.consumer_enabled:
                handler = event_handler(consumed_unit_of_work)
                consumer = runtime.consumer = ConsumerSupervisor(
                    lambda: ConsumerRunner(
                        pool,
                        bootstrap_servers=settings.kafka_bootstrap_servers,
                        group_id=settings.shipping_consumer_group,
                        topics=[spec.topic for spec in CONSUMES],
                        handler=handler,
                    ),
                    backoff=Backoff(initial=1.0, maximum=30.0),
                )
                stop_on_exit(stack, "consumer", asyncio.create_task(consumer.run()), consumer.stop)

            progression = runtime.progression = ProgressionJob(
                uow,
                step_seconds=settings.shipping_step_seconds,
                poll_seconds=settings.shipping_poll_seconds,
                batch_size=settings.shipping_batch_size,
            )
            stop_on_exit(
                stack, "progression", asyncio.create_task(progression.run()), progression.stop
            )

            grpc = runtime.grpc = GrpcServer(
                [ShippingGrpcService(queries), Health()], service=SERVICE_NAME
            )
            await grpc.start(settings.grpc_host, settings.grpc_port)
            # Registered last, so it runs first on shutdown: calls in flight finish
            # while the database and the background tasks are still there.
            stack.push_async_callback(grpc.stop, grace_seconds=settings.shutdown_grace_seconds)

            api.attach(RestComponents(queries=queries, authenticator=authenticator))
            stack.callback(api.attach, None)
            yield
        runtime.pool = runtime.queries = runtime.grpc = None
        runtime.consumer = runtime.progression = runtime.relay = None

    def probes(_: FastAPI) -> dict[str, Probe]:
        # Only PostgreSQL decides readiness: without Kafka, events wait (in the outbox,
        # or in the topics for the consumer) and the queries still answer.
        return {} if runtime.pool is None else {"postgres": postgres_probe(runtime.pool)}

    # Authentication runs as a dependency of every route, before path validation.
    routes = APIRouter(dependencies=[Depends(api.authenticate)])
    routes.include_router(build_router(api))
    app = create_app(
        service=SERVICE_NAME,
        title="MicroCommerce Shipping API",
        version="1.0.0",
        description="Schedules shipments for confirmed orders and advances their status.",
        routers=[routes],
        lifespan=lifespan,
        probes=probes,
    )
    app.state.shipping = runtime
    return app


async def migrate_database(settings: ShippingSettings) -> list[str]:
    """``python -m handwritten.shipping migrate``: the migrations applied now."""
    pool = await open_pool(settings)
    try:
        return await apply_migrations(pool)
    finally:
        await pool.close()
