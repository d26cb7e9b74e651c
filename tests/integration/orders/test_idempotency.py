"""Idempotency-Key on POST /api/orders, and the shared store's guarantees."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import Counter

import pytest

from handwritten.runtime.idempotency import (
    Claim,
    ClaimLostError,
    IdempotencyStore,
    KeyInFlightError,
    KeyReusedError,
    StoredResponse,
)
from tests.integration.orders.conftest import (
    Inventory,
    Orders,
    Schema,
    User,
    assert_problem,
    orders_settings,
    running,
)

PARALLEL = 20


def _store(orders: Orders, **options: dt.timedelta) -> IdempotencyStore:
    assert orders.runtime.pool is not None
    return IdempotencyStore(orders.runtime.pool, **options)


async def test_same_key_same_body_replays_the_response_and_creates_one_order(
    orders: Orders, inventory: Inventory, customer: User
) -> None:
    product = await inventory.add_product(price="19.90", stock=10)
    key = str(uuid.uuid4())
    first = await orders.create(customer, [(product, 2)], key=key)
    assert first.status_code == 201, first.text
    assert first.headers["idempotency-replayed"] == "false"

    second = await orders.create(customer, [(product, 2)], key=key)

    assert second.status_code == 201
    assert second.headers["idempotency-replayed"] == "true"
    assert second.content == first.content
    assert second.headers["location"] == first.headers["location"]
    assert await orders.orders_of(customer.user_id) == 1


async def test_same_key_other_body_is_422(
    orders: Orders, inventory: Inventory, customer: User
) -> None:
    product = await inventory.add_product(price="19.90", stock=10)
    key = str(uuid.uuid4())
    assert (await orders.create(customer, [(product, 1)], key=key)).status_code == 201
    other = await orders.create(customer, [(product, 2)], key=key)
    problem = assert_problem(other, 422)
    assert problem["errors"][0]["field"] == "Idempotency-Key"
    assert await orders.orders_of(customer.user_id) == 1


async def test_keys_are_scoped_per_user(
    orders: Orders, inventory: Inventory, customer: User, other_customer: User
) -> None:
    product = await inventory.add_product(price="1.00", stock=10)
    key = str(uuid.uuid4())
    mine = await orders.create(customer, [(product, 1)], key=key)
    theirs = await orders.create(other_customer, [(product, 1)], key=key)
    assert mine.status_code == theirs.status_code == 201
    assert theirs.headers["idempotency-replayed"] == "false"
    assert mine.json()["orderId"] != theirs.json()["orderId"]


async def test_parallel_identical_requests_create_exactly_one_order(
    orders: Orders, inventory: Inventory, customer: User
) -> None:
    product = await inventory.add_product(price="5.55", stock=100)
    key = str(uuid.uuid4())

    responses = await asyncio.gather(
        *(orders.create(customer, [(product, 1)], key=key) for _ in range(PARALLEL))
    )

    outcomes = Counter((r.status_code, r.headers.get("idempotency-replayed")) for r in responses)
    assert outcomes[(201, "false")] == 1, outcomes
    assert set(outcomes) <= {(201, "false"), (201, "true"), (409, None)}, outcomes
    created = next(r for r in responses if r.headers.get("idempotency-replayed") == "false")
    for response in responses:
        if response.status_code == 201:
            assert response.content == created.content
        else:
            assert_problem(response, 409)
            assert response.headers["retry-after"]
    assert await orders.orders_of(customer.user_id) == 1
    # Once the first is done, every retry is a replay.
    late = await orders.create(customer, [(product, 1)], key=key)
    assert late.headers["idempotency-replayed"] == "true"
    assert late.content == created.content


async def test_an_out_of_stock_answer_is_replayed_too(
    orders: Orders, inventory: Inventory, customer: User
) -> None:
    product = await inventory.add_product(price="5.00", stock=1)
    key = str(uuid.uuid4())
    first = await orders.create(customer, [(product, 5)], key=key)
    assert_problem(first, 409)
    second = await orders.create(customer, [(product, 5)], key=key)
    assert second.status_code == 409
    assert second.headers["idempotency-replayed"] == "true"
    assert second.json() == first.json()
    assert await orders.orders_of(customer.user_id) == 0


async def test_an_unexpected_failure_releases_the_key_for_a_retry(
    orders: Orders, inventory: Inventory, schema: Schema, jwks_url: str, customer: User
) -> None:
    product = await inventory.add_product(price="8.00", stock=5)
    key = str(uuid.uuid4())
    dead = orders_settings(
        schema, jwks_url, inventory_port=1, outbox_relay_enabled=False, orders_cache_ttl_seconds=0
    )
    async with running(dead) as no_inventory:
        failed = await no_inventory.create(customer, [(product, 1)], key=key)
        assert_problem(failed, 503)
    retried = await orders.create(customer, [(product, 1)], key=key)
    assert retried.status_code == 201, retried.text
    assert retried.headers["idempotency-replayed"] == "false"
    assert await orders.orders_of(customer.user_id) == 1


async def test_store_in_flight_reuse_and_lost_claims(orders: Orders) -> None:
    store = _store(orders, in_flight_timeout=dt.timedelta(milliseconds=200))
    scope, key = str(uuid.uuid4()), "k-1"
    claim = await store.begin(scope, key, "fingerprint-a")
    assert isinstance(claim, Claim)
    with pytest.raises(KeyInFlightError):
        await store.begin(scope, key, "fingerprint-a")
    with pytest.raises(KeyReusedError):
        await store.begin(scope, key, "fingerprint-b")

    async def taken_over() -> Claim | StoredResponse | None:
        try:
            return await store.begin(scope, key, "fingerprint-a")
        except KeyInFlightError:
            return None

    # After the in-flight timeout the same request may take an abandoned claim over…
    deadline = asyncio.get_running_loop().time() + 5
    takeover = await taken_over()
    while takeover is None and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
        takeover = await taken_over()
    assert isinstance(takeover, Claim)
    # …and the original holder can no longer complete: its work would roll back.
    with pytest.raises(ClaimLostError):
        await store.complete(claim, StoredResponse(201, b"{}"))
    await store.complete(takeover, StoredResponse(201, b'{"ok":true}', (("location", "/x"),)))
    replayed = await store.begin(scope, key, "fingerprint-a")
    assert replayed == StoredResponse(201, b'{"ok":true}', (("location", "/x"),))


async def test_expired_keys_are_purged_and_may_be_used_again(
    orders: Orders, inventory: Inventory, customer: User
) -> None:
    product = await inventory.add_product(price="3.00", stock=10)
    key = str(uuid.uuid4())
    assert (await orders.create(customer, [(product, 1)], key=key)).status_code == 201
    expires = await orders.db.fetchval(
        "SELECT expires_at - completed_at FROM idempotency_keys WHERE scope = $1 AND key = $2",
        str(customer.user_id),
        key,
    )
    assert expires >= dt.timedelta(hours=24)
    await orders.db.execute(
        "UPDATE idempotency_keys SET expires_at = now() - interval '1 second'"
        " WHERE scope = $1 AND key = $2",
        str(customer.user_id),
        key,
    )
    assert await _store(orders).purge_expired() >= 1
    assert (
        await orders.db.fetchval(
            "SELECT count(*) FROM idempotency_keys WHERE scope = $1 AND key = $2",
            str(customer.user_id),
            key,
        )
        == 0
    )
    fresh = await orders.create(customer, [(product, 2)], key=key)
    assert fresh.status_code == 201
    assert fresh.headers["idempotency-replayed"] == "false"
    assert await orders.orders_of(customer.user_id) == 2
