"""A valid token meeting a service that cannot fetch the signing keys gets 503, not 401.

Found by the chaos soak (tests/chaos/soak.py, every process killed once): the BFF,
restarted while auth was down, answered 401 to valid tokens ("JWKS unavailable") —
which tells a client its credentials are bad and makes it drop them. Nothing is
known about the token then; once the keys can be fetched it is accepted. The JWKS is
served locally, behind a chaos proxy route that refuses connections for a while.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.requests import Request

from generated import catalog
from handwritten.chaos import NO_FAULT, ChaosProxy, Endpoint, Fault, Mode
from handwritten.runtime.auth import RequestAuthenticator
from handwritten.runtime.jwt import JwksClient
from handwritten.runtime.problems import ProblemError
from tests.support.jwks import TokenIssuer, jwks_server


@pytest.fixture(scope="module")
def issuer() -> TokenIssuer:
    return TokenIssuer()


@pytest.fixture(scope="module")
def jwks_url(issuer: TokenIssuer) -> Iterator[str]:
    with jwks_server(issuer) as url:
        yield url


@pytest.fixture
async def auth_route(jwks_url: str) -> AsyncIterator[ChaosProxy]:
    upstream = Endpoint.parse(httpx.URL(jwks_url).netloc.decode())
    proxy = ChaosProxy("auth", Endpoint("127.0.0.1", 0), upstream)
    await proxy.start()
    yield proxy
    await proxy.stop()


def request_with(token: str) -> Request:
    headers = [(b"authorization", f"Bearer {token}".encode())]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


async def test_no_keys_yet_is_503_and_the_same_token_passes_once_they_can_be_fetched(
    issuer: TokenIssuer, jwks_url: str, auth_route: ChaosProxy
) -> None:
    path = httpx.URL(jwks_url).path
    async with httpx.AsyncClient() as http:
        authenticator = RequestAuthenticator(
            JwksClient(f"http://{auth_route.address}{path}", http),
            issuer=catalog.JWT_ISSUER,
            audience=catalog.JWT_AUDIENCE,
        )
        user = uuid.uuid4()
        token = issuer.token(user)
        auth_route.set_fault(Fault(mode=Mode.CLOSE_NEW))  # auth is down
        with pytest.raises(ProblemError) as refused:
            await authenticator.user(request_with(token))
        assert refused.value.status == 503
        assert refused.value.headers == {"Retry-After": "2"}
        assert auth_route.stats.closed_new >= 1

        auth_route.set_fault(NO_FAULT)  # auth is back
        claims = await authenticator.user(request_with(token))
        assert claims.user_id == str(user)


async def test_a_token_signed_by_another_key_is_still_401(
    issuer: TokenIssuer, jwks_url: str
) -> None:
    async with httpx.AsyncClient() as http:
        authenticator = RequestAuthenticator(
            JwksClient(jwks_url, http), issuer=catalog.JWT_ISSUER, audience=catalog.JWT_AUDIENCE
        )
        forged = TokenIssuer(kid=issuer.kid).token()  # same kid, another private key
        with pytest.raises(ProblemError) as refused:
            await authenticator.user(request_with(forged))
        assert refused.value.status == 401
