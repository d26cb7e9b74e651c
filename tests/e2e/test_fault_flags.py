"""Saga fault flags through the gateway: every step's failure path on the running stack.

The points come from the generated module (``generated.sagas.fault_points``), so a new
step of the saga spec gets its tests here with no edit. Each test switches flags on
through the participants' admin endpoints (``<prefix>/admin/faults/{point}``) scoped
to a correlation id of its own, which it sends as ``X-Correlation-ID`` when placing
its order (the saga inherits it): the stack is shared, and nobody else's order ever
meets these flags. Every flag is switched off again in ``finally``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from generated.sagas.create_order import CREATE_ORDER
from generated.sagas.fault_points import FAULT_POINTS
from generated.sagas.types import CommandAction, FaultPoint, SagaStep
from tests.e2e.conftest import Account, register_and_login
from tests.e2e.saga_support import (
    CONFIRMED_OR_BEYOND,
    event_types,
    get_saga,
    new_product,
    order_body,
    payment_rows,
    poll,
    records_of_order,
    stock,
    wait_saga_terminal,
    wait_status,
)

STOCK = 5
POINTS = [p for p in FAULT_POINTS.values() if p.saga == CREATE_ORDER.name]
ACTIONS = [p for p in POINTS if p.phase == "action"]
COMPENSATIONS = [p for p in POINTS if p.phase == "compensation"]
#: The step whose command charges the order (its success needs a refund to undo).
PAYMENT_STEP = next(
    s.name
    for s in CREATE_ORDER.steps
    if isinstance(s.action, CommandAction) and s.action.topic == "payments.requested"
)
#: Room for every retry and timeout of a step before the saga settles.
SETTLE_SECONDS = 90


def _index(step_name: str) -> int:
    return next(i for i, s in enumerate(CREATE_ORDER.steps) if s.name == step_name)


def _admin_path(point: FaultPoint) -> str:
    assert point.admin_path is not None, f"{point.participant} serves no fault flag endpoint"
    return point.admin_path


class Flags:
    """Sets flags scoped to one correlation id and remembers them for ``clear_all``."""

    def __init__(self, gateway: httpx.AsyncClient, admin: Account) -> None:
        self.gateway = gateway
        self.admin = admin
        self.marker = f"fault-e2e-{uuid.uuid4().hex}"
        self._set: list[tuple[FaultPoint, dict[str, str]]] = []

    async def set(
        self, point: FaultPoint, mode: str, *, marker: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        match = {"correlationId": marker or self.marker}
        self._set.append((point, match))
        response = await self.gateway.put(
            f"{_admin_path(point)}/{point.name}",
            json={"mode": mode, "match": match, "ttlSeconds": 300, **extra},
            headers=self.admin.bearer,
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def clear(self, point: FaultPoint, match: dict[str, str]) -> None:
        response = await self.gateway.delete(
            f"{_admin_path(point)}/{point.name}", params=match, headers=self.admin.bearer
        )
        assert response.status_code == 204, response.text

    async def clear_all(self) -> None:
        for point, match in self._set:
            await self.clear(point, match)


@pytest.fixture
async def flags(gateway: httpx.AsyncClient, admin: Account) -> AsyncIterator[Flags]:
    switchboard = Flags(gateway, admin)
    try:
        yield switchboard
    finally:
        await switchboard.clear_all()


async def place(
    gateway: httpx.AsyncClient, account: Account, product: str, correlation_id: str
) -> str:
    created = await gateway.post(
        "/api/orders",
        json=order_body(product),
        headers={**account.bearer, "X-Correlation-ID": correlation_id},
    )
    assert created.status_code == 201, created.text
    return str(created.json()["orderId"])


async def payment_of(gateway: httpx.AsyncClient, admin: Account, order_id: str) -> Any:
    response = await gateway.get(f"/api/payments/orders/{order_id}", headers=admin.bearer)
    assert response.status_code in (200, 404), response.text
    return response.json() if response.status_code == 200 else None


def steps_by_name(saga: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in saga["steps"]}


async def assert_turned_back(
    gateway: httpx.AsyncClient,
    account: Account,
    admin: Account,
    order_id: str,
    product: str,
    *,
    failed: SagaStep,
    reason: str,
    failed_status: str = "FAILED",
) -> dict[str, Any]:
    """The saga compensated everything done before ``failed`` and canceled the order."""
    saga = await wait_saga_terminal(gateway, account, order_id, seconds=SETTLE_SECONDS)
    assert saga["state"] == "COMPENSATED", saga
    order = await wait_status(gateway, account, order_id, {"CANCELED"}, seconds=30)
    assert order["cancelReason"] == reason, order
    at = _index(failed.name)
    expected = {
        step.name: (
            "COMPENSATED"
            if i < at and step.compensation is not None
            else failed_status
            if i == at
            else "SKIPPED"
        )
        for i, step in enumerate(CREATE_ORDER.steps)
    }
    assert {s["name"]: s["status"] for s in saga["steps"]} == expected, saga
    # Compensated means undone: the stock is back, a charge is given back.
    assert await stock(gateway, product) == (STOCK, 0)
    payment = await payment_of(gateway, admin, order_id)
    if at > _index(PAYMENT_STEP):
        assert payment is not None and payment["status"] == "REFUNDED", payment
    elif at == _index(PAYMENT_STEP):
        assert payment is not None and payment["status"] == "FAILED", payment
        assert payment["failureReason"] == "GATEWAY_ERROR", payment
    else:
        assert payment is None or payment["status"] == "VOIDED", payment
    return saga


@pytest.mark.parametrize("point", ACTIONS, ids=[p.name for p in ACTIONS])
async def test_a_failing_step_takes_its_failure_path(
    point: FaultPoint, gateway: httpx.AsyncClient, account: Account, admin: Account, flags: Flags
) -> None:
    step = CREATE_ORDER.step(point.step)
    product = await new_product(gateway, admin, stock=STOCK)
    await flags.set(point, "fail")
    order_id = await place(gateway, account, product, flags.marker)

    if step.kind != "retriable":
        assert step.on_rejected is not None
        await assert_turned_back(
            gateway, account, admin, order_id, product, failed=step, reason=step.on_rejected.reason
        )
        return

    # After the pivot the saga only moves forward: the step is retried while it fails…
    async def retried() -> bool:
        current = steps_by_name(await get_saga(gateway, account, order_id))[step.name]
        return int(current["attempts"]) >= 2

    await poll(retried, seconds=SETTLE_SECONDS, what=f"{step.name} to be retried")
    saga = await get_saga(gateway, account, order_id)
    assert saga["state"] == "RUNNING" and saga["currentStep"] == step.name, saga
    assert "injected fault" in (steps_by_name(saga)[step.name]["error"] or ""), saga
    # …and once the fault is gone, it goes through.
    await flags.clear_all()
    saga = await wait_saga_terminal(gateway, account, order_id, seconds=SETTLE_SECONDS)
    assert saga["state"] == "COMPLETED", saga
    order = await wait_status(gateway, account, order_id, CONFIRMED_OR_BEYOND, seconds=30)
    assert order["status"] in CONFIRMED_OR_BEYOND, order
    assert await stock(gateway, product) == (STOCK - 1, 0)


def _trigger(step: SagaStep) -> SagaStep:
    """The first later step whose failure turns the saga back (compensating ``step``)."""
    following = CREATE_ORDER.steps[_index(step.name) + 1 :]
    return next(s for s in following if s.kind != "retriable" and s.on_rejected is not None)


@pytest.mark.parametrize("point", COMPENSATIONS, ids=[p.name for p in COMPENSATIONS])
async def test_a_failing_compensation_is_retried_until_it_succeeds(
    point: FaultPoint, gateway: httpx.AsyncClient, account: Account, admin: Account, flags: Flags
) -> None:
    step = CREATE_ORDER.step(point.step)
    trigger = _trigger(step)
    assert trigger.on_rejected is not None
    product = await new_product(gateway, admin, stock=STOCK)
    await flags.set(FAULT_POINTS[f"{CREATE_ORDER.name}.{trigger.name}"], "fail")
    await flags.set(point, "fail", times=1)
    order_id = await place(gateway, account, product, flags.marker)

    saga = await assert_turned_back(
        gateway,
        account,
        admin,
        order_id,
        product,
        failed=trigger,
        reason=trigger.on_rejected.reason,
    )
    # The compensation failed (the flag fired once, and so is used up) and was retried
    # until it went through (more than twice only if the stack was slow to answer).
    compensated = steps_by_name(saga)[step.name]
    assert compensated["attempts"] >= 2, saga
    listed = (await gateway.get(_admin_path(point), headers=admin.bearer)).json()
    assert not [
        f
        for f in listed["flags"]
        if f["point"] == point.name and f["match"] == {"correlationId": flags.marker}
    ], listed


async def test_a_duplicated_payment_reply_charges_once(
    gateway: httpx.AsyncClient,
    account: Account,
    admin: Account,
    flags: Flags,
    kafka_bootstrap: str,
) -> None:
    point = FAULT_POINTS[f"{CREATE_ORDER.name}.{PAYMENT_STEP}"]
    product = await new_product(gateway, admin, stock=STOCK)
    await flags.set(point, "duplicate")
    order_id = await place(gateway, account, product, flags.marker)

    saga = await wait_saga_terminal(gateway, account, order_id, seconds=SETTLE_SECONDS)
    assert saga["state"] == "COMPLETED", saga
    payment_step = steps_by_name(saga)[PAYMENT_STEP]
    assert (payment_step["status"], payment_step["attempts"]) == ("SUCCEEDED", 1), saga

    # The payment service answered twice: two payments.processed for the order…
    replies: list[Any] = []

    async def answered_twice() -> bool:
        replies[:] = await records_of_order(kafka_bootstrap, ["payments.processed"], order_id)
        return len(replies) >= 2

    await poll(answered_twice, seconds=30, what="both payments.processed replies", interval=2)
    assert len(replies) == 2, replies
    # …naming one payment and one gateway transaction: charged once.
    bodies = [json.loads(r.value) for r in replies]
    assert len({(b["paymentId"], b["gatewayTransactionId"]) for b in bodies}) == 1, bodies
    assert await payment_rows(order_id) == 1
    payment = await payment_of(gateway, admin, order_id)
    assert payment is not None and payment["status"] == "SUCCEEDED", payment
    assert payment["gatewayTransactionId"] == bodies[0]["gatewayTransactionId"]
    # The orchestrator took the second reply for the duplicate it is: confirmed once.
    assert (await event_types(gateway, account, order_id)).count("OrderConfirmed") == 1
    assert await stock(gateway, product) == (STOCK - 1, 0)


async def test_a_hanging_step_times_out_and_compensates(
    gateway: httpx.AsyncClient, account: Account, admin: Account, flags: Flags
) -> None:
    # The step with the shortest timeout keeps the test short; every attempt hangs.
    candidates = [p for p in ACTIONS if p.transport == "grpc"]
    point = min(candidates, key=lambda p: p.timeout_ms)
    step = CREATE_ORDER.step(point.step)
    outcome = step.on_timeout or step.on_rejected
    assert outcome is not None
    product = await new_product(gateway, admin, stock=STOCK)
    await flags.set(point, "hang")
    order_id = await place(gateway, account, product, flags.marker)

    # A timed-out call may have acted: the step itself is compensated too.
    saga = await assert_turned_back(
        gateway,
        account,
        admin,
        order_id,
        product,
        failed=step,
        reason=outcome.reason,
        failed_status="COMPENSATED" if step.compensation is not None else "FAILED",
    )
    assert "DEADLINE_EXCEEDED" in (steps_by_name(saga)[step.name]["error"] or ""), saga


async def test_a_flag_scoped_to_another_correlation_id_leaves_an_order_alone(
    gateway: httpx.AsyncClient, account: Account, admin: Account, flags: Flags
) -> None:
    point = FAULT_POINTS[f"{CREATE_ORDER.name}.{PAYMENT_STEP}"]
    product = await new_product(gateway, admin, stock=STOCK)
    await flags.set(point, "fail")
    order_id = await place(gateway, account, product, f"other-{uuid.uuid4().hex}")
    saga = await wait_saga_terminal(gateway, account, order_id, seconds=SETTLE_SECONDS)
    assert saga["state"] == "COMPLETED", saga


async def test_a_flag_scoped_to_a_user_hits_only_that_users_orders(
    gateway: httpx.AsyncClient, account: Account, admin: Account, flags: Flags
) -> None:
    point = FAULT_POINTS[f"{CREATE_ORDER.name}.{PAYMENT_STEP}"]
    assert "userId" in point.match_keys
    product = await new_product(gateway, admin, stock=STOCK)
    response = await gateway.put(
        f"{_admin_path(point)}/{point.name}",
        json={"mode": "fail", "match": {"userId": account.id}, "ttlSeconds": 300},
        headers=admin.bearer,
    )
    assert response.status_code == 200, response.text
    try:
        other = await register_and_login(gateway)
        spared = await place(gateway, other, product, f"spared-{uuid.uuid4().hex}")
        hit = await place(gateway, account, product, f"hit-{uuid.uuid4().hex}")
        assert (await wait_saga_terminal(gateway, other, spared, seconds=SETTLE_SECONDS))[
            "state"
        ] == "COMPLETED"
        order = await wait_status(gateway, account, hit, {"CANCELED"}, seconds=SETTLE_SECONDS)
        rejected = CREATE_ORDER.step(PAYMENT_STEP).on_rejected
        assert rejected is not None and order["cancelReason"] == rejected.reason, order
    finally:
        await flags.clear(point, {"userId": account.id})


# ------------------------------------------------------------------ the endpoint itself


@pytest.mark.parametrize(
    "participant", sorted({p.participant for p in POINTS}), ids=lambda name: str(name)
)
async def test_each_participant_lists_its_points_and_its_flags(
    participant: str, gateway: httpx.AsyncClient, admin: Account, flags: Flags
) -> None:
    own = [p for p in POINTS if p.participant == participant]
    path = _admin_path(own[0])
    await flags.set(own[0], "hang", times=3)
    listed = await gateway.get(path, headers=admin.bearer)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert [p["name"] for p in body["points"]] == sorted(p.name for p in own)
    mine = [f for f in body["flags"] if f["match"] == {"correlationId": flags.marker}]
    assert [(f["point"], f["mode"], f["times"], f["fired"], f["source"]) for f in mine] == [
        (own[0].name, "hang", 3, 0, "api")
    ]
    await flags.clear_all()
    after = (await gateway.get(path, headers=admin.bearer)).json()
    assert not [f for f in after["flags"] if f["match"] == {"correlationId": flags.marker}]


async def test_bad_flags_are_refused_with_the_valid_choices(
    gateway: httpx.AsyncClient, admin: Account
) -> None:
    inventory = [p for p in POINTS if p.participant == "inventory"]
    path = _admin_path(inventory[0])
    unknown = await gateway.put(
        f"{path}/create_order.no_such_step", json={"mode": "fail"}, headers=admin.bearer
    )
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["validPoints"] == sorted(p.name for p in inventory)

    foreign = next(p for p in POINTS if p.participant != "inventory")
    elsewhere = await gateway.put(
        f"{path}/{foreign.name}", json={"mode": "fail"}, headers=admin.bearer
    )
    assert elsewhere.status_code == 422, elsewhere.text
    assert foreign.participant in elsewhere.json()["detail"]

    unseen = await gateway.put(
        f"{path}/{inventory[0].name}",
        json={"mode": "fail", "match": {"userId": str(uuid.uuid4())}},
        headers=admin.bearer,
    )
    assert unseen.status_code == 422, unseen.text
    assert "userId" in unseen.text and "correlationId" in unseen.text


async def test_only_admins_may_touch_flags(gateway: httpx.AsyncClient, account: Account) -> None:
    for point in {p.participant: p for p in POINTS}.values():
        url = f"{_admin_path(point)}/{point.name}"
        anonymous = await gateway.put(url, json={"mode": "fail"})
        assert anonymous.status_code == 401, anonymous.text
        customer = await gateway.put(url, json={"mode": "fail"}, headers=account.bearer)
        assert customer.status_code == 403, customer.text
        listing = await gateway.get(_admin_path(point), headers=account.bearer)
        assert listing.status_code == 403, listing.text
