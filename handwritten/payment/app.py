"""Wiring of the payment service: resources, lifespan, the FastAPI app, CLI tasks.

The payment service's work comes from Kafka; its only REST route is the admins'
read of an order's payment. One process runs three background tasks next to that
route and the health/metrics/docs endpoints: the command consumer
(payments.requested, payments.refund_requested), the outbox relay that publishes
the replies, and the reconciliation job of in-doubt payments.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path

import asyncpg
import httpx
from fastapi import APIRouter, Depends, FastAPI

from generated.services.payment.api import build_router
from generated.services.payment.events import CONSUMES, SERVICE_NAME
from handwritten.payment.adapters.gateway import InstrumentedGateway, SimulatedGateway
from handwritten.payment.adapters.postgres import payment_of_order
from handwritten.payment.entrypoints.consumer import ConsumerSupervisor, payment_handler
from handwritten.payment.entrypoints.reconciliation import ReconciliationJob
from handwritten.payment.entrypoints.rest import PaymentApi, RestComponents
from handwritten.payment.service_layer.payments import PaymentService
from handwritten.payment.settings import PaymentSettings
from handwritten.runtime.auth import RequestAuthenticator
from handwritten.runtime.consumer import ConsumerRunner
from handwritten.runtime.db import migrate
from handwritten.runtime.faults import open_switchboard
from handwritten.runtime.faults_api import FaultFlagsApi
from handwritten.runtime.health import Probe, postgres_probe
from handwritten.runtime.http import create_app
from handwritten.runtime.inbox import migrate_inbox
from handwritten.runtime.jwt import JwksClient
from handwritten.runtime.lifecycle import database_url, open_pool, stop_on_exit
from handwritten.runtime.logging import get_logger
from handwritten.runtime.outbox import OutboxRelay, migrate_outbox

log = get_logger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


@dataclass
class PaymentRuntime:
    """Resources opened by the lifespan (``app.state.payment``); ``None`` before start."""

    pool: asyncpg.Pool | None = None
    gateway: SimulatedGateway | None = None
    service: PaymentService | None = None
    consumer: ConsumerSupervisor | None = None
    reconciliation: ReconciliationJob | None = None
    relay: OutboxRelay | None = None


async def apply_migrations(pool: asyncpg.Pool) -> list[str]:
    """The payments table, then the outbox and inbox tables, in the payment database."""
    async with pool.acquire() as connection:
        return [
            *await migrate(connection, MIGRATIONS),
            *await migrate_outbox(connection),
            *await migrate_inbox(connection),
        ]


def simulated_gateway(settings: PaymentSettings) -> SimulatedGateway:
    return SimulatedGateway(
        delay_seconds=settings.payment_gateway_delay_ms / 1000,
        timeout_seconds=settings.payment_gateway_timeout_ms / 1000,
        failure_rate=settings.payment_failure_rate,
    )


def build_app(settings: PaymentSettings | None = None) -> FastAPI:
    """The payment service app; resources and background tasks live in its lifespan."""
    settings = settings or PaymentSettings()
    api = PaymentApi()
    runtime = PaymentRuntime()

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

            gateway = runtime.gateway = simulated_gateway(settings)
            service = runtime.service = PaymentService(InstrumentedGateway(gateway))

            # Exit order is the reverse: the consumer stops first (finishing the record
            # in hand), then the job, then the relay, then the pool closes.
            if settings.outbox_relay_enabled:
                url = database_url(settings)
                relay = runtime.relay = OutboxRelay(
                    lambda: asyncpg.connect(url),
                    bootstrap_servers=settings.kafka_bootstrap_servers,
                    service=SERVICE_NAME,
                )
                stop_on_exit(stack, "outbox-relay", asyncio.create_task(relay.run()), relay.stop)

            job = runtime.reconciliation = ReconciliationJob(
                pool,
                service,
                older_than=timedelta(seconds=settings.payment_pending_timeout_seconds),
                interval_seconds=settings.payment_reconcile_interval_seconds,
                batch_size=settings.payment_reconcile_batch_size,
            )
            stop_on_exit(stack, "reconciliation", asyncio.create_task(job.run()), job.stop)

            faults = await open_switchboard(settings, stack)
            handler = payment_handler(service, faults)

            def make_runner() -> ConsumerRunner:
                return ConsumerRunner(
                    pool,
                    bootstrap_servers=settings.kafka_bootstrap_servers,
                    group_id=settings.payment_consumer_group,
                    topics=[spec.topic for spec in CONSUMES],
                    handler=handler,
                    client_id=f"{SERVICE_NAME}-consumer",
                )

            consumer = runtime.consumer = ConsumerSupervisor(make_runner)
            stop_on_exit(stack, "consumer", asyncio.create_task(consumer.run()), consumer.stop)

            api.attach(
                RestComponents(
                    payment_of_order=partial(payment_of_order, pool),
                    authenticator=authenticator,
                    faults=FaultFlagsApi(faults, authenticator),
                )
            )
            stack.callback(api.attach, None)
            yield
        runtime.pool = runtime.gateway = runtime.service = None
        runtime.consumer = runtime.reconciliation = runtime.relay = None

    def probes(_: FastAPI) -> dict[str, Probe]:
        if runtime.pool is None or runtime.consumer is None:
            return {}
        consumer = runtime.consumer

        async def consuming() -> None:
            # Without a running consumer the service does nothing useful.
            if not consumer.healthy:
                raise RuntimeError("the command consumer is not running (restarting)")

        return {"postgres": postgres_probe(runtime.pool), "consumer": consuming}

    # Authorization (admin role) runs as a dependency of every route, before path
    # validation.
    routes = APIRouter(dependencies=[Depends(api.authorize)])
    routes.include_router(build_router(api))
    app = create_app(
        service=SERVICE_NAME,
        title="MicroCommerce Payment API",
        version="1.0.0",
        description=(
            "Simulated payment gateway driven by the create-order saga over Kafka"
            " (payments.requested, payments.refund_requested); at most one charge per"
            " order. REST: the admins' read of an order's payment."
        ),
        routers=[routes],
        lifespan=lifespan,
        probes=probes,
    )
    app.state.payment = runtime
    return app


async def migrate_database(settings: PaymentSettings) -> list[str]:
    """``python -m handwritten.payment migrate``: the migrations applied now."""
    pool = await open_pool(settings)
    try:
        return await apply_migrations(pool)
    finally:
        await pool.close()
