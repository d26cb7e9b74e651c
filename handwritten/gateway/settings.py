"""The gateway's settings: environment variables (upper-cased field names), local defaults."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from generated import catalog

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_KONG_CONFIG = REPO_ROOT / "infrastructure" / "gateway" / "kong.yml"
_AUTH_PORT = catalog.SERVICES["auth"].http_port


class GatewaySettings(BaseSettings):
    """Where the gateway listens, what it enforces and where it sends requests."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    gateway_host: str = "127.0.0.1"
    gateway_port: int = catalog.GATEWAY_PORT
    #: Kong's status listener: ``/status``, ``/status/ready`` and the Prometheus ``/metrics``.
    gateway_status_port: int = 8100
    kong_config: Path = DEFAULT_KONG_CONFIG
    jwks_url: str = f"http://127.0.0.1:{_AUTH_PORT}/.well-known/jwks.json"
    jwks_ttl_seconds: float = 300.0
    #: Unknown ``kid``s refetch the JWKS at most this often.
    jwks_min_refetch_seconds: float = 5.0
    #: Must equal what kong.yml's pre-function enforces (checked at startup).
    jwt_issuer: str = catalog.JWT_ISSUER
    jwt_audience: str = catalog.JWT_AUDIENCE
    #: Counters of the rate-limiting plugin (kong.yml's redis host is compose's).
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Replaces the (compose) host of every Kong service url; the port is kept.
    gateway_upstream_host: str = "127.0.0.1"
    #: ``service=url,service=url``: send a Kong service somewhere else entirely.
    gateway_upstream_overrides: str = ""
    gateway_connect_timeout_seconds: float = 2.0
    gateway_read_timeout_seconds: float = 30.0
    gateway_write_timeout_seconds: float = 30.0
    gateway_max_connections: int = 512
    #: Seconds an idle client connection stays open (Kong's nginx: 60).
    gateway_keepalive_seconds: int = 60
    #: Seconds in-flight requests get to finish after SIGTERM.
    gateway_shutdown_grace_seconds: float = 10.0
    log_level: str = "INFO"

    @field_validator("gateway_upstream_overrides")
    @classmethod
    def _valid_overrides(cls, value: str) -> str:
        parse_overrides(value)
        return value

    def upstream_overrides(self) -> dict[str, str]:
        """``GATEWAY_UPSTREAM_OVERRIDES`` as ``{service: base url}``."""
        return parse_overrides(self.gateway_upstream_overrides)


def parse_overrides(value: str) -> dict[str, str]:
    """``"orders=http://127.0.0.1:9000, auth=http://h:1"`` → ``{"orders": …, "auth": …}``."""
    overrides: dict[str, str] = {}
    for item in value.split(","):
        if not item.strip():
            continue
        service, sep, url = item.partition("=")
        parts = urlsplit(url.strip())
        if not (sep and service.strip() and parts.scheme in ("http", "https") and parts.hostname):
            raise ValueError(
                f"GATEWAY_UPSTREAM_OVERRIDES: {item.strip()!r} is not service=http://host:port"
            )
        overrides[service.strip()] = url.strip().rstrip("/")
    return overrides
