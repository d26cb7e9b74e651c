"""Typed settings from environment variables, with safe local defaults.

Each service subclasses ``ServiceSettings`` once (``AuthSettings``…) and fills the
defaults from the generated catalog, so the local stack runs with no env at all and
docker compose / Kubernetes override by variable.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from generated import catalog


def local_database_url(database: str) -> str:
    """The local stack's URL of a service database (role = database = password)."""
    return f"postgresql://{database}:{database}@127.0.0.1:5432/{database}"


class ServiceSettings(BaseSettings):
    """What every service needs; names are the environment variables, upper-cased."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    service_name: str
    http_host: str = "127.0.0.1"
    http_port: int
    database_url: str | None = None
    redis_url: str = "redis://127.0.0.1:6379/0"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    jwks_url: str = f"http://127.0.0.1:{catalog.SERVICES['auth'].http_port}/.well-known/jwks.json"
    jwt_issuer: str = catalog.JWT_ISSUER
    jwt_audience: str = catalog.JWT_AUDIENCE
    log_level: str = "INFO"
    #: Seconds in-flight requests get to finish after SIGTERM before connections close.
    shutdown_grace_seconds: float = 10.0
    db_pool_min: int = 1
    db_pool_max: int = 10
    #: Saga fault flags (docs/fault-flags.md): the admin endpoint and MC_FAULTS work only
    #: when true. The local stack turns it on; production manifests never do.
    mc_faults_enabled: bool = False
    #: Flags from the start, every call: ``"create_order.process_payment=fail,..."``.
    mc_faults: str = ""


def catalog_defaults(service: str) -> dict[str, object]:
    """Defaults of ``ServiceSettings`` fields for ``service`` from the catalog."""
    entry = catalog.SERVICES[service]
    defaults: dict[str, object] = {"service_name": service, "http_port": entry.http_port}
    if entry.database is not None:
        defaults["database_url"] = local_database_url(entry.database)
    return defaults
