"""Configuration of the BFF, from environment variables.

Every value has a local-stack default (the catalog's for the shared ones), so
``python -m handwritten.bff`` runs with no environment at all.
"""

from __future__ import annotations

from pydantic import Field

from generated import catalog
from handwritten.runtime.settings import ServiceSettings, catalog_defaults

_CATALOG = catalog_defaults("bff")


def _grpc_target(service: str) -> str:
    port = catalog.SERVICES[service].grpc_port
    if port is None:
        raise RuntimeError(f"the services catalog gives {service} no grpc_port")
    return f"127.0.0.1:{port}"


class BffSettings(ServiceSettings):
    """Settings of the BFF; each field is read from its upper-cased env var."""

    service_name: str = "bff"
    http_port: int = int(str(_CATALOG["http_port"]))

    #: The downstreams' gRPC servers (host:port).
    orders_grpc_target: str = _grpc_target("orders")
    inventory_grpc_target: str = _grpc_target("inventory")
    shipping_grpc_target: str = _grpc_target("shipping")

    #: Deadline of each call, per downstream: a slow downstream turns into a quick
    #: error (or a degraded field), never a hung query.
    orders_timeout_seconds: float = Field(2.0, gt=0, le=30)
    inventory_timeout_seconds: float = Field(1.0, gt=0, le=30)
    shipping_timeout_seconds: float = Field(1.0, gt=0, le=30)

    #: Consecutive failures that open a downstream's circuit breaker.
    breaker_fail_max: int = Field(5, ge=1)
    #: Seconds an open breaker fails fast before letting one trial call through. The
    #: state is shared by replicas, so a dead downstream sees one trial call per period
    #: in all; 15 s keeps recovery quick without hammering it.
    breaker_reset_timeout_seconds: float = Field(15.0, gt=0)
    #: Redis key prefix of the breakers' shared state: replicas with the same prefix
    #: share their breakers. Override only to isolate an instance (tests).
    breaker_namespace: str = Field("bff:breaker", min_length=1)
    #: After a Redis error, breakers use per-process state for this long.
    breaker_redis_cooldown_seconds: float = Field(5.0, gt=0)

    #: Lifetime of cached orderSummary answers (per user); 0 disables the cache.
    summary_cache_seconds: float = Field(5.0, ge=0, le=300)
    #: Redis key prefix of the summary cache. Override only to isolate an instance.
    summary_cache_prefix: str = Field("bff:summary:v1", min_length=1)

    #: Limits on GraphQL documents (see ``entrypoints.graphql.schema``).
    graphql_max_depth: int = Field(5, ge=1, le=50)
    graphql_max_aliases: int = Field(15, ge=0, le=1000)
    graphql_max_tokens: int = Field(2000, ge=10, le=100_000)
    #: Serve introspection (``__schema``); turn off where the schema is not public.
    graphql_introspection: bool = True
