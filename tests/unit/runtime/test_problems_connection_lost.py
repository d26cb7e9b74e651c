"""A lost database connection is a 503 with Retry-After, not a 500.

Found by the chaos tests (tests/chaos, PostgreSQL connection resets): a reset in the
middle of ``POST /api/orders`` answered 500 "unexpected error", which tells a client
nothing about retrying; it is a transient outage, so 503 + Retry-After.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import httpx
import pytest
from fastapi import FastAPI, Request, Response

from handwritten.runtime.failures import connection_lost
from handwritten.runtime.problems import install_problem_handlers


class _Boom(RuntimeError):
    pass


SEEN: list[int] = []


def make_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.middleware("http")
    async def record(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # Where the services' access log and metrics sit: they must see the 503 sent.
        response = await call_next(request)
        SEEN.append(response.status_code)
        return response

    @app.get("/reset")
    async def reset() -> None:
        raise asyncpg.ConnectionDoesNotExistError(
            "connection was closed in the middle of operation"
        )

    @app.get("/closed-in-transaction")
    async def closed_in_transaction() -> None:
        # What asyncpg raises when a transaction block ends on a connection that died
        # inside it: an InterfaceError whose context is the lost connection.
        try:
            raise asyncpg.ConnectionDoesNotExistError("connection was closed")
        except asyncpg.ConnectionDoesNotExistError:
            raise asyncpg.InterfaceError("the underlying connection is closed") from None

    @app.get("/refused")
    async def refused() -> None:
        raise ConnectionRefusedError(111, "Connect call failed")

    @app.get("/misuse")
    async def misuse() -> None:
        raise asyncpg.InterfaceError("cannot perform operation: another operation is in progress")

    @app.get("/bug")
    async def bug() -> None:
        raise _Boom("a real bug")

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.mark.parametrize("path", ["/reset", "/closed-in-transaction", "/refused"])
async def test_a_lost_connection_is_a_retryable_503(client: httpx.AsyncClient, path: str) -> None:
    SEEN.clear()
    response = await client.get(path)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    assert response.json()["status"] == 503
    assert SEEN == [503]  # an answer, not an exception passing through the middleware


@pytest.mark.parametrize("path", ["/misuse", "/bug"])
async def test_any_other_error_is_still_a_500(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 500
    assert "retry-after" not in response.headers
    assert response.json()["detail"] == "An unexpected error occurred."


def test_the_cause_chain_is_followed_but_a_plain_error_is_not_a_lost_connection() -> None:
    try:
        try:
            raise asyncpg.PostgresConnectionError("gone")
        except asyncpg.PostgresConnectionError as exc:
            raise ValueError("wrapped") from exc
    except ValueError as wrapped:
        assert connection_lost(wrapped)
    assert not connection_lost(ValueError("nothing to do with connections"))
