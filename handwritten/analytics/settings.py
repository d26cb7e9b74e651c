"""Configuration of the analytics service, from environment variables.

Every value has a local-stack default (the catalog's for the shared ones), so
``python -m handwritten.analytics`` runs with no environment at all: embedded chdb in
``.local/analytics/chdb``. Setting CLICKHOUSE_URL switches to a ClickHouse server.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field

from generated import catalog
from generated.services.analytics.events import CONSUMER_GROUP
from handwritten.runtime.settings import ServiceSettings, catalog_defaults

_CATALOG = catalog_defaults("analytics")
_SERVICE = catalog.SERVICES["analytics"]
_ENV = {variable.name: variable.default for variable in _SERVICE.env}
_REPO_ROOT = Path(__file__).resolve().parents[2]
#: Where the local stack keeps its data (infrastructure/local honours the same variable).
_LOCAL_DIR = Path(os.environ.get("MC_LOCAL_DIR", _REPO_ROOT / ".local"))


def _catalog_grpc_port() -> int:
    port = _SERVICE.grpc_port
    if port is None:
        raise RuntimeError("the services catalog gives analytics no grpc_port")
    return port


class AnalyticsSettings(ServiceSettings):
    """Settings of the analytics service; each field is read from its upper-cased env var."""

    service_name: str = "analytics"
    http_port: int = int(str(_CATALOG["http_port"]))

    #: The gRPC server (AnalyticsService) listens here; 0 picks a free port (tests).
    grpc_host: str = "127.0.0.1"
    grpc_port: int = Field(_catalog_grpc_port(), ge=0, le=65535)

    #: A ClickHouse server, e.g. ``http://default:@clickhouse:8123``; empty: embedded chdb.
    clickhouse_url: str = _ENV["CLICKHOUSE_URL"]
    #: The embedded engine's directory (one process at a time may open it).
    analytics_chdb_path: Path = _LOCAL_DIR / "analytics" / "chdb"
    #: ClickHouse database of the analytics tables (tests use one of their own).
    analytics_database: str = Field("analytics", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

    #: Report results are cached in Redis this long; 0 disables the cache. Applying
    #: events invalidates the cache, so this only bounds staleness if that fails.
    analytics_cache_ttl_seconds: float = Field(10.0, ge=0)

    #: Kafka consumer group; a rebuild reads the topics without one. Override only to
    #: run an isolated instance (tests).
    analytics_consumer_group: str = Field(CONSUMER_GROUP, min_length=1)
    #: Consume events in this process (off: a query-only replica).
    consumer_enabled: bool = True
    #: Most records applied per ClickHouse write (one insert per table per batch).
    analytics_batch_size: int = Field(500, ge=1, le=10_000)

    #: Create missing tables at start.
    migrate_on_start: bool = True
