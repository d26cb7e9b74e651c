"""Broken specs fail with the file, the line and the JSON pointer of the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.cli import main
from generator.errors import InvalidSpecsError
from generator.pipeline import load_and_check

from .conftest import replace_in


def _errors(root: Path) -> list[str]:
    with pytest.raises(InvalidSpecsError) as raised:
        load_and_check(root)
    return [str(error) for error in raised.value.errors]


@pytest.mark.parametrize(
    ("spec", "old", "new", "pointer", "message"),
    [
        (
            "sagas/place_order.saga.yaml",
            "stock.v1.StockService/Commit,",
            "stock.v1.StockService/Kommit,",
            "/steps/1/action/grpc",
            "gRPC method 'stock.v1.StockService/Kommit' is not declared",
        ),
        (
            "sagas/place_order.saga.yaml",
            "emits: [orders.placed]",
            "emits: [orders.shipped]",
            "/steps/2/action",
            "event 'orders.shipped' does not exist in AsyncAPI",
        ),
        (
            "services.yaml",
            "consumes: [orders.placed]",
            "consumes: [orders.placed, payments.done]",
            "/services/stock/consumes/1",
            "topic 'payments.done' is consumed but no service produces it",
        ),
        (
            "services.yaml",
            "paths: [/api/orders]",
            "paths: [/api/order-history]",
            "/services/orders/gateway/routes/0",
            "matches no operation",
        ),
        (
            "asyncapi/microcommerce.yaml",
            "x-key: orderId\n      x-schema-version: 2",
            "x-key: order\n      x-schema-version: 2",
            "/channels/stock_reserved/messages/StockReserved",
            "x-key 'order' must be a required field",
        ),
    ],
)
def test_broken_cross_reference_names_file_line_and_pointer(
    shop: Path, spec: str, old: str, new: str, pointer: str, message: str
) -> None:
    replace_in(shop / "specs" / spec, old, new)
    errors = _errors(shop)
    matching = [e for e in errors if f": {pointer}: " in e and message in e]
    assert matching, errors
    assert matching[0].startswith(f"specs/{spec}:")


def test_line_number_points_at_the_offending_value(shop: Path) -> None:
    saga = shop / "specs" / "sagas" / "place_order.saga.yaml"
    line = replace_in(
        saga, "{grpc: stock.v1.StockService/Release}", "{grpc: stock.v1.StockService/Gone}"
    )
    (error,) = [e for e in _errors(shop) if "StockService/Gone" in e]
    assert error.startswith(
        f"specs/sagas/place_order.saga.yaml:{line}: /steps/0/compensation/grpc: "
    )


def test_step_after_the_pivot_must_be_retriable(shop: Path) -> None:
    replace_in(
        shop / "specs" / "sagas" / "place_order.saga.yaml", "kind: retriable", "kind: compensatable"
    )
    errors = _errors(shop)
    assert any("/steps/2/kind: step 'confirm' comes after the pivot" in e for e in errors), errors


def test_compensatable_step_needs_a_compensation(shop: Path) -> None:
    replace_in(
        shop / "specs" / "sagas" / "place_order.saga.yaml",
        "    compensation: {grpc: stock.v1.StockService/Release}\n",
        "",
    )
    errors = _errors(shop)
    assert any(
        "/steps/0: step 'reserve_stock' has side effects before the pivot" in e for e in errors
    )


def test_schema_violation_is_reported_with_its_line(shop: Path) -> None:
    line = replace_in(shop / "specs" / "services.yaml", "http_port: 8202", "http_port: 80")
    errors = _errors(shop)
    assert (
        f"specs/services.yaml:{line}: /services/stock/http_port: "
        "80 is less than the minimum of 1024" in errors
    )


def test_invalid_openapi_is_rejected(shop: Path) -> None:
    replace_in(
        shop / "specs" / "openapi" / "orders.yaml", "operationId: get_order", "operationId: [get]"
    )
    errors = _errors(shop)
    assert any(e.startswith("specs/openapi/orders.yaml:") and "operationId" in e for e in errors), (
        errors
    )


def test_invalid_asyncapi_is_rejected(shop: Path) -> None:
    replace_in(
        shop / "specs" / "asyncapi" / "microcommerce.yaml",
        'action: send\n    channel: {$ref: "#/channels/orders_placed"}',
        'action: publish\n    channel: {$ref: "#/channels/orders_placed"}',
    )
    errors = _errors(shop)
    assert any(
        e.startswith("specs/asyncapi/microcommerce.yaml:")
        and "/operations/orders_send_orders_placed" in e
        for e in errors
    ), errors


def test_proto_syntax_error_names_the_proto_line(shop: Path) -> None:
    line = replace_in(
        shop / "specs" / "proto" / "stock" / "v1" / "stock.proto",
        "int32 quantity = 2;",
        "int32 quantity = ;",
    )
    errors = _errors(shop)
    assert any(e.startswith(f"specs/proto/stock/v1/stock.proto:{line}: ") for e in errors), errors


def test_yaml_syntax_error_names_the_line(shop: Path) -> None:
    line = replace_in(shop / "specs" / "services.yaml", "  stock:\n", "  stock: [\n")
    errors = _errors(shop)
    assert any(e.startswith("specs/services.yaml:") and "invalid YAML" in e for e in errors), errors
    assert line > 0


def test_cli_exits_non_zero_and_prints_the_errors(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    replace_in(
        shop / "specs" / "sagas" / "place_order.saga.yaml",
        "starts_on: orders.placed",
        "starts_on: stock.reserved",
    )
    assert main(["validate", "--root", str(shop)]) == 2
    stderr = capsys.readouterr().err
    assert (
        "specs/sagas/place_order.saga.yaml:5: /starts_on: "
        "'orders' does not produce 'stock.reserved'" in stderr
    )
