"""Signing keys: rotation keeps old tokens valid, keys are encrypted at rest, and
replicas starting or rotating at once create exactly one active key."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from handwritten.auth.adapters.keystore import (
    KeyDecryptionError,
    KeyEncryptor,
    PostgresSigningKeyStore,
)
from handwritten.auth.app import MIGRATIONS, rotation_policy
from handwritten.auth.settings import AuthSettings
from handwritten.runtime.db import migrate
from tests.integration.auth.conftest import token_pair, verify_with_jwks

pytestmark = pytest.mark.infra
REPO = Path(__file__).resolve().parents[3]


async def run_rotate_keys() -> str:
    """``python -m handwritten.auth rotate-keys`` as an operator would run it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "handwritten.auth",
        "rotate-keys",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode() + stdout.decode()
    match = re.search(r"signing key rotated: new kid (\S+)", stdout.decode())
    assert match, stdout.decode()
    return match.group(1)


async def test_tokens_signed_before_a_rotation_stay_valid(
    client: httpx.AsyncClient, settings: AuthSettings
) -> None:
    _, before = await token_pair(client)
    old_kid = jwt.get_unverified_header(before["access_token"])["kid"]

    new_kid = await run_rotate_keys()
    assert new_kid != old_kid

    kids = [key["kid"] for key in (await client.get("/.well-known/jwks.json")).json()["keys"]]
    assert kids[:2] == [new_kid, old_kid]  # current first, then the previous one
    claims = await verify_with_jwks(client, before["access_token"], settings)
    assert claims["jti"]
    me = await client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {before['access_token']}"}
    )
    assert me.status_code == 200

    _, after = await token_pair(client)
    assert jwt.get_unverified_header(after["access_token"])["kid"] == new_kid
    await verify_with_jwks(client, after["access_token"], settings)
    # Refresh tokens are not tied to a signing key: the old pair still refreshes.
    refreshed = await client.post(
        "/api/auth/refresh", json={"refresh_token": before["refresh_token"]}
    )
    assert refreshed.status_code == 200
    assert jwt.get_unverified_header(refreshed.json()["access_token"])["kid"] == new_kid


async def test_private_keys_are_encrypted_at_rest(
    client: httpx.AsyncClient, settings: AuthSettings, db: asyncpg.Connection
) -> None:
    published = {
        key["kid"]: key for key in (await client.get("/.well-known/jwks.json")).json()["keys"]
    }
    rows = await db.fetch(
        "SELECT kid, public_jwk, private_key_ciphertext, nonce FROM signing_keys "
        "WHERE kid = ANY($1::text[])",
        list(published),
    )
    assert {row["kid"] for row in rows} == set(published)
    encryptor = KeyEncryptor(settings.auth_key_encryption_secret.get_secret_value())
    stranger = KeyEncryptor("not the secret")
    for row in rows:
        ciphertext: bytes = row["private_key_ciphertext"]
        assert b"PRIVATE KEY" not in ciphertext and not ciphertext.startswith(b"-----")
        with pytest.raises(ValueError):
            serialization.load_pem_private_key(ciphertext, password=None)
        with pytest.raises(ValueError):
            serialization.load_der_private_key(ciphertext, password=None)
        jwk = json.loads(row["public_jwk"])
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk)
        # With the secret it opens, and it is the private half of the published key.
        der = encryptor.decrypt(ciphertext, row["nonce"], kid=row["kid"])
        private = serialization.load_der_private_key(der, password=None)
        expected = jwt.PyJWK(published[row["kid"]]).key
        assert private.public_key().public_numbers() == expected.public_numbers()  # type: ignore[union-attr]
        with pytest.raises(KeyDecryptionError):
            stranger.decrypt(ciphertext, row["nonce"], kid=row["kid"])


@pytest.fixture
async def empty_schema(settings: AuthSettings) -> AsyncIterator[str]:
    """A throw-away schema with the auth tables and no key yet (a first start)."""
    assert settings.database_url
    name = f"test_auth_keys_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(settings.database_url)
    await connection.execute(f"CREATE SCHEMA {name}")
    try:
        await connection.execute(f"SET search_path TO {name}")
        await migrate(connection, MIGRATIONS)
        yield name
    finally:
        await connection.execute(f"DROP SCHEMA {name} CASCADE")
        await connection.close()


async def test_replicas_starting_together_create_one_key(
    settings: AuthSettings, empty_schema: str
) -> None:
    assert settings.database_url
    pool = await asyncpg.create_pool(
        settings.database_url, min_size=1, max_size=6, server_settings={"search_path": empty_schema}
    )
    assert pool is not None
    try:
        encryptor = KeyEncryptor(settings.auth_key_encryption_secret.get_secret_value())
        replicas = [
            PostgresSigningKeyStore(
                pool,
                encryptor,
                rotation_policy(settings),
                clock=lambda: datetime.now(UTC),
                cache_seconds=0,
            )
            for _ in range(4)
        ]
        infos = await asyncio.gather(*(store.ensure_signing_key() for store in replicas))
        assert len({info.kid for info in infos}) == 1
        async with pool.acquire() as connection:
            assert await connection.fetchval("SELECT count(*) FROM signing_keys") == 1

        # Forced rotations racing: each one retires the then-active key; one stays active.
        await asyncio.gather(*(store.rotate(force=True) for store in replicas[:3]))
        async with pool.acquire() as connection:
            assert await connection.fetchval("SELECT count(*) FROM signing_keys") == 4
            active = await connection.fetchval(
                "SELECT count(*) FROM signing_keys WHERE retired_at IS NULL"
            )
            assert active == 1
            # The partial unique index refuses a second active key outright.
            with pytest.raises(asyncpg.UniqueViolationError):
                await connection.execute(
                    "INSERT INTO signing_keys (kid, public_jwk, private_key_ciphertext, nonce, "
                    "activated_at) VALUES ('x', '{}', '', '', now())"
                )
        # Scheduled rotation is a no-op while the key is fresh.
        assert await replicas[0].rotate(force=False) is None
        jwks = await replicas[3].jwks()
        assert len(jwks) == 4  # current + 3 retired within the verification window
    finally:
        await pool.close()
