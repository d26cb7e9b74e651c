"""Configuration of the orders service, from environment variables.

Every value has a local-stack default (the catalog's for the shared ones), so
``python -m handwritten.orders`` runs with no environment at all.
"""

from __future__ import annotations

from pydantic import Field

from generated import catalog
from generated.services.orders.events import CONSUMER_GROUP
from handwritten.runtime.settings import ServiceSettings, catalog_defaults

_CATALOG = catalog_defaults("orders")
_SERVICE = catalog.SERVICES["orders"]
_ENV = {variable.name: variable.default for variable in _SERVICE.env}


def _grpc_port(service: str) -> int:
    port = catalog.SERVICES[service].grpc_port
    if port is None:
        raise RuntimeError(f"the services catalog gives {service} no grpc_port")
    return port


class OrdersSettings(ServiceSettings):
    """Settings of the orders service; each field is read from its upper-cased env var."""

    service_name: str = "orders"
    http_port: int = int(str(_CATALOG["http_port"]))
    database_url: str | None = str(_CATALOG["database_url"])

    #: The gRPC server (OrdersService) listens here; 0 picks a free port (tests).
    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(_grpc_port("orders"), ge=0, le=65535)

    #: Snapshot an order every N events (0 disables snapshots).
    snapshot_every: int = Field(int(_ENV["SNAPSHOT_EVERY"]), ge=0)

    #: Inventory's gRPC server (host:port) and the deadline of each call to it.
    inventory_grpc_target: str = f"127.0.0.1:{_grpc_port('inventory')}"
    inventory_timeout_seconds: float = Field(2.0, gt=0, le=30)

    #: Lifetime of cached orders in Redis; 0 disables the cache.
    orders_cache_ttl_seconds: float = Field(60.0, ge=0)

    #: Idempotency keys are kept this long after their response (at least 24 h).
    idempotency_ttl_seconds: int = Field(24 * 3600, ge=24 * 3600)
    #: A claim still in flight after this long is considered abandoned (crashed
    #: worker); a retry of the same request may then take it over.
    idempotency_in_flight_timeout_seconds: float = Field(60.0, gt=0)
    #: How often expired idempotency keys are purged.
    idempotency_purge_interval_seconds: float = Field(3600.0, gt=0)

    #: Publish the outbox (orders.*) to Kafka from this process; replicas elect one
    #: active relay, so leaving it on everywhere is safe.
    outbox_relay_enabled: bool = True

    #: Consume payments.* (saga replies) and shipping.* from Kafka in this process.
    consumer_enabled: bool = True
    #: The consumer group (replicas share it; tests use their own).
    orders_consumer_group: str = Field(CONSUMER_GROUP, min_length=1)

    #: Run the saga worker (resumes and advances every due saga; replicas share the
    #: work through FOR UPDATE SKIP LOCKED).
    saga_worker_enabled: bool = True
    #: Sagas one process advances at once.
    saga_worker_concurrency: int = Field(4, ge=1, le=64)
    #: How often an idle worker looks for due sagas (notifications wake it sooner).
    saga_poll_interval_seconds: float = Field(0.5, gt=0)
    #: Failed attempts after which a compensation is reported stuck (still retried).
    saga_compensation_alert_after: int = Field(5, ge=1)

    #: Apply pending migrations at start.
    migrate_on_start: bool = True
