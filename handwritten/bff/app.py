"""Wiring of the BFF: resources, lifespan and the FastAPI app.

The lifespan opens one lazily connecting gRPC channel per downstream, one circuit
breaker per downstream (state in Redis, shared by replicas), the Redis summary
cache and the JWKS client, and closes them on shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from functools import partial

import httpx
from fastapi import APIRouter, Depends, FastAPI
from grpclib.client import Channel
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff

from generated.services.bff.api import build_router
from handwritten.bff.adapters.breaker import Breaker, SharedState, state_client
from handwritten.bff.adapters.grpc_clients import (
    Downstream,
    GrpcInventory,
    GrpcOrders,
    GrpcShipping,
    open_channel,
)
from handwritten.bff.adapters.summary_cache import NoSummaryCache, RedisSummaryCache
from handwritten.bff.entrypoints.graphql.schema import (
    Limits,
    build_mobile_schema,
    build_web_schema,
)
from handwritten.bff.entrypoints.http import Components, GraphqlApi
from handwritten.bff.service_layer.loaders import Downstreams
from handwritten.bff.service_layer.ports import SummaryCache
from handwritten.bff.settings import BffSettings
from handwritten.runtime.auth import RequestAuthenticator
from handwritten.runtime.health import Probe
from handwritten.runtime.http import create_app
from handwritten.runtime.jwt import JwksClient

SERVICE_NAME = "bff"


@dataclass
class BffRuntime:
    """Resources opened by the lifespan (``app.state.bff``); empty before start."""

    breakers: dict[str, Breaker] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)


def _limits(settings: BffSettings) -> Limits:
    return Limits(
        max_depth=settings.graphql_max_depth,
        max_aliases=settings.graphql_max_aliases,
        max_tokens=settings.graphql_max_tokens,
        introspection=settings.graphql_introspection,
    )


def build_app(settings: BffSettings | None = None) -> FastAPI:
    """The BFF app; resources open and close with its lifespan."""
    settings = settings or BffSettings()
    limits = _limits(settings)
    api = GraphqlApi(build_web_schema(limits), build_mobile_schema(limits))
    runtime = BffRuntime()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            http = httpx.AsyncClient()
            stack.push_async_callback(http.aclose)
            authenticator = RequestAuthenticator(
                JwksClient(settings.jwks_url, http),
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
            )

            # pybreaker is synchronous: its Redis bookkeeping runs in these threads,
            # on a sync client with short timeouts (see adapters.breaker). The pool
            # shuts down first, so bookkeeping still queued finishes on an open client.
            sync_redis = state_client(settings.redis_url)
            stack.callback(sync_redis.close)
            executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="bff-breaker")
            stack.callback(executor.shutdown, wait=True)
            # The cache is best effort too: one quick failure is a miss, not retries.
            async_redis = AsyncRedis.from_url(
                settings.redis_url,
                socket_timeout=0.5,
                socket_connect_timeout=0.5,
                retry=AsyncRetry(NoBackoff(), 0),
            )
            stack.push_async_callback(async_redis.aclose)

            timeouts = {
                "orders": settings.orders_timeout_seconds,
                "inventory": settings.inventory_timeout_seconds,
                "shipping": settings.shipping_timeout_seconds,
            }
            targets = {
                "orders": settings.orders_grpc_target,
                "inventory": settings.inventory_grpc_target,
                "shipping": settings.shipping_grpc_target,
            }
            calls: dict[str, Downstream] = {}
            for name, target in targets.items():
                storage = SharedState(
                    sync_redis,
                    namespace=settings.breaker_namespace,
                    name=name,
                    cooldown_seconds=settings.breaker_redis_cooldown_seconds,
                )
                # Built in a thread: pybreaker reads the shared state on construction.
                breaker = await asyncio.get_running_loop().run_in_executor(
                    executor,
                    partial(
                        Breaker,
                        name,
                        storage,
                        fail_max=settings.breaker_fail_max,
                        reset_timeout_seconds=settings.breaker_reset_timeout_seconds,
                        executor=executor,
                    ),
                )
                runtime.breakers[name] = breaker
                channel = runtime.channels[name] = open_channel(target)
                stack.callback(channel.close)
                calls[name] = Downstream(name, breaker, timeout_seconds=timeouts[name])

            cache: SummaryCache = (
                RedisSummaryCache(
                    async_redis,
                    ttl_seconds=settings.summary_cache_seconds,
                    prefix=settings.summary_cache_prefix,
                )
                if settings.summary_cache_seconds > 0
                else NoSummaryCache()
            )
            downstreams = Downstreams(
                orders=GrpcOrders(runtime.channels["orders"], calls["orders"]),
                inventory=GrpcInventory(runtime.channels["inventory"], calls["inventory"]),
                shipping=GrpcShipping(runtime.channels["shipping"], calls["shipping"]),
            )
            api.attach(
                Components(authenticator=authenticator, downstreams=downstreams, cache=cache)
            )
            stack.callback(api.attach, None)
            yield
        runtime.breakers.clear()
        runtime.channels.clear()

    def probes(_: FastAPI) -> dict[str, Probe]:
        # Nothing gates readiness: Redis is best effort (cache, shared breaker state)
        # and a downstream outage is what the breakers and degraded answers are for;
        # taking the BFF out of rotation would turn a partial outage into a full one.
        return {}

    # Authentication runs as a dependency of every route, before body validation.
    routes = APIRouter(dependencies=[Depends(api.authenticate)])
    routes.include_router(build_router(api))
    app = create_app(
        service=SERVICE_NAME,
        title="MicroCommerce BFF API",
        version="1.0.0",
        description=(
            "GraphQL backend-for-frontend: /graphql (web shape) and /graphql/mobile "
            "(minimal shape) over orders, inventory and shipping."
        ),
        routers=[routes],
        lifespan=lifespan,
        probes=probes,
    )
    app.state.bff = runtime
    return app
