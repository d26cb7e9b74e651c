"""RS256 signing keys in PostgreSQL, encrypted at rest, and the JWT signer.

Encryption at rest: the key-encryption key (KEK) is derived once per process from
``AUTH_KEY_ENCRYPTION_SECRET`` with scrypt (the secret may be a passphrase, so a
memory-hard KDF); each private key (PKCS#8 DER) is sealed with AES-256-GCM under a
fresh random 96-bit nonce, with its ``kid`` as associated data so a ciphertext
cannot be swapped onto another key's row. Only ciphertext and nonce are stored.

Concurrency: creating the first key and rotating run in one transaction under a
PostgreSQL advisory lock that re-reads the active key, so replicas starting or
rotating at once create one key; a partial unique index (one active key) backs it
up. Each replica caches what it read for ``cache_seconds`` at most.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import jwt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from jwt.algorithms import RSAAlgorithm

from handwritten.auth.domain.keys import KeyRotationPolicy, SigningKeyInfo
from handwritten.runtime.jwt import ALGORITHM, UnknownKeyError
from handwritten.runtime.logging import get_logger

log = get_logger(__name__)

RSA_KEY_BITS = 2048
#: Advisory lock guarding key creation and rotation in the auth database ("MC_K").
_KEY_LOCK_ID = 0x4D435F4B
_KDF_SALT = b"microcommerce/auth/signing-keys/kek/v1"
_AAD_PREFIX = b"microcommerce/auth/signing-key/"
#: An unknown kid triggers a reload at most this often (made-up kids stay cheap).
_UNKNOWN_KID_RELOAD_SECONDS = 1.0


class KeyDecryptionError(RuntimeError):
    """A stored private key does not decrypt with this AUTH_KEY_ENCRYPTION_SECRET."""


class KeyEncryptor:
    """AES-256-GCM sealing of private keys under a scrypt-derived KEK."""

    def __init__(self, secret: str) -> None:
        kek = Scrypt(salt=_KDF_SALT, length=32, n=2**15, r=8, p=1).derive(secret.encode())
        self._aead = AESGCM(kek)

    def encrypt(self, plaintext: bytes, *, kid: str) -> tuple[bytes, bytes]:
        """``(nonce, ciphertext)``; the nonce is random and never reused."""
        nonce = os.urandom(12)
        return nonce, self._aead.encrypt(nonce, plaintext, _AAD_PREFIX + kid.encode())

    def decrypt(self, ciphertext: bytes, nonce: bytes, *, kid: str) -> bytes:
        try:
            return self._aead.decrypt(nonce, ciphertext, _AAD_PREFIX + kid.encode())
        except InvalidTag as exc:
            raise KeyDecryptionError(
                f"signing key {kid} does not decrypt: AUTH_KEY_ENCRYPTION_SECRET differs "
                "from the one it was stored with"
            ) from exc


def jwk_thumbprint(jwk: Mapping[str, str]) -> str:
    """RFC 7638 thumbprint of an RSA JWK (base64url SHA-256): a stable ``kid``."""
    canonical = json.dumps(
        {"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"), sort_keys=True
    )
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass(frozen=True)
class NewKey:
    kid: str
    public_jwk: dict[str, str]
    private_der: bytes


def generate_key() -> NewKey:
    """A fresh RSA key pair with its public JWK and ``kid``."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    exported = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    assert isinstance(exported, dict)
    kid = jwk_thumbprint(exported)
    public_jwk = {"kty": "RSA", "kid": kid, "use": "sig", "alg": ALGORITHM}
    public_jwk |= {"n": str(exported["n"]), "e": str(exported["e"])}
    der = private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return NewKey(kid, public_jwk, der)


def _info(row: Any) -> SigningKeyInfo:
    return SigningKeyInfo(
        kid=row["kid"],
        created_at=row["created_at"],
        activated_at=row["activated_at"],
        retired_at=row["retired_at"],
    )


@dataclass(frozen=True)
class _Snapshot:
    loaded_at: float
    signing_kid: str | None
    published: list[dict[str, str]]
    public_keys: dict[str, Any]


class PostgresSigningKeyStore:
    """Creates, rotates, publishes and hands out the signing keys.

    Also a ``KeySource`` (``key(kid)``), so the service verifies bearer tokens with
    the runtime's verifier against exactly the keys its JWKS publishes.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        encryptor: KeyEncryptor,
        policy: KeyRotationPolicy,
        *,
        clock: Callable[[], datetime],
        cache_seconds: float,
    ) -> None:
        self._pool = pool
        self._encryptor = encryptor
        self._policy = policy
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._snapshot: _Snapshot | None = None
        self._private: tuple[str, Any] | None = None
        self._lock = asyncio.Lock()

    # -- lifecycle ------------------------------------------------------------------
    async def ensure_signing_key(self) -> SigningKeyInfo:
        await self.rotate(force=False)
        kid, _ = await self.signing_key()  # fails fast if the secret is wrong
        async with self._pool.acquire() as connection:
            row = await connection.fetchrow(
                "SELECT kid, created_at, activated_at, retired_at FROM signing_keys WHERE kid = $1",
                kid,
            )
        return _info(row)

    async def rotate(self, *, force: bool) -> SigningKeyInfo | None:
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _KEY_LOCK_ID)
            row = await connection.fetchrow(
                "SELECT kid, created_at, activated_at, retired_at FROM signing_keys "
                "WHERE activated_at IS NOT NULL AND retired_at IS NULL"
            )
            active = None if row is None else _info(row)
            now = self._clock()
            if not force and not self._policy.rotation_due(active, now):
                return None
            key = await asyncio.to_thread(generate_key)
            nonce, ciphertext = self._encryptor.encrypt(key.private_der, kid=key.kid)
            if active is not None:
                await connection.execute(
                    "UPDATE signing_keys SET retired_at = $2 WHERE kid = $1", active.kid, now
                )
            await connection.execute(
                """
                INSERT INTO signing_keys
                    (kid, public_jwk, private_key_ciphertext, nonce, created_at, activated_at)
                VALUES ($1, $2::jsonb, $3, $4, $5, $5)
                """,
                key.kid,
                json.dumps(key.public_jwk),
                ciphertext,
                nonce,
                now,
            )
        self._snapshot = None
        log.info("signing key activated", kid=key.kid, retired=active.kid if active else None)
        return SigningKeyInfo(key.kid, now, now, None)

    # -- reading --------------------------------------------------------------------
    async def _load(self, *, max_age: float) -> _Snapshot:
        snapshot = self._snapshot
        if snapshot is not None and time.monotonic() - snapshot.loaded_at <= max_age:
            return snapshot
        async with self._lock:
            snapshot = self._snapshot
            if snapshot is not None and time.monotonic() - snapshot.loaded_at <= max_age:
                return snapshot
            async with self._pool.acquire() as connection:
                rows = await connection.fetch(
                    "SELECT kid, public_jwk, created_at, activated_at, retired_at "
                    "FROM signing_keys WHERE activated_at IS NOT NULL "
                    "ORDER BY activated_at DESC LIMIT 50"
                )
            jwks = {row["kid"]: json.loads(row["public_jwk"]) for row in rows}
            infos = [_info(row) for row in rows]
            active = self._policy.signing_key(infos)
            published = [jwks[key.kid] for key in self._policy.published(infos, self._clock())]
            snapshot = _Snapshot(
                loaded_at=time.monotonic(),
                signing_kid=None if active is None else active.kid,
                published=published,
                public_keys={jwk["kid"]: RSAAlgorithm.from_jwk(jwk) for jwk in published},
            )
            self._snapshot = snapshot
            return snapshot

    async def jwks(self) -> list[dict[str, str]]:
        return list((await self._load(max_age=self._cache_seconds)).published)

    async def key(self, kid: str) -> Any:
        """The public key of a published ``kid`` (``KeySource`` for token checks)."""
        snapshot = await self._load(max_age=self._cache_seconds)
        if kid not in snapshot.public_keys:
            snapshot = await self._load(
                max_age=min(self._cache_seconds, _UNKNOWN_KID_RELOAD_SECONDS)
            )
        if kid not in snapshot.public_keys:
            raise UnknownKeyError(f"no published key with kid {kid!r}")
        return snapshot.public_keys[kid]

    async def signing_key(self) -> tuple[str, Any]:
        """``(kid, private key)`` of the active key, decrypted once per kid."""
        snapshot = await self._load(max_age=self._cache_seconds)
        kid = snapshot.signing_kid
        if kid is None:
            raise RuntimeError("no active signing key: ensure_signing_key() was not run")
        cached = self._private
        if cached is not None and cached[0] == kid:
            return cached
        async with self._pool.acquire() as connection:
            row = await connection.fetchrow(
                "SELECT private_key_ciphertext, nonce FROM signing_keys WHERE kid = $1", kid
            )
        der = self._encryptor.decrypt(row["private_key_ciphertext"], row["nonce"], kid=kid)
        self._private = (kid, serialization.load_der_private_key(der, password=None))
        return self._private


class JwtSigner:
    """Signs claims with the active key; its ``kid`` goes in the JOSE header."""

    def __init__(self, keys: PostgresSigningKeyStore) -> None:
        self._keys = keys

    async def sign(self, claims: Mapping[str, object]) -> str:
        kid, private_key = await self._keys.signing_key()
        return jwt.encode(dict(claims), private_key, algorithm=ALGORITHM, headers={"kid": kid})
