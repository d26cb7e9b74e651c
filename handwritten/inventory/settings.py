"""Configuration of the inventory service, from environment variables.

Every value has a local-stack default (the catalog's for the shared ones), so
``python -m handwritten.inventory`` runs with no environment at all.
"""

from __future__ import annotations

from pydantic import Field

from generated import catalog
from handwritten.runtime.settings import ServiceSettings, catalog_defaults

_CATALOG = catalog_defaults("inventory")
_SERVICE = catalog.SERVICES["inventory"]
_ENV = {variable.name: variable.default for variable in _SERVICE.env}


def _catalog_grpc_port() -> int:
    port = _SERVICE.grpc_port
    if port is None:
        raise RuntimeError("the services catalog gives inventory no grpc_port")
    return port


class InventorySettings(ServiceSettings):
    """Settings of the inventory service; each field is read from its upper-cased env var."""

    service_name: str = "inventory"
    http_port: int = int(str(_CATALOG["http_port"]))
    database_url: str | None = str(_CATALOG["database_url"])

    #: The gRPC server (InventoryService) listens here; 0 picks a free port (tests).
    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(_catalog_grpc_port(), ge=0, le=65535)

    #: A reservation not committed within this many seconds is released.
    reservation_ttl_seconds: float = Field(float(_ENV["RESERVATION_TTL_SECONDS"]), gt=0)
    #: How often each replica looks for expired reservations.
    reservation_expiry_interval_seconds: float = Field(5.0, gt=0)
    #: Reservation lines handled per expiry transaction (keeps transactions short).
    reservation_expiry_batch_size: int = Field(100, ge=1, le=10_000)

    #: Lifetime of cached products in Redis; 0 disables the cache.
    inventory_cache_ttl_seconds: float = Field(5.0, ge=0)

    #: Publish the outbox (inventory.reserved / inventory.released) to Kafka from this
    #: process; replicas elect one active relay, so leaving it on everywhere is safe.
    outbox_relay_enabled: bool = True

    #: Apply pending migrations and add the missing demo products at start.
    migrate_on_start: bool = True
    seed_demo_products: bool = True
