"""Configuration of the payment service, from environment variables.

Every value has a local-stack default (the catalog's for the shared ones), so
``python -m handwritten.payment`` runs with no environment at all.
"""

from __future__ import annotations

from pydantic import Field

from generated import catalog
from generated.services.payment.events import CONSUMER_GROUP
from handwritten.runtime.settings import ServiceSettings, catalog_defaults

_CATALOG = catalog_defaults("payment")
_ENV = {variable.name: variable.default for variable in catalog.SERVICES["payment"].env}


class PaymentSettings(ServiceSettings):
    """Settings of the payment service; each field is read from its upper-cased env var."""

    service_name: str = "payment"
    http_port: int = int(str(_CATALOG["http_port"]))
    database_url: str | None = str(_CATALOG["database_url"])

    #: Kafka consumer group of the commands (also names the inbox rows). Replicas
    #: share the catalog's group; tests use a group of their own so that they never
    #: split the partitions with a running service.
    payment_consumer_group: str = Field(CONSUMER_GROUP, min_length=1)

    #: Extra failure rate of tok_visa charges (chaos), answered GATEWAY_ERROR; which
    #: orders fail is decided by a hash of the order id (``adapters.gateway.failure_roll``).
    payment_failure_rate: float = Field(float(_ENV["PAYMENT_FAILURE_RATE"]), ge=0.0, le=1.0)
    #: Upper bound of the simulated gateway's answer latency (random, half to full).
    payment_gateway_delay_ms: int = Field(50, ge=0, le=60_000)
    #: How long a charge waits for the gateway's answer; tok_timeout waits all of it,
    #: and the consumer handles commands one by one, so keep it short (and well under
    #: the saga's 30 s payment timeout).
    payment_gateway_timeout_ms: int = Field(300, ge=1, le=60_000)

    #: A payment still PENDING (the gateway never answered) after this many seconds
    #: is settled by the reconciliation job. Longer than the saga's 30 s payment
    #: timeout, so that normally the saga's refund request voids it first.
    payment_pending_timeout_seconds: float = Field(120.0, ge=0)
    #: How often each replica looks for such payments, and how many per transaction.
    payment_reconcile_interval_seconds: float = Field(10.0, gt=0)
    payment_reconcile_batch_size: int = Field(50, ge=1, le=10_000)

    #: Publish the outbox (the saga replies) to Kafka from this process; replicas
    #: elect one active relay, so leaving it on everywhere is safe.
    outbox_relay_enabled: bool = True
    #: Apply pending migrations at start.
    migrate_on_start: bool = True
