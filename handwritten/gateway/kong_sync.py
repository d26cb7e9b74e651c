"""``python -m handwritten.gateway.kong_sync``: keeps real Kong's jwt keys in step with the JWKS.

Kong OSS's jwt plugin cannot fetch a JWKS: it verifies RS256 tokens with the
``rsa_public_key`` of a consumer's ``jwt_secrets``, found by the token's ``kid``. This job
(docker compose service ``kong-jwks-sync``) periodically fetches the auth service's JWKS,
turns each RSA key into a PEM credential (key = kid, algorithm RS256) of the consumer
kong.yml declares, and — only when Kong's current credentials differ (a new or rotated
key, or a restarted Kong that reloaded kong.yml without them) — POSTs kong.yml plus those
credentials to the admin API's ``/config`` (DB-less). After every successful check it
touches ``KONG_SYNC_HEARTBEAT_FILE`` (the container's healthcheck reads it).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pydantic_settings import BaseSettings, SettingsConfigDict

from handwritten.gateway.settings import DEFAULT_KONG_CONFIG
from handwritten.runtime.logging import configure_logging, get_logger

log = get_logger("kong_sync")

CONSUMER = "microcommerce-users"
ALGORITHM = "RS256"


class SyncSettings(BaseSettings):
    """Environment variables of the sync job."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    kong_admin_url: str = "http://127.0.0.1:8001"
    jwks_url: str = "http://127.0.0.1:8101/.well-known/jwks.json"
    kong_config: Path = DEFAULT_KONG_CONFIG
    kong_consumer: str = CONSUMER
    kong_sync_interval_seconds: float = 10.0
    kong_sync_heartbeat_file: Path | None = None
    log_level: str = "INFO"


class SyncError(Exception):
    """The JWKS or Kong's admin API answered something unusable."""


# ----------------------------------------------------------------------- transformation


def jwk_to_pem(jwk: Mapping[str, Any]) -> str:
    """An RSA JWK as a PEM ``PUBLIC KEY`` (SubjectPublicKeyInfo), what Kong expects."""
    key = RSAAlgorithm.from_jwk(json.dumps(dict(jwk)))
    # A JWKS must publish public keys only; never hand Kong private material.
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    pem: bytes = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode("ascii")


def jwt_secrets(jwks: Mapping[str, Any]) -> list[dict[str, str]]:
    """Kong jwt credentials for the JWKS's RS256 signing keys, sorted by kid."""
    secrets = []
    for jwk in jwks.get("keys", []):
        if not isinstance(jwk, Mapping):
            continue
        usable = (
            jwk.get("kty") == "RSA"
            and isinstance(jwk.get("kid"), str)
            and jwk.get("kid")
            and jwk.get("alg", ALGORITHM) == ALGORITHM
            and jwk.get("use", "sig") == "sig"
        )
        if usable:
            secrets.append(
                {"key": jwk["kid"], "algorithm": ALGORITHM, "rsa_public_key": jwk_to_pem(jwk)}
            )
    return sorted(secrets, key=lambda secret: secret["key"])


def with_jwt_secrets(
    config: Mapping[str, Any], consumer: str, secrets: Sequence[Mapping[str, str]]
) -> dict[str, Any]:
    """A copy of the declarative config whose ``consumer`` holds exactly ``secrets``."""
    updated = copy.deepcopy(dict(config))
    for entry in updated.get("consumers") or []:
        if entry.get("username") == consumer:
            entry["jwt_secrets"] = [dict(secret) for secret in secrets]
            return updated
    raise SyncError(f"kong.yml declares no consumer {consumer!r}")


def key_set(secrets: Sequence[Mapping[str, Any]]) -> frozenset[tuple[str, str, str]]:
    """What must match between Kong and the JWKS: (kid, algorithm, PEM)."""
    return frozenset(
        (
            str(secret.get("key")),
            str(secret.get("algorithm")),
            str(secret.get("rsa_public_key") or "").strip(),
        )
        for secret in secrets
    )


# ----------------------------------------------------------------------- I/O


async def fetch_jwks(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    response = await client.get(url)
    response.raise_for_status()
    document = response.json()
    if not isinstance(document, dict):
        raise SyncError("the JWKS is not a JSON object")
    return document


async def kong_secrets(
    client: httpx.AsyncClient, admin_url: str, consumer: str
) -> list[dict[str, Any]]:
    """The consumer's jwt credentials as Kong has them now (none if it has no consumer)."""
    response = await client.get(f"{admin_url}/consumers/{quote(consumer, safe='')}/jwt?size=1000")
    if response.status_code == 404:
        return []
    response.raise_for_status()
    data = response.json().get("data", [])
    return [entry for entry in data if isinstance(entry, dict)]


async def sync_once(
    client: httpx.AsyncClient, settings: SyncSettings, config: Mapping[str, Any]
) -> bool:
    """One check; True when Kong was reconfigured."""
    secrets = jwt_secrets(await fetch_jwks(client, settings.jwks_url))
    if not secrets:
        # An empty JWKS is an auth-service problem: keep Kong's keys rather than lock out.
        raise SyncError("the JWKS has no RS256 key; Kong keeps its current keys")
    current = await kong_secrets(client, settings.kong_admin_url, settings.kong_consumer)
    if key_set(current) == key_set(secrets):
        return False
    body = with_jwt_secrets(config, settings.kong_consumer, secrets)
    response = await client.post(f"{settings.kong_admin_url}/config", json=body)
    if response.status_code != 201:
        raise SyncError(f"Kong refused the config: {response.status_code} {response.text[:500]}")
    log.info("kong_keys_synced", kids=[secret["key"] for secret in secrets])
    return True


async def run(settings: SyncSettings) -> None:
    """Check every ``kong_sync_interval_seconds`` until SIGTERM/SIGINT."""
    config = yaml.safe_load(settings.kong_config.read_text(encoding="utf-8"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as client:
        while not stop.is_set():
            try:
                await sync_once(client, settings, config)
            except (httpx.HTTPError, SyncError, ValueError) as exc:
                log.warning("kong_sync_failed", error=f"{type(exc).__name__}: {exc}")
            else:
                if settings.kong_sync_heartbeat_file is not None:
                    settings.kong_sync_heartbeat_file.touch()
            with contextlib.suppress(TimeoutError):  # the interval elapsed: check again
                await asyncio.wait_for(stop.wait(), settings.kong_sync_interval_seconds)


def main() -> None:
    settings = SyncSettings()
    configure_logging("kong-jwks-sync", settings.log_level)
    log.info("kong_sync_starting", admin=settings.kong_admin_url, jwks=settings.jwks_url)
    started = time.monotonic()
    asyncio.run(run(settings))
    log.info("kong_sync_stopped", seconds=round(time.monotonic() - started, 1))


if __name__ == "__main__":
    main()
