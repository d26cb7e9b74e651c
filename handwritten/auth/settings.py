"""Configuration of the auth service, from environment variables.

Every value has a local-stack default (the catalog's for the shared ones), so
``python -m handwritten.auth`` runs with no environment at all. The defaults of
``ADMIN_PASSWORD`` and ``AUTH_KEY_ENCRYPTION_SECRET`` are for development only:
change both in production.
"""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from generated import catalog
from handwritten.auth.adapters.client_ip import Network, parse_networks
from handwritten.runtime.settings import ServiceSettings, catalog_defaults

_CATALOG = catalog_defaults("auth")
_ENV = {variable.name: variable.default for variable in catalog.SERVICES["auth"].env}

#: Development default of AUTH_KEY_ENCRYPTION_SECRET; the service warns when it runs
#: with it. Change it in production (any long random string).
DEV_KEY_ENCRYPTION_SECRET = _ENV["AUTH_KEY_ENCRYPTION_SECRET"]


class AuthSettings(ServiceSettings):
    """Settings of the auth service; each field is read from its upper-cased env var."""

    service_name: str = "auth"
    http_port: int = int(str(_CATALOG["http_port"]))
    database_url: str | None = str(_CATALOG["database_url"])

    #: The seeded admin account (created at start when missing; never overwritten).
    admin_email: str = _ENV["ADMIN_EMAIL"]
    admin_password: SecretStr = SecretStr(_ENV["ADMIN_PASSWORD"])
    admin_name: str = "Administrator"

    access_token_ttl_seconds: int = Field(int(_ENV["ACCESS_TOKEN_TTL_SECONDS"]), ge=60, le=86400)
    refresh_token_ttl_seconds: int = Field(int(_ENV["REFRESH_TOKEN_TTL_SECONDS"]), ge=60)

    #: A new signing key replaces the current one this often (30 days).
    key_rotation_seconds: int = Field(int(_ENV["KEY_ROTATION_SECONDS"]), ge=60)
    #: How often each replica checks whether the rotation is due.
    key_rotation_check_seconds: float = Field(60.0, gt=0)
    #: How long a replica reuses the signing key and JWKS it read from the database.
    key_cache_seconds: float = Field(5.0, ge=0, le=60)
    #: Encrypts the private signing keys at rest. Development default: change in production.
    auth_key_encryption_secret: SecretStr = SecretStr(DEV_KEY_ENCRYPTION_SECRET)

    #: Login throttling: failed attempts allowed per account / per client address
    #: within a fixed window; the next attempt answers 429 until the window ends.
    login_max_failures_per_account: int = Field(int(_ENV["LOGIN_MAX_FAILURES_PER_ACCOUNT"]), ge=1)
    login_account_window_seconds: int = Field(15 * 60, ge=1)
    login_max_failures_per_ip: int = Field(int(_ENV["LOGIN_MAX_FAILURES_PER_IP"]), ge=1)
    login_ip_window_seconds: int = Field(15 * 60, ge=1)
    #: Proxies in front of the service that append to X-Forwarded-For (the gateway).
    trusted_proxy_hops: int = Field(int(_ENV["TRUSTED_PROXY_HOPS"]), ge=0)
    #: Peers whose X-Forwarded-For is believed (comma-separated addresses or CIDR
    #: blocks): the gateway's. Loopback 127.0.0.1 (the local stack's gateway) and the
    #: private ranges a compose network or cluster uses; any other peer is the client.
    trusted_proxies: str = _ENV["TRUSTED_PROXIES"]

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: str) -> str:
        parse_networks(value)  # ValueError names the bad entry
        return value

    def trusted_proxy_networks(self) -> tuple[Network, ...]:
        """``trusted_proxies`` parsed."""
        return parse_networks(self.trusted_proxies)

    #: argon2id cost: RFC 9106's second recommended option (argon2-cffi's
    #: RFC_9106_LOW_MEMORY profile): 3 passes over 64 MiB with 4 lanes.
    argon2_time_cost: int = Field(3, ge=1)
    argon2_memory_cost_kib: int = Field(64 * 1024, ge=8)
    argon2_parallelism: int = Field(4, ge=1)
