"""Fault points derived from the specs: participant, match keys, admin path, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.emit.saga_faults import fault_points
from generator.errors import InvalidSpecsError
from generator.pipeline import load_and_check
from generator.saga import Action, Await
from generator.specset import SpecSet

from .conftest import replace_in

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project() -> SpecSet:
    return load_and_check(ROOT)


def test_every_action_and_compensation_of_the_project_saga_is_a_point(project: SpecSet) -> None:
    saga, document = project.sagas[0], project.saga_docs[0]
    points = {p.name: p for p in fault_points(project, saga, document)}
    assert sorted(points) == sorted(
        [f"create_order.{s.name}" for s in saga.steps]
        + [f"create_order.{s.name}.compensation" for s in saga.steps if s.compensation]
    )
    assert {name: p.participant for name, p in points.items()} == {
        "create_order.reserve_inventory": "inventory",
        "create_order.reserve_inventory.compensation": "inventory",
        "create_order.process_payment": "payment",
        "create_order.process_payment.compensation": "payment",
        "create_order.commit_reservation": "inventory",
        "create_order.confirm_order": "orders",
    }
    # Each participant's spec declares its fault flag endpoint, and the point knows it.
    for point in points.values():
        assert point.admin_path is not None
        assert point.admin_path in project.openapi[point.participant].data["paths"]
    # The refund command carries no user id; the charge command and the local step do.
    assert points["create_order.process_payment.compensation"].match_keys == (
        "correlationId",
        "orderId",
    )
    assert points["create_order.process_payment"].match_keys == (
        "correlationId",
        "orderId",
        "userId",
    )


def test_a_command_step_belongs_to_the_consumer_that_answers(shop: Path) -> None:
    replace_in(
        shop / "specs/sagas/place_order.saga.yaml",
        "action: {grpc: stock.v1.StockService/Reserve}",
        "action: {command: orders.placed, await: {success: [stock.reserved]}, timeout: 4s}",
    )
    replace_in(
        shop / "specs/sagas/place_order.saga.yaml",
        "on_rejected: {status: CANCELED, reason: OUT_OF_STOCK}\n  - name: commit_stock",
        "on_rejected: {status: CANCELED, reason: OUT_OF_STOCK}\n"
        "    on_timeout: {status: CANCELED, reason: TIMEOUT}\n  - name: commit_stock",
    )
    specset = load_and_check(shop)
    point = fault_points(specset, specset.sagas[0], specset.saga_docs[0])[0]
    assert (point.name, point.participant, point.transport, point.operation) == (
        "place_order.reserve_stock",
        "stock",
        "command",
        "orders.placed",
    )
    assert point.timeout_ms == 4000
    assert point.match_keys == ("correlationId", "orderId")
    assert point.admin_path is None  # the stock service has no REST API


def test_a_command_nobody_answers_is_an_error_naming_the_step(shop: Path) -> None:
    specset = load_and_check(shop)
    saga = specset.sagas[0]
    orphan = Action(command="stock.reserved", await_=Await(success=("orders.placed",)))
    steps = (saga.steps[0].model_copy(update={"action": orphan}), *saga.steps[1:])
    with pytest.raises(InvalidSpecsError) as error:
        fault_points(specset, saga.model_copy(update={"steps": steps}), specset.saga_docs[0])
    (problem,) = error.value.errors
    assert problem.pointer == "/steps/0/action"
    assert "stock.reserved needs exactly one participant, found none" in problem.message
