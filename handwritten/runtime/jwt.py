"""RS256 access-token verification against a cached JWKS.

Used twice on purpose: by the gateway (before proxying) and by every service
(defence in depth — a request that bypassed the gateway is never trusted). Only
RS256 is accepted: ``alg: none`` in any casing, HS256 signed with the public key and
every other algorithm fail before any key is used.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import jwt
from jwt.algorithms import RSAAlgorithm

ALGORITHM = "RS256"
#: Claims every access token must carry.
REQUIRED_CLAIMS = ("iss", "aud", "sub", "exp", "iat", "nbf", "jti")


class InvalidTokenError(Exception):
    """The bearer token is missing, malformed, badly signed or not valid now."""


class KeysUnavailableError(InvalidTokenError):
    """The JWKS could not be fetched and no key is cached: the token cannot be checked
    now, which says nothing about the token (a service answers 503, not 401)."""


class UnknownKeyError(InvalidTokenError):
    """No JWKS key has the token's ``kid`` (even after refetching)."""


@dataclass(frozen=True)
class AccessClaims:
    """What a verified access token says about its bearer."""

    user_id: str
    roles: frozenset[str]
    token_id: str
    expires_at: int
    raw: dict[str, Any]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not authorization:
        raise InvalidTokenError("missing bearer token")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidTokenError("authorization is not a bearer token")
    return token.strip()


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, checked for ``alg`` and ``kid`` before any key is looked up."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidTokenError(f"malformed token: {exc}") from exc
    if header.get("alg") != ALGORITHM:
        raise InvalidTokenError(f"algorithm {header.get('alg')!r} is not allowed")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidTokenError("token has no kid")
    return header


class KeySource(Protocol):
    """Where verification finds the public key of a ``kid``: a JWKS over HTTP
    (``JwksClient``) everywhere, or the signing-key store inside the auth service."""

    async def key(self, kid: str) -> Any:
        """The public key with id ``kid``; ``UnknownKeyError`` if there is none."""
        ...


class JwksClient:
    """Fetches and caches a JWKS; refetches when asked for an unknown ``kid``.

    Refetches are spaced by ``min_refetch_seconds`` so a flood of tokens with made-up
    kids cannot turn into a flood of JWKS requests.
    """

    def __init__(
        self,
        url: str,
        http: httpx.AsyncClient,
        *,
        ttl_seconds: float = 300.0,
        min_refetch_seconds: float = 5.0,
    ) -> None:
        self.url = url
        self._http = http
        self._ttl = ttl_seconds
        self._min_refetch = min_refetch_seconds
        self._keys: dict[str, Any] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> Any:
        """The RSA public key with id ``kid``; ``UnknownKeyError`` if there is none."""
        now = time.monotonic()
        if kid in self._keys and now - self._fetched_at < self._ttl:
            return self._keys[kid]
        async with self._lock:
            stale = time.monotonic() - self._fetched_at
            if (kid not in self._keys and stale >= self._min_refetch) or stale >= self._ttl:
                await self._refresh()
        if kid not in self._keys:
            raise UnknownKeyError(f"no key with kid {kid!r}")
        return self._keys[kid]

    async def _refresh(self) -> None:
        try:
            response = await self._http.get(self.url, timeout=5.0)
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            if not self._keys:
                raise KeysUnavailableError(f"JWKS unavailable: {exc}") from exc
            return  # keep serving the keys we have
        keys = {}
        for entry in document.get("keys", []):
            if (
                entry.get("kty") == "RSA"
                and entry.get("kid")
                and entry.get("alg", ALGORITHM) == ALGORITHM
            ):
                keys[entry["kid"]] = RSAAlgorithm.from_jwk(json.dumps(entry))
        self._keys = keys
        self._fetched_at = time.monotonic()


async def verify_access_token(
    token: str, jwks: KeySource, *, issuer: str, audience: str, leeway_seconds: int = 5
) -> AccessClaims:
    """Verify signature (RS256, by kid), iss, aud, exp, nbf and required claims."""
    header = unverified_header(token)
    key = await jwks.key(header["kid"])
    try:
        claims = jwt.decode(
            token,
            key=key,
            algorithms=[ALGORITHM],
            issuer=issuer,
            audience=audience,
            leeway=leeway_seconds,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.PyJWTError as exc:
        raise InvalidTokenError(str(exc)) from exc
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise InvalidTokenError("roles must be a list of strings")
    return AccessClaims(
        user_id=str(claims["sub"]),
        roles=frozenset(roles),
        token_id=str(claims["jti"]),
        expires_at=int(claims["exp"]),
        raw=claims,
    )
