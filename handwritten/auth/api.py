"""The auth REST API: implements the generated ``AuthHandlers`` on ``AuthService``.

Domain errors become problem+json: 409 duplicate e-mail, 422 with
``errors: [{field, message}]``, 401 for wrong credentials (one generic message,
whether or not the e-mail exists), 429 with ``Retry-After`` when throttled.
"""

from __future__ import annotations

from dataclasses import dataclass

import email_validator
from fastapi import Request, Response
from starlette.responses import JSONResponse

from generated.models.auth import (
    CurrentUser,
    Jwks,
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
)
from generated.models.auth import Role as ApiRole
from generated.models.auth import User as ApiUser
from handwritten.auth.adapters.client_ip import Network, client_address
from handwritten.auth.domain.errors import (
    AuthError,
    EmailAlreadyRegisteredError,
    InvalidCredentialsError,
    InvalidRegistrationError,
    LoginThrottledError,
    RefreshTokenRejectedError,
    UnknownUserError,
)
from handwritten.auth.ports import SigningKeyStore
from handwritten.auth.service import AuthService, IssuedTokens
from handwritten.runtime.auth import RequestAuthenticator
from handwritten.runtime.logging import get_logger
from handwritten.runtime.problems import ProblemError

log = get_logger(__name__)

JWKS_CACHE_CONTROL = "public, max-age=60"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="microcommerce"'}
_KNOWN_ROLES = {role.value for role in ApiRole}


def accept_local_email_domains() -> None:
    """Accept ``.local`` e-mail domains, which email-validator refuses by default.

    The documented development admin is ``admin@microcommerce.local``; without this
    the generated request models would reject it with 422. ``SPECIAL_USE_DOMAIN_NAMES``
    is email-validator's documented, module-level knob; the other special-use
    names (``localhost``, ``invalid``, ``test``…) stay refused.
    """
    if "local" in email_validator.SPECIAL_USE_DOMAIN_NAMES:
        email_validator.SPECIAL_USE_DOMAIN_NAMES.remove("local")


@dataclass(frozen=True)
class AuthComponents:
    """What the handlers use, opened by the app's lifespan."""

    service: AuthService
    keys: SigningKeyStore
    authenticator: RequestAuthenticator


def to_problem(error: AuthError) -> ProblemError:
    """The problem+json answer of a domain error."""
    if isinstance(error, InvalidRegistrationError):
        return ProblemError(
            422,
            "The request is not valid.",
            errors=[{"field": v.field, "message": v.message} for v in error.violations],
        )
    if isinstance(error, EmailAlreadyRegisteredError):
        return ProblemError(409, "An account with this e-mail address already exists.")
    if isinstance(error, InvalidCredentialsError):
        return ProblemError(401, "The e-mail address or password is incorrect.")
    if isinstance(error, LoginThrottledError):
        return ProblemError(
            429,
            "Too many failed login attempts. Try again later.",
            headers={"Retry-After": str(error.retry_after_seconds)},
        )
    if isinstance(error, RefreshTokenRejectedError):
        log.info("refresh token rejected", reason=str(error.reason))
        return ProblemError(401, "The refresh token is invalid, expired or revoked.")
    if isinstance(error, UnknownUserError):
        return ProblemError(401, "A valid bearer token is required.", headers=_BEARER_CHALLENGE)
    raise error


def _token_response(tokens: IssuedTokens) -> JSONResponse:
    pair = TokenPair(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        token_type="Bearer",  # noqa: S106 (a token type, not a secret)
        expires_in=tokens.expires_in,
    )
    return JSONResponse(pair.model_dump(mode="json"), headers=_NO_STORE)


class AuthApi:
    """The handlers; ``attach`` hands them the components once the app has started."""

    def __init__(
        self, *, trusted_proxy_hops: int, trusted_proxies: tuple[Network, ...] | None = None
    ) -> None:
        self._trusted_proxy_hops = trusted_proxy_hops
        self._trusted_proxies = trusted_proxies
        self._components: AuthComponents | None = None

    def attach(self, components: AuthComponents | None) -> None:
        self._components = components

    @property
    def components(self) -> AuthComponents:
        if self._components is None:
            raise RuntimeError("the auth app has not started (lifespan not run)")
        return self._components

    def client(self, request: Request) -> str:
        """The caller's address: from X-Forwarded-For when a trusted proxy sent it."""
        forwarded = ",".join(request.headers.getlist("x-forwarded-for")) or None
        peer = request.client.host if request.client else None
        return client_address(
            forwarded,
            peer,
            trusted_hops=self._trusted_proxy_hops,
            trusted_proxies=self._trusted_proxies,
        )

    async def register_user(self, request: Request, *, body: RegisterRequest) -> ApiUser:
        try:
            user = await self.components.service.register(
                email=str(body.email), password=body.password, name=body.name
            )
        except AuthError as error:
            raise to_problem(error) from None
        return ApiUser.model_validate(
            {"id": user.id, "email": user.email, "name": user.name, "createdAt": user.created_at}
        )

    async def login(self, request: Request, *, body: LoginRequest) -> Response:
        try:
            tokens = await self.components.service.login(
                email=str(body.email), password=body.password, client=self.client(request)
            )
        except AuthError as error:
            raise to_problem(error) from None
        return _token_response(tokens)

    async def refresh_tokens(self, request: Request, *, body: RefreshRequest) -> Response:
        try:
            tokens = await self.components.service.refresh(body.refresh_token)
        except AuthError as error:
            raise to_problem(error) from None
        return _token_response(tokens)

    async def logout(self, request: Request, *, body: LogoutRequest) -> Response:
        await self.components.service.logout(body.refresh_token)
        return Response(status_code=204)

    async def get_jwks(self, request: Request) -> Response:
        jwks = Jwks.model_validate({"keys": await self.components.keys.jwks()})
        return JSONResponse(
            jwks.model_dump(mode="json"), headers={"Cache-Control": JWKS_CACHE_CONTROL}
        )

    async def get_current_user(self, request: Request) -> CurrentUser:
        # The same verification every service runs (runtime RequestAuthenticator),
        # against the keys this service publishes.
        claims = await self.components.authenticator.user(request)
        try:
            user = await self.components.service.current_user(claims.user_id)
        except AuthError as error:
            raise to_problem(error) from None
        return CurrentUser.model_validate(
            {
                "id": user.id,
                "email": user.email,
                "name": user.name,
                "roles": [role for role in user.roles if role in _KNOWN_ROLES],
            }
        )
