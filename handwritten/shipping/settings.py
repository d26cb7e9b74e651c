"""Configuration of the shipping service, from environment variables.

Every value has a local-stack default (the catalog's for the shared ones), so
``python -m handwritten.shipping`` runs with no environment at all.
"""

from __future__ import annotations

from pydantic import Field

from generated import catalog
from generated.services.shipping.events import CONSUMER_GROUP
from handwritten.runtime.settings import ServiceSettings, catalog_defaults

_CATALOG = catalog_defaults("shipping")
_SERVICE = catalog.SERVICES["shipping"]
_ENV = {variable.name: variable.default for variable in _SERVICE.env}


def _catalog_grpc_port() -> int:
    port = _SERVICE.grpc_port
    if port is None:
        raise RuntimeError("the services catalog gives shipping no grpc_port")
    return port


class ShippingSettings(ServiceSettings):
    """Settings of the shipping service; each field is read from its upper-cased env var."""

    service_name: str = "shipping"
    http_port: int = int(str(_CATALOG["http_port"]))
    database_url: str | None = str(_CATALOG["database_url"])

    #: The gRPC server (ShippingService) listens here; 0 picks a free port (tests).
    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(_catalog_grpc_port(), ge=0, le=65535)

    #: A shipment moves one status further once its current status is this old.
    shipping_step_seconds: float = Field(float(_ENV["SHIPPING_STEP_SECONDS"]), gt=0)
    #: How often each replica looks for due shipments (capped at the step).
    shipping_poll_seconds: float = Field(1.0, gt=0)
    #: Shipments advanced per progression transaction (keeps transactions short).
    shipping_batch_size: int = Field(100, ge=1, le=10_000)

    #: Kafka consumer group of orders.confirmed / orders.canceled; the inbox marks
    #: are kept per group. Override only to run an isolated instance (tests).
    shipping_consumer_group: str = Field(CONSUMER_GROUP, min_length=1)
    #: Consume orders.* in this process (off: a query-only replica).
    consumer_enabled: bool = True

    #: Publish the outbox (shipping.scheduled / shipping.updated) to Kafka from this
    #: process; replicas elect one active relay, so leaving it on everywhere is safe.
    outbox_relay_enabled: bool = True

    #: Apply pending migrations at start.
    migrate_on_start: bool = True
