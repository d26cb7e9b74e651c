"""Verification keys for the jwt plugin: the auth service's JWKS, via runtime/jwt.py.

Kong looks a token's ``kid`` up among its consumer's ``jwt_secrets`` (kept in step with
the JWKS by ``kong_sync``); this gateway asks the JWKS directly, cached, refetching
(throttled) when it meets an unknown ``kid`` — so a rotated-in key works at once.
"""

from __future__ import annotations

from typing import Any

import jwt
from jwt.algorithms import RSAAlgorithm

from handwritten.runtime.jwt import InvalidTokenError, JwksClient, UnknownKeyError
from handwritten.runtime.logging import get_logger

log = get_logger(__name__)
_RS256 = RSAAlgorithm(RSAAlgorithm.SHA256)


class JwksKeys:
    """RSA public keys by ``kid``; None when the JWKS has no such key (or is down)."""

    def __init__(self, client: JwksClient) -> None:
        self._client = client

    async def find(self, kid: str) -> Any | None:
        try:
            return await self._client.key(kid)
        except UnknownKeyError:
            return None
        except InvalidTokenError as exc:  # the JWKS could not be fetched at all
            log.warning("jwks_unavailable", url=self._client.url, error=str(exc))
            return None
        except (jwt.PyJWTError, ValueError, TypeError, AttributeError) as exc:
            # A JWKS document or JWK we cannot use: fail closed (401), say why.
            log.error("jwks_unusable", url=self._client.url, kid=kid, error=repr(exc))
            return None


def verify_rs256(signing_input: bytes, signature: bytes, key: Any) -> bool:
    """Whether ``signature`` is ``key``'s RS256 (PKCS#1 v1.5, SHA-256) signature."""
    return bool(_RS256.verify(signing_input, key, signature))
