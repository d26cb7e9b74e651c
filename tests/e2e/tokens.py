"""Tokens signed with the auth service's real signing key, for negative tests.

The harness reads the active private key the way the auth service does (from its
database, decrypted with AUTH_KEY_ENCRYPTION_SECRET), so a forged token differs
from a genuine one only in the claim under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from generated import catalog
from handwritten.auth.app import open_key_store
from handwritten.auth.settings import AuthSettings
from handwritten.runtime.db import create_pool


async def auth_signing_key() -> tuple[str, Any]:
    """``(kid, private key)`` of the auth service's active signing key."""
    settings = AuthSettings()
    assert settings.database_url is not None
    pool = await create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        store = await open_key_store(pool, settings)
        return await store.signing_key()
    finally:
        await pool.close()


def claims(user_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    """Valid access-token claims; override any of them."""
    now = int(time.time())
    values: dict[str, Any] = {
        "iss": catalog.JWT_ISSUER,
        "aud": catalog.JWT_AUDIENCE,
        "sub": user_id or str(uuid.uuid4()),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": str(uuid.uuid4()),
        "roles": ["customer"],
    }
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not None}


def sign(payload: dict[str, Any], key: Any, kid: str) -> str:
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(payload: dict[str, Any], alg: str, kid: str) -> str:
    """An ``alg: none`` style token (any casing), with an empty signature."""
    header = _b64(json.dumps({"alg": alg, "typ": "JWT", "kid": kid}).encode())
    return f"{header}.{_b64(json.dumps(payload).encode())}."


def hs256_with_public_key(payload: dict[str, Any], private_key: Any, kid: str) -> str:
    """The classic key-confusion attack: HMAC keyed with the RSA public key's PEM."""
    pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = _b64(json.dumps(payload).encode())
    signature = hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def tampered(token: str, **changes: Any) -> str:
    """The same signature over a payload with ``changes`` applied."""
    header, body, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(changes)
    return f"{header}.{_b64(json.dumps(payload).encode())}.{signature}"


def stranger_key() -> Any:
    """An RSA key the platform has never published."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)
