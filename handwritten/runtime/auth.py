"""Who is calling: every service verifies the bearer token itself (defence in depth).

The gateway verifies too, but a request that reached a service some other way must
not be trusted, and ``X-User-ID`` is never read: the user id and roles come from
the verified token only.
"""

from __future__ import annotations

from starlette.requests import Request

from handwritten.runtime.jwt import (
    AccessClaims,
    InvalidTokenError,
    KeySource,
    KeysUnavailableError,
    bearer_token,
    verify_access_token,
)
from handwritten.runtime.logging import get_logger
from handwritten.runtime.problems import ProblemError

log = get_logger(__name__)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="microcommerce"'}
#: Seconds a client is told to wait when the signing keys cannot be fetched.
KEYS_RETRY_AFTER = "2"


class RequestAuthenticator:
    """Turns a request's bearer token into verified claims, or a 401/403 problem (503
    while the signing keys cannot be fetched: the token may well be valid)."""

    def __init__(self, jwks: KeySource, *, issuer: str, audience: str) -> None:
        self._jwks = jwks
        self._issuer = issuer
        self._audience = audience

    async def user(self, request: Request) -> AccessClaims:
        """The verified caller; 401 problem+json when the token is not acceptable."""
        try:
            token = bearer_token(request.headers.get("authorization"))
            claims = await verify_access_token(
                token, self._jwks, issuer=self._issuer, audience=self._audience
            )
        except KeysUnavailableError as exc:
            # E.g. a service restarted while auth is down: the token may be perfectly
            # valid, so no 401 (clients would drop it); retry once keys can be fetched.
            log.warning("token not verifiable now", reason=str(exc))
            raise ProblemError(
                503,
                "The token cannot be verified right now; retry shortly.",
                headers={"Retry-After": KEYS_RETRY_AFTER},
            ) from exc
        except InvalidTokenError as exc:
            log.info("token rejected", reason=str(exc))
            raise ProblemError(
                401, "A valid bearer token is required.", headers=_CHALLENGE
            ) from exc
        request.scope.setdefault("state", {})["user_id"] = claims.user_id
        return claims

    async def admin(self, request: Request) -> AccessClaims:
        """The verified caller, who must have the ``admin`` role (403 otherwise)."""
        claims = await self.user(request)
        if not claims.is_admin:
            raise ProblemError(403, "This operation needs the admin role.")
        return claims
