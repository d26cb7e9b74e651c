"""A failed request's Idempotency-Key is released even while its database connection
is being reset, so a retry runs the request instead of getting 409 for a minute.

Found by the chaos tests (tests/chaos, PostgreSQL connections reset): the release
ran on a connection the reset had just killed, failed once, and left the key "in
flight" until the in-flight timeout. Real PostgreSQL, reached through a chaos proxy
route that resets every connection, old and new, for a moment.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from starlette.requests import Request
from starlette.responses import Response

from handwritten.chaos import NO_FAULT, ChaosProxy, Endpoint, Fault, Mode
from handwritten.runtime.idempotency import (
    Claim,
    IdempotencyStore,
    migrate_idempotency,
    run_idempotent,
)

ORDERS = "postgresql://orders:orders@{address}/orders"


@pytest.fixture
async def route() -> AsyncIterator[ChaosProxy]:
    proxy = ChaosProxy("postgres", Endpoint("127.0.0.1", 0), Endpoint("127.0.0.1", 5432))
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def store(route: ChaosProxy) -> AsyncIterator[IdempotencyStore]:
    schema = f"test_idem_{uuid.uuid4().hex[:10]}"
    direct = await asyncpg.connect(ORDERS.format(address="127.0.0.1:5432"))
    await direct.execute(f"CREATE SCHEMA {schema}")
    url = f"{ORDERS.format(address=route.address)}?search_path={schema}"
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as connection:
            await migrate_idempotency(connection)
        yield IdempotencyStore(pool)
    finally:
        route.set_fault(NO_FAULT)
        await pool.close()
        await direct.execute(f"DROP SCHEMA {schema} CASCADE")
        await direct.close()


def post(body: bytes) -> Request:
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/api/orders",
        "raw_path": b"/api/orders",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
        "scheme": "http",
        "server": ("test", 80),
        "root_path": "",
    }

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


async def test_the_key_of_a_request_failing_with_its_connection_is_released(
    route: ChaosProxy, store: IdempotencyStore
) -> None:
    scope, key = str(uuid.uuid4()), f"key-{uuid.uuid4()}"
    back = asyncio.Event()

    def database_back() -> None:
        route.set_fault(NO_FAULT)
        back.set()

    async def work_losing_the_database(claim: Claim) -> Response:
        # The database goes away in the middle of the request, and stays away a moment.
        route.set_fault(Fault(mode=Mode.RESET))
        asyncio.get_running_loop().call_later(0.5, database_back)
        raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle")

    with pytest.raises(asyncpg.ConnectionDoesNotExistError):
        await run_idempotent(
            store, post(b"{}"), scope=scope, key=key, work=work_losing_the_database
        )
    assert route.stats.resets > 0  # the release really met a reset connection
    await asyncio.wait_for(back.wait(), 10)

    async def work(claim: Claim) -> Response:
        return Response(b"{}", status_code=201, media_type="application/json")

    retried = await run_idempotent(store, post(b"{}"), scope=scope, key=key, work=work)
    assert retried.status_code == 201  # not 409 "still in flight"
    assert retried.headers["idempotency-replayed"] == "false"
