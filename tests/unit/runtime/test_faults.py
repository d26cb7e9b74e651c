"""Fault flags without Redis: parsing MC_FAULTS, validating flags, scoping and injecting.

The store (Redis) is covered by tests/integration/runtime/test_fault_store.py and the
whole loop (admin endpoint → participant → saga) by tests/e2e/test_fault_flags.py.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest

from generated.sagas.create_order import CREATE_ORDER
from generated.sagas.fault_points import FAULT_POINTS
from handwritten.runtime.context import correlation_id
from handwritten.runtime.faults import (
    CORRELATION_ID,
    Fault,
    FaultFlag,
    FaultFlagError,
    FaultSwitchboard,
    applicable,
    hang_seconds,
    inject,
    match_key,
    new_flag,
    parse_env_flags,
)

RESERVE = "create_order.reserve_inventory"
PAYMENT = "create_order.process_payment"
RESERVE_PRODUCTS = "inventory.v1.InventoryService/ReserveProducts"
ORDER = "0b0e7a8e-63a7-4e8f-9f6a-3c2d1e0f9a11"
USER = "5d4c3b2a-1908-4f7e-8d6c-5b4a39281706"


@pytest.fixture
def marker() -> Iterator[str]:
    """A correlation id in the context, as a participant sees it during a saga call."""
    token = correlation_id.set("fault-unit-test")
    try:
        yield "fault-unit-test"
    finally:
        correlation_id.reset(token)


# ------------------------------------------------------------------ generated points


def test_every_step_has_a_point_and_every_compensation_too() -> None:
    names = set(FAULT_POINTS)
    for step in CREATE_ORDER.steps:
        assert f"create_order.{step.name}" in names
        has_compensation = f"create_order.{step.name}.compensation" in names
        assert has_compensation == (step.compensation is not None), step.name


def test_points_name_their_participant_operation_and_match_keys() -> None:
    reserve = FAULT_POINTS[RESERVE]
    assert (reserve.participant, reserve.transport, reserve.operation) == (
        "inventory",
        "grpc",
        RESERVE_PRODUCTS,
    )
    assert reserve.timeout_ms == 3000
    # ReserveProducts carries the order id but not the user id.
    assert reserve.match_keys == (CORRELATION_ID, "orderId")
    payment = FAULT_POINTS[PAYMENT]
    assert (payment.participant, payment.transport) == ("payment", "command")
    assert payment.match_keys == (CORRELATION_ID, "orderId", "userId")
    assert payment.admin_path == "/api/payments/admin/faults"
    confirm = FAULT_POINTS["create_order.confirm_order"]
    assert (confirm.participant, confirm.transport) == ("orders", "local")
    assert all(point.modes == ("fail", "hang", "duplicate") for point in FAULT_POINTS.values())


# ---------------------------------------------------------------------- MC_FAULTS


def test_env_flags_parse_points_and_modes() -> None:
    flags = parse_env_flags(f" {PAYMENT}=fail , ,{RESERVE}=hang ")
    assert [(f.point, f.mode, f.match, f.source, f.expires_at) for f in flags] == [
        (PAYMENT, "fail", (), "env", None),
        (RESERVE, "hang", (), "env", None),
    ]
    assert parse_env_flags("") == ()
    assert parse_env_flags(" , ") == ()


def test_an_unknown_env_point_fails_with_the_valid_ones() -> None:
    with pytest.raises(FaultFlagError) as error:
        parse_env_flags("create_order.reserve_inventroy=fail")
    ((where, message),) = error.value.problems
    assert where == "MC_FAULTS[0].point"
    assert "create_order.reserve_inventroy" in message
    assert all(name in message for name in FAULT_POINTS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{PAYMENT}=explode", "MC_FAULTS[0].mode"),
        (f"{PAYMENT}", "MC_FAULTS[0]"),
        (f"{PAYMENT}=", "MC_FAULTS[0]"),
        (f"{PAYMENT}=fail,{PAYMENT}=hang", "MC_FAULTS[1]"),
    ],
)
def test_malformed_env_flags_fail_at_start(text: str, expected: str) -> None:
    with pytest.raises(FaultFlagError) as error:
        parse_env_flags(text)
    assert [where for where, _ in error.value.problems] == [expected]


# --------------------------------------------------------------------- validation


def test_a_flag_is_validated_against_its_point() -> None:
    flag = new_flag(
        FAULT_POINTS, PAYMENT, "duplicate", {"userId": USER}, times=2, ttl_seconds=60, now=100.0
    )
    assert (flag.point, flag.mode, flag.match, flag.times) == (
        PAYMENT,
        "duplicate",
        (("userId", USER),),
        2,
    )
    assert flag.expires_at == 160.0
    assert flag.source == "api"


def test_a_match_key_the_participant_cannot_see_is_refused() -> None:
    with pytest.raises(FaultFlagError) as error:
        new_flag(FAULT_POINTS, RESERVE, "fail", {"userId": USER}, now=0.0)
    ((where, message),) = error.value.problems
    assert where == "match"
    assert "correlationId, orderId" in message and "userId" in message


def test_every_problem_of_a_flag_is_named() -> None:
    with pytest.raises(FaultFlagError) as error:
        new_flag(FAULT_POINTS, PAYMENT, "explode", {"orderId": ""}, times=0, ttl_seconds=0, now=0.0)
    assert [where for where, _ in error.value.problems] == [
        "mode",
        "match.orderId",
        "times",
        "ttlSeconds",
    ]


def test_match_keys_are_canonical_whatever_the_order() -> None:
    assert match_key({}) == "*"
    assert match_key({"userId": "u", "orderId": "o"}) == "orderId=o&userId=u"
    assert match_key({"orderId": "o", "userId": "u"}) == "orderId=o&userId=u"


def test_a_flag_survives_its_json() -> None:
    flag = new_flag(FAULT_POINTS, PAYMENT, "hang", {"orderId": ORDER}, times=3, now=5.0)
    assert FaultFlag.from_json(flag.to_json()) == flag
    with pytest.raises(ValueError, match="unknown fault mode"):
        FaultFlag.from_json(flag.to_json().replace('"hang"', '"explode"'))


# ----------------------------------------------------------------------- scoping


def _flag(match: dict[str, str], *, expires_at: float | None = 100.0) -> FaultFlag:
    return FaultFlag(
        PAYMENT, "fail", tuple(sorted(match.items())), expires_at=expires_at, source="api"
    )


def test_only_live_flags_in_scope_apply_most_specific_first() -> None:
    everyone = _flag({})
    user = _flag({"userId": USER})
    order_and_user = _flag({"orderId": ORDER, "userId": USER})
    other_user = _flag({"userId": "someone-else"})
    expired = _flag({"orderId": ORDER}, expires_at=10.0)
    env = FaultFlag(PAYMENT, "hang", (), source="env")
    subject = {"orderId": ORDER, "userId": USER, CORRELATION_ID: "c"}
    flags = [everyone, env, other_user, expired, user, order_and_user]
    assert applicable(flags, subject, now=50.0) == [order_and_user, user, everyone, env]
    assert applicable(flags, {"orderId": ORDER}, now=50.0) == [everyone, env]


def test_a_hang_outlasts_the_step_timeout() -> None:
    for point in FAULT_POINTS.values():
        assert hang_seconds(point) * 1000 >= point.timeout_ms + 1000


# ------------------------------------------------------------------- switchboard


async def test_a_disabled_switchboard_injects_nothing(marker: str) -> None:
    board = FaultSwitchboard(
        "inventory", enabled=False, env_flags=parse_env_flags(f"{RESERVE}=fail")
    )
    assert await board.check(RESERVE_PRODUCTS, orderId=ORDER) is None


async def test_env_flags_fire_for_the_operation_of_their_point(marker: str) -> None:
    board = FaultSwitchboard(
        "inventory", enabled=True, env_flags=parse_env_flags(f"{RESERVE}=fail,{PAYMENT}=hang")
    )
    # Only this participant's flags are kept: the payment flag belongs to payment.
    assert [f.point for f in board.env_flags] == [RESERVE]
    fault = await board.check(RESERVE_PRODUCTS, orderId=ORDER)
    assert fault is not None
    assert (fault.point.name, fault.mode) == (RESERVE, "fail")
    by_name = await board.check(RESERVE)
    assert by_name is not None and by_name.point.name == RESERVE
    flags = await board.flags()
    assert [(s.flag.point, s.fired) for s in flags] == [(RESERVE, 2)]
    assert await board.check("inventory.v1.InventoryService/CommitReservation") is None


async def test_points_of_other_participants_are_not_checked_here() -> None:
    board = FaultSwitchboard("inventory", enabled=True)
    assert set(board.points) == {
        name for name, point in FAULT_POINTS.items() if point.participant == "inventory"
    }
    with pytest.raises(ValueError, match="serves no fault point"):
        await board.check("payments.requested")


async def test_the_correlation_id_comes_from_the_context(marker: str) -> None:
    scoped = FaultFlag(RESERVE, "duplicate", ((CORRELATION_ID, marker),), source="env")
    board = FaultSwitchboard("inventory", enabled=True, env_flags=(scoped,))
    fault = await board.check(RESERVE_PRODUCTS, orderId=ORDER)
    assert fault is not None and fault.mode == "duplicate"
    token = correlation_id.set("another-saga")
    try:
        assert await board.check(RESERVE_PRODUCTS, orderId=ORDER) is None
    finally:
        correlation_id.reset(token)


# ------------------------------------------------------------------------ inject


class Effect:
    """Counts its runs and answers the run number."""

    def __init__(self) -> None:
        self.runs = itertools.count(1)
        self.count = 0

    async def __call__(self) -> int:
        self.count = next(self.runs)
        return self.count


async def _refused() -> int:
    raise RuntimeError("refused")


def _fault(mode: str) -> Fault:
    flag = FaultFlag(RESERVE, mode, source="env")  # type: ignore[arg-type]
    return Fault(FAULT_POINTS[RESERVE], flag)


async def test_inject_runs_the_effect_as_the_fault_says() -> None:
    plain, duplicate, failed = Effect(), Effect(), Effect()
    assert await inject(None, plain, fail=_refused) == 1
    assert await inject(_fault("duplicate"), duplicate, fail=_refused) == 2
    with pytest.raises(RuntimeError, match="refused"):
        await inject(_fault("fail"), failed, fail=_refused)
    assert (plain.count, duplicate.count, failed.count) == (1, 2, 0)


async def test_a_hang_is_cancelled_by_the_callers_deadline() -> None:
    effect = Effect()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(inject(_fault("hang"), effect, fail=_refused), 0.05)
    assert effect.count == 0  # cancelled before the effect: nothing happened
