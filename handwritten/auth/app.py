"""Wiring of the auth service: resources, lifespan, the FastAPI app, CLI tasks."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
from fastapi import FastAPI
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from generated.services.auth.api import build_router
from handwritten.auth.adapters.keystore import JwtSigner, KeyEncryptor, PostgresSigningKeyStore
from handwritten.auth.adapters.passwords import Argon2PasswordHasher
from handwritten.auth.adapters.postgres import PostgresUnitOfWork
from handwritten.auth.adapters.throttle import RedisLoginAttemptCounter
from handwritten.auth.admins import AdminOutcome, create_admin
from handwritten.auth.api import AuthApi, AuthComponents, accept_local_email_domains
from handwritten.auth.domain.keys import KeyRotationPolicy, SigningKeyInfo
from handwritten.auth.domain.throttle import LoginThrottlePolicy, ThrottleLimit
from handwritten.auth.service import AuthService, TokenSettings, utc_now
from handwritten.auth.settings import DEV_KEY_ENCRYPTION_SECRET, AuthSettings
from handwritten.runtime.auth import RequestAuthenticator
from handwritten.runtime.db import migrate
from handwritten.runtime.health import Probe, kafka_probe, postgres_probe, redis_probe
from handwritten.runtime.http import create_app
from handwritten.runtime.lifecycle import database_url, open_pool
from handwritten.runtime.logging import get_logger
from handwritten.runtime.outbox import OutboxRelay, migrate_outbox

log = get_logger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: Clock skew verifiers tolerate (runtime ``verify_access_token`` leeway), seconds.
VERIFIER_LEEWAY_SECONDS = 5


@dataclass
class AuthRuntime:
    """Resources opened by the lifespan (``app.state.auth``); ``None`` before start."""

    pool: asyncpg.Pool | None = None
    redis: Redis | None = None
    keys: PostgresSigningKeyStore | None = None
    service: AuthService | None = None


async def apply_migrations(pool: asyncpg.Pool) -> list[str]:
    async with pool.acquire() as connection:
        return [*await migrate(connection, MIGRATIONS), *await migrate_outbox(connection)]


def outbox_relay(settings: AuthSettings) -> OutboxRelay:
    """Publishes users.registered (and any later auth event) from the outbox."""
    url = database_url(settings)

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(url)

    return OutboxRelay(connect, bootstrap_servers=settings.kafka_bootstrap_servers, service="auth")


def open_redis(url: str) -> Redis:
    """A Redis client that gives up quickly: the login throttle fails open rather
    than holding logins for seconds of retries when Redis is down."""
    return Redis.from_url(
        url,
        socket_timeout=1,
        socket_connect_timeout=1,
        retry=Retry(ExponentialBackoff(cap=0.1, base=0.02), retries=1),
    )


def rotation_policy(settings: AuthSettings) -> KeyRotationPolicy:
    return KeyRotationPolicy(
        rotation_interval=timedelta(seconds=settings.key_rotation_seconds),
        verification_window=timedelta(
            seconds=settings.access_token_ttl_seconds + VERIFIER_LEEWAY_SECONDS
        ),
    )


async def open_key_store(
    pool: asyncpg.Pool, settings: AuthSettings, clock: Callable[[], datetime] = utc_now
) -> PostgresSigningKeyStore:
    secret = settings.auth_key_encryption_secret.get_secret_value()
    if secret == DEV_KEY_ENCRYPTION_SECRET:
        log.warning("AUTH_KEY_ENCRYPTION_SECRET is the development default: change it")
    encryptor = await asyncio.to_thread(KeyEncryptor, secret)  # scrypt: ~0.1 s
    return PostgresSigningKeyStore(
        pool,
        encryptor,
        rotation_policy(settings),
        clock=clock,
        cache_seconds=settings.key_cache_seconds,
    )


def password_hasher(settings: AuthSettings) -> Argon2PasswordHasher:
    return Argon2PasswordHasher(
        time_cost=settings.argon2_time_cost,
        memory_cost_kib=settings.argon2_memory_cost_kib,
        parallelism=settings.argon2_parallelism,
    )


async def rotate_on_schedule(keys: PostgresSigningKeyStore, every_seconds: float) -> None:
    """Check every ``every_seconds`` whether the key is due; one replica rotates it."""
    while True:
        await asyncio.sleep(every_seconds)
        try:
            await keys.rotate(force=False)
        except Exception as exc:
            log.error("scheduled key rotation failed", exc_info=exc)


def build_app(settings: AuthSettings | None = None) -> FastAPI:
    """The auth service app; resources open and close with its lifespan."""
    settings = settings or AuthSettings()
    accept_local_email_domains()
    api = AuthApi(
        trusted_proxy_hops=settings.trusted_proxy_hops,
        trusted_proxies=settings.trusted_proxy_networks(),
    )
    runtime = AuthRuntime()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = await open_pool(settings)
        runtime.pool = pool
        rotation: asyncio.Task[None] | None = None
        relay: OutboxRelay | None = None
        relaying: asyncio.Task[None] | None = None
        try:
            await apply_migrations(pool)
            runtime.redis = open_redis(settings.redis_url)
            keys = runtime.keys = await open_key_store(pool, settings)
            await keys.ensure_signing_key()
            hasher = password_hasher(settings)
            service = runtime.service = AuthService(
                unit_of_work=lambda: PostgresUnitOfWork(pool),
                hasher=hasher,
                attempts=RedisLoginAttemptCounter(
                    runtime.redis,
                    account_window_seconds=settings.login_account_window_seconds,
                    client_window_seconds=settings.login_ip_window_seconds,
                ),
                throttle=LoginThrottlePolicy(
                    per_account=ThrottleLimit(
                        settings.login_max_failures_per_account,
                        settings.login_account_window_seconds,
                    ),
                    per_client=ThrottleLimit(
                        settings.login_max_failures_per_ip, settings.login_ip_window_seconds
                    ),
                ),
                signer=JwtSigner(keys),
                tokens=TokenSettings(
                    issuer=settings.jwt_issuer,
                    audience=settings.jwt_audience,
                    access_ttl_seconds=settings.access_token_ttl_seconds,
                    refresh_ttl_seconds=settings.refresh_token_ttl_seconds,
                ),
                # Verified against when the e-mail is unknown, to spend the same time.
                dummy_password_hash=await hasher.hash(secrets.token_urlsafe(16)),
            )
            await service.seed_admin(
                email=settings.admin_email,
                password=settings.admin_password.get_secret_value(),
                name=settings.admin_name,
            )
            api.attach(
                AuthComponents(
                    service=service,
                    keys=keys,
                    authenticator=RequestAuthenticator(
                        keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience
                    ),
                )
            )
            rotation = asyncio.create_task(
                rotate_on_schedule(keys, settings.key_rotation_check_seconds)
            )
            relay = outbox_relay(settings)
            relaying = asyncio.create_task(relay.run())
            yield
        finally:
            api.attach(None)
            if relay is not None and relaying is not None:
                relay.stop()
                with contextlib.suppress(asyncio.CancelledError):
                    await relaying
            if rotation is not None:
                rotation.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await rotation
            if runtime.redis is not None:
                await runtime.redis.aclose()
            await pool.close()
            runtime.pool = runtime.redis = runtime.keys = runtime.service = None

    def probes(_: FastAPI) -> dict[str, Probe]:
        checks = {"kafka": kafka_probe(settings.kafka_bootstrap_servers)}
        if runtime.pool is not None:
            checks["postgres"] = postgres_probe(runtime.pool)
        if runtime.redis is not None:
            checks["redis"] = redis_probe(runtime.redis)
        return checks

    app = create_app(
        service="auth",
        title="MicroCommerce Auth API",
        version="1.0.0",
        description=(
            "Users, argon2id passwords, RS256 access tokens, rotating refresh tokens and the JWKS."
        ),
        routers=[build_router(api)],
        lifespan=lifespan,
        probes=probes,
    )
    app.state.auth = runtime
    return app


async def migrate_database(settings: AuthSettings) -> list[str]:
    """``python -m handwritten.auth migrate``: the migrations applied now."""
    pool = await open_pool(settings)
    try:
        return await apply_migrations(pool)
    finally:
        await pool.close()


async def rotate_signing_key(settings: AuthSettings) -> SigningKeyInfo:
    """``python -m handwritten.auth rotate-keys``: activate a new key now.

    The previous key stays published, so tokens it signed keep verifying; running
    replicas start signing with the new key within ``KEY_CACHE_SECONDS``.
    """
    pool = await open_pool(settings)
    try:
        await apply_migrations(pool)
        keys = await open_key_store(pool, settings)
        info = await keys.rotate(force=True)
        assert info is not None
        await keys.signing_key()  # proves the new key decrypts with this secret
        return info
    finally:
        await pool.close()


async def add_admin(
    settings: AuthSettings, *, email: str, password: str, name: str
) -> AdminOutcome:
    """``python -m handwritten.auth create-admin``: an admin account unless the e-mail
    exists (``InvalidRegistrationError`` when the rules refuse it)."""
    pool = await open_pool(settings)
    try:
        await apply_migrations(pool)
        return await create_admin(
            lambda: PostgresUnitOfWork(pool),
            password_hasher(settings),
            email=email,
            password=password,
            name=name,
        )
    finally:
        await pool.close()
