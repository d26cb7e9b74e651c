"""``spec-diff``: every change between a git ref's specs and the working tree, classified.

Each scenario copies the project's committed specs (plus a small proto of its own)
into a temporary git repository, commits them on ``main``, edits the working tree
and runs the real diff against ``main``. A scenario is computed once per module and
several tests read its result.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.cli import main as generator_main
from generator.specdiff import Change, DiffResult, Severity, run_spec_diff, spec_diff
from generator.specdiff.gitsource import export_specs
from generator.specdiff.report import exit_code, render_markdown
from generator.specdiff.run import compare_trees
from generator.specdiff.schema import Documents, Node, SchemaComparer
from generator.yamlsource import SourceDocument

REPO_ROOT = Path(__file__).resolve().parents[2]
ASYNCAPI = "asyncapi/microcommerce.yaml"
ORDERS = "openapi/orders.yaml"
SAGA = "sagas/create_order.saga.yaml"
WIDGETS = "proto/widgets/v1/widgets.proto"

WIDGETS_PROTO = """\
syntax = "proto3";

package widgets.v1;

service WidgetService {
  rpc GetWidget(GetWidgetRequest) returns (Widget);
  rpc DeleteWidget(GetWidgetRequest) returns (Widget);
  rpc ListWidgets(ListWidgetsRequest) returns (ListWidgetsResponse);
}

enum Color {
  COLOR_UNSPECIFIED = 0;
  COLOR_RED = 1;
  COLOR_BLUE = 2;
  COLOR_GREEN = 3;
}

message Widget {
  reserved 9;
  string widget_id = 1;
  string name = 2;
  int32 size = 3;
  string price = 4;
  Color color = 5;
  repeated string tags = 6;
  string legacy_code = 7;
  string note = 8;
}

message GetWidgetRequest {
  string widget_id = 1;
}

message ListWidgetsRequest {
  int32 page_size = 1;
}

message ListWidgetsResponse {
  repeated Widget widgets = 1;
}
"""


# --------------------------------------------------------------------------- helpers


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        [
            "git",
            "-C",
            str(root),
            "-c",
            "user.name=Spec Diff",
            "-c",
            "user.email=sd@example.com",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def _edit_yaml(root: Path, spec: str, change: Callable[[Any], None]) -> None:
    path = root / "specs" / spec
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def _replace(root: Path, spec: str, old: str, new: str) -> None:
    path = root / "specs" / spec
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} must occur once in {spec}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def _find(result: DiffResult, kind: str, location: str | None = None) -> list[Change]:
    return [
        c for c in result.changes if c.kind == kind and (location is None or c.location == location)
    ]


def _one(result: DiffResult, kind: str, location: str | None = None) -> Change:
    found = _find(result, kind, location)
    assert len(found) == 1, f"expected one {kind} at {location}, got {found}; all: " + "\n".join(
        f"{c.severity} {c.kind} {c.location}" for c in result.changes
    )
    return found[0]


def _severities(result: DiffResult) -> set[Severity]:
    return {change.severity for change in result.changes}


Scenario = Callable[[Callable[[Path], None]], tuple[Path, DiffResult]]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repository whose ``main`` holds the project's committed specs."""
    root = tmp_path_factory.mktemp("template")
    export_specs(REPO_ROOT, "HEAD", root)
    # The scenarios write their own acknowledgements.
    (root / "specs" / "breaking-changes.yaml").unlink(missing_ok=True)
    (root / "specs" / WIDGETS).parent.mkdir(parents=True)
    (root / "specs" / WIDGETS).write_text(WIDGETS_PROTO, encoding="utf-8")
    _git(root, "init", "--quiet", "--initial-branch=main")
    _git(root, "add", "specs")
    _git(root, "commit", "--quiet", "-m", "base specs")
    return root


@pytest.fixture(scope="module")
def scenario(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    """Copy the template, apply ``edits`` to the working tree, diff against main."""

    def run(edits: Callable[[Path], None]) -> tuple[Path, DiffResult]:
        root = tmp_path_factory.mktemp("repo") / "repo"
        shutil.copytree(template, root, symlinks=True)
        edits(root)
        return root, spec_diff(root, "main")

    return run


# --------------------------------------------------------------------------- schemas


def _schema_deltas(old: Any, new: Any, *, by_ref: bool = False) -> list[tuple[str, bool, bool]]:
    """(rule, narrows, widens) of comparing two in-memory schemas in a one-file spec.

    ``by_ref`` compares ``$ref: Root`` on both sides, as operations reference schemas.
    """

    def docs(schema: Any, label: str) -> Documents:
        data = {"components": {"schemas": {"Item": {"type": "integer"}, "Root": schema}}}
        return Documents(
            {"specs/x.yaml": SourceDocument(Path("x.yaml"), "specs/x.yaml", data)}, label
        )

    old_docs, new_docs = docs(old, "base"), docs(new, "head")
    root = "/components/schemas/Root"
    if by_ref:
        reference = {"$ref": f"#{root}"}
        old_node, new_node = (
            Node("specs/x.yaml", "", reference),
            Node("specs/x.yaml", "", reference),
        )
    else:
        old_node, new_node = Node("specs/x.yaml", root, old), Node("specs/x.yaml", root, new)
    deltas = SchemaComparer(old_docs, new_docs).compare(old_node, new_node)
    return [(d.rule, d.narrows, d.widens) for d in deltas]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ({"type": "integer"}, {"type": "number"}, [("type-changed", False, True)]),
        ({"type": "number"}, {"type": "integer"}, [("type-changed", True, False)]),
        ({"type": "string"}, {"type": ["string", "null"]}, [("nullable-added", False, True)]),
        (  # wrapping a reference in anyOf with null only widens
            {"$ref": "#/components/schemas/Item"},
            {"anyOf": [{"$ref": "#/components/schemas/Item"}, {"type": "null"}]},
            [("alternative-added", False, True)],
        ),
        ({"const": "BRL"}, {"enum": ["BRL", "USD"]}, [("enum-value-added", False, True)]),
        ({"type": "string"}, {"type": "string", "format": "uuid"}, [("format-added", True, False)]),
        (
            {"type": "string", "pattern": "^\\d+$"},
            {"type": "string", "pattern": "^[0-9]+$"},
            [("pattern-rewritten", False, False)],
        ),
        (
            {"type": "array", "items": {"type": "string"}},
            {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            [("unique-items-changed", True, False)],
        ),
        (  # a property whose schema changed inside a referenced component
            {"type": "object", "properties": {"n": {"$ref": "#/components/schemas/Item"}}},
            {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}},
            [("bound-added", True, False)],
        ),
        (  # a required field with a default is readable from old data
            {"type": "object", "properties": {}},
            {"type": "object", "required": ["x"], "properties": {"x": {"default": 1}}},
            [("required-property-added", False, False)],
        ),
        (
            {"type": "object", "additionalProperties": False, "properties": {"a": {}}},
            {"type": "object", "additionalProperties": False, "properties": {}},
            [("property-removed", True, False)],
        ),
        (
            {"type": "object"},
            {"type": "object", "additionalProperties": False},
            [("additional-properties-forbidden", True, False)],
        ),
    ],
)
def test_schema_comparison_rules(
    old: Any, new: Any, expected: list[tuple[str, bool, bool]]
) -> None:
    assert _schema_deltas(old, new) == expected


def test_a_recursive_schema_is_compared_once() -> None:
    node = {"type": "object", "properties": {"child": {"$ref": "#/components/schemas/Root"}}}
    changed = {**node, "required": ["child"]}
    assert _schema_deltas(node, changed, by_ref=True) == [("required-added", True, False)]


# --------------------------------------------------------------------------- no change


def test_unchanged_specs_report_nothing_and_pass(
    template: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "repo"
    shutil.copytree(template, root, symlinks=True)
    # Without --base the CLI compares with origin/main, or main when there is no remote.
    assert generator_main(["spec-diff", "--root", str(root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"## Spec diff: `main` \(`[0-9a-f]{12}`\) → working tree", lines[0])
    assert lines[2] == "✅ **passes**: no spec changes."


def test_formatting_only_rewrites_are_no_change(scenario: Scenario) -> None:
    # Reformatting a document (keys re-ordered, quoting, comments lost) changes no contract.
    def rewrite(root: Path) -> None:
        for spec in (ORDERS, ASYNCAPI, SAGA, "openapi/common.yaml"):
            _edit_yaml(root, spec, lambda data: None)

    _, result = scenario(rewrite)
    assert result.changes == ()


# --------------------------------------------------------------------------- OpenAPI


def _openapi_breaking(root: Path) -> None:
    def orders(data: Any) -> None:
        schemas = data["components"]["schemas"]
        schemas["CreateOrderItem"]["properties"]["quantity"]["maximum"] = 100
        request = schemas["CreateOrderRequest"]
        request["properties"]["couponCode"] = {"type": "string", "maxLength": 20}
        request["required"].append("couponCode")
        schemas["OrderStatus"]["enum"].append("ON_HOLD")
        schemas["ShippingAddress"]["properties"]["state"]["pattern"] = "^(SP|RJ|MG)$"
        del schemas["Order"]["properties"]["updatedAt"]
        schemas["Order"]["required"].remove("updatedAt")
        paths = data["paths"]
        paths["/api/orders"]["get"].setdefault("parameters", []).append(
            {"name": "region", "in": "query", "required": True, "schema": {"type": "string"}}
        )
        del paths["/api/orders/{orderId}/saga"]
        responses = paths["/api/orders"]["post"]["responses"]
        responses["200"] = responses.pop("201")

    def common(data: Any) -> None:
        data["components"]["schemas"]["Problem"]["properties"]["detail"]["maxLength"] = 8000

    _edit_yaml(root, ORDERS, orders)
    _edit_yaml(root, "openapi/common.yaml", common)


def _breaking_everywhere(root: Path) -> None:
    _openapi_breaking(root)
    _asyncapi_topics(root)
    _proto_breaking(root)
    _saga_breaking(root)


@pytest.fixture(scope="module")
def breaking(scenario: Scenario) -> tuple[Path, DiffResult]:
    """One working tree with breaking changes in every kind of spec."""
    return scenario(_breaking_everywhere)


@pytest.fixture(scope="module")
def openapi_breaking(breaking: tuple[Path, DiffResult]) -> DiffResult:
    return breaking[1]


def test_narrowing_a_request_type_is_breaking(openapi_breaking: DiffResult) -> None:
    change = _one(
        openapi_breaking,
        "openapi.request.bound-tightened",
        "openapi/orders.yaml#/components/schemas/CreateOrderItem: quantity",
    )
    assert change.severity is Severity.BREAKING
    assert "maximum 1000 → 100" in change.message
    assert change.affects == ("orders: POST /api/orders, request body application/json",)
    assert change.source.startswith("specs/openapi/orders.yaml:")


def test_a_new_required_request_field_is_breaking(openapi_breaking: DiffResult) -> None:
    change = _one(openapi_breaking, "openapi.request.required-property-added")
    assert change.severity is Severity.BREAKING
    assert change.location.endswith("CreateOrderRequest: couponCode")


def test_a_new_required_parameter_is_breaking(openapi_breaking: DiffResult) -> None:
    change = _one(
        openapi_breaking,
        "openapi.parameter-required-added",
        "orders: GET /api/orders, query parameter region",
    )
    assert change.severity is Severity.BREAKING


def test_a_new_response_enum_value_is_breaking(openapi_breaking: DiffResult) -> None:
    change = _one(openapi_breaking, "openapi.response.enum-value-added")
    assert change.severity is Severity.BREAKING
    assert change.location == "openapi/orders.yaml#/components/schemas/OrderStatus"
    assert '"ON_HOLD"' in change.message
    assert "orders: GET /api/orders/{orderId}, response 200 application/json" in change.affects


def test_removing_a_response_field_is_breaking(openapi_breaking: DiffResult) -> None:
    change = _one(
        openapi_breaking,
        "openapi.response.property-removed",
        "openapi/orders.yaml#/components/schemas/Order: updatedAt",
    )
    assert change.severity is Severity.BREAKING


def test_removing_a_path_is_breaking(openapi_breaking: DiffResult) -> None:
    change = _one(openapi_breaking, "openapi.path-removed", "orders: /api/orders/{orderId}/saga")
    assert change.severity is Severity.BREAKING
    assert "GET" in change.message


def test_changing_the_success_status_is_breaking(openapi_breaking: DiffResult) -> None:
    removed = _one(openapi_breaking, "openapi.success-status-removed")
    added = _one(openapi_breaking, "openapi.success-status-added")
    assert removed.location == "orders: POST /api/orders, response 201"
    assert added.location == "orders: POST /api/orders, response 200"
    assert {removed.severity, added.severity} == {Severity.BREAKING}


def test_a_shared_component_change_is_reported_once_with_every_use(
    openapi_breaking: DiffResult,
) -> None:
    # Problem (common.yaml) is every error response's body: widening a response
    # field breaks strict clients, and it is one change, not one per operation.
    change = _one(openapi_breaking, "openapi.response.bound-relaxed")
    assert change.location == "openapi/common.yaml#/components/schemas/Problem: detail"
    assert change.severity is Severity.BREAKING
    assert len(change.affects) > 10
    assert any(a.startswith("auth: POST /api/auth/login, response 401") for a in change.affects)


def _openapi_compatible(root: Path) -> None:
    def orders(data: Any) -> None:
        schemas = data["components"]["schemas"]
        schemas["CreateOrderItem"]["properties"]["quantity"]["maximum"] = 5000
        schemas["CreateOrderRequest"]["properties"]["note"] = {"type": "string"}
        schemas["Order"]["properties"]["giftMessage"] = {"type": "string"}
        paths = data["paths"]
        paths["/api/orders"]["get"].setdefault("parameters", []).append(
            {"name": "status", "in": "query", "required": False, "schema": {"type": "string"}}
        )
        get_order = paths["/api/orders/{orderId}"]["get"]
        get_order["responses"]["503"] = {
            "$ref": "./common.yaml#/components/responses/ServiceUnavailable"
        }
        paths["/api/orders/{orderId}/refunds"] = {
            "get": {
                "operationId": "list_refunds",
                "responses": {"200": {"description": "Refunds."}},
            }
        }
        # Renaming a path parameter changes no URL: {orderId} → {id} everywhere.
        data["components"]["parameters"]["OrderId"]["name"] = "id"
        data["paths"] = {key.replace("{orderId}", "{id}"): item for key, item in paths.items()}

    _edit_yaml(root, ORDERS, orders)


def _compatible_everywhere(root: Path) -> None:
    _openapi_compatible(root)
    _proto_compatible(root)
    _saga_compatible(root)


@pytest.fixture(scope="module")
def compatible(scenario: Scenario) -> DiffResult:
    """One working tree with compatible changes in OpenAPI, proto and saga specs."""
    return scenario(_compatible_everywhere)[1]


@pytest.fixture(scope="module")
def openapi_compatible(compatible: DiffResult) -> DiffResult:
    return compatible


def test_widening_requests_and_adding_optional_fields_is_compatible(
    openapi_compatible: DiffResult,
) -> None:
    result = openapi_compatible
    assert _severities(result) == {Severity.COMPATIBLE}, [
        (c.kind, c.location) for c in result.changes if c.severity is not Severity.COMPATIBLE
    ]
    assert exit_code(result, allow_breaking=False) == 0
    for kind in (
        "openapi.request.bound-relaxed",
        "openapi.request.property-added",
        "openapi.response.property-added",
        "openapi.parameter-added",
        "openapi.error-status-added",
        "openapi.operation-added",
    ):
        assert _find(result, kind), f"{kind} missing"


def test_renaming_a_path_parameter_is_no_change(openapi_compatible: DiffResult) -> None:
    assert not [c for c in openapi_compatible.changes if "parameter-removed" in c.kind]
    assert not _find(openapi_compatible, "openapi.operation-removed")
    assert not _find(openapi_compatible, "openapi.path-removed")


# --------------------------------------------------------------------------- AsyncAPI


def _message(data: Any, name: str) -> Any:
    return data["components"]["messages"][name]


def _payload(data: Any, name: str) -> Any:
    return data["components"]["schemas"][f"{name}Payload"]


def _asyncapi_topics(root: Path) -> None:
    def change(data: Any) -> None:
        channels = data["channels"]
        channels["orders_created"]["bindings"]["kafka"]["partitions"] = 2
        channels["orders_shipped"]["bindings"]["kafka"]["partitions"] = 6
        _message(data, "OrderDelivered")["x-key"] = "userId"
        operations = data["operations"]
        operations["shipping_receive_orders_confirmed"]["x-consumer-group"] = "shipping-v2"
        del channels["events_deadletter"]
        data["operations"] = {
            key: op for key, op in operations.items() if "events_deadletter" not in key
        }

    _edit_yaml(root, ASYNCAPI, change)


@pytest.fixture(scope="module")
def asyncapi_topics(breaking: tuple[Path, DiffResult]) -> DiffResult:
    return breaking[1]


def test_topic_level_changes(asyncapi_topics: DiffResult) -> None:
    result = asyncapi_topics
    assert _one(result, "asyncapi.partitions-decreased", "event OrderCreated").severity is (
        Severity.BREAKING
    )
    assert _one(result, "asyncapi.partitions-increased", "event OrderShipped").severity is (
        Severity.COMPATIBLE
    )
    assert _one(result, "asyncapi.key-changed", "event OrderDelivered").severity is (
        Severity.BREAKING
    )
    group = _one(result, "asyncapi.consumer-group-changed", "event OrderConfirmed")
    assert group.severity is Severity.BREAKING
    assert "shipping-service → shipping-v2" in group.message
    removed = _one(result, "asyncapi.message-removed", "event EventDeadLettered")
    assert removed.severity is Severity.BREAKING
    assert Severity.ERROR not in _severities(result)  # no payload changed


def _unversioned_event_change(root: Path) -> None:
    def change(data: Any) -> None:
        created = _payload(data, "OrderCreated")
        created["properties"]["channel"] = {"type": "string", "enum": ["web", "mobile"]}
        created["required"].append("channel")
        data["components"]["schemas"]["CancelReason"]["enum"].remove("CUSTOMER_REQUEST")
        data["components"]["schemas"]["OrderItem"]["properties"]["quantity"]["maximum"] = 10

    _edit_yaml(root, ASYNCAPI, change)


@pytest.fixture(scope="module")
def unversioned(scenario: Scenario) -> tuple[Path, DiffResult]:
    return scenario(_unversioned_event_change)


def test_a_backward_incompatible_event_change_without_a_new_version_is_an_error(
    unversioned: tuple[Path, DiffResult],
) -> None:
    _, result = unversioned
    change = _one(
        result, "asyncapi.payload.required-property-added", "event OrderCreated payload: channel"
    )
    assert change.severity is Severity.ERROR
    assert "bump x-schema-version to 2" in change.message
    assert "x-upcasters" in change.message
    assert change.affects == ("analytics-service",)  # the consumer groups concerned


def test_a_shared_schema_change_is_checked_for_every_event_using_it(
    unversioned: tuple[Path, DiffResult],
) -> None:
    _, result = unversioned
    reasons = _find(result, "asyncapi.payload.enum-value-removed")
    assert {c.location for c in reasons} == {
        "event OrderCanceled payload: reason",
        "event PaymentRefundRequested payload: reason",
    }
    assert {c.severity for c in reasons} == {Severity.ERROR}
    # Paths run from the payload root through shared components.
    items = _find(result, "asyncapi.payload.bound-tightened")
    assert "event OrderCreated payload: items[].quantity" in {c.location for c in items}
    assert "event OrderConfirmed payload: items[].quantity" in {c.location for c in items}


def test_errors_fail_even_when_breaking_changes_are_allowed(
    unversioned: tuple[Path, DiffResult], capsys: pytest.CaptureFixture[str]
) -> None:
    root, result = unversioned
    assert exit_code(result, allow_breaking=True) == 1
    argv = ["spec-diff", "--root", str(root), "--base", "main", "--allow-breaking"]
    assert generator_main(argv) == 1
    assert "❌ **fails**" in capsys.readouterr().out


def _upcaster_module(root: Path) -> None:
    (root / "mc_test_upcasters.py").write_text(
        "def order_created_v1(data):\n"
        "    return {**data, 'channel': 'web'}\n"
        "\n"
        "def two_arguments(data, extra):\n"
        "    return data\n"
        "\n"
        "NOT_CALLABLE = 3\n",
        encoding="utf-8",
    )


def _bad_versioning(root: Path) -> None:
    _upcaster_module(root)

    def change(data: Any) -> None:
        for name in ("OrderCreated", "OrderConfirmed", "OrderShipped", "OrderDelivered"):
            payload = _payload(data, name)
            payload["properties"]["channel"] = {"type": "string"}
            payload["required"].append("channel")
            _message(data, name)["x-schema-version"] = 2
        _message(data, "OrderConfirmed")["x-upcasters"] = {1: "mc_test_upcasters.missing_fn"}
        _message(data, "OrderShipped")["x-upcasters"] = {1: "mc_test_upcasters.two_arguments"}
        _message(data, "OrderDelivered")["x-upcasters"] = {1: "mc_test_upcasters.NOT_CALLABLE"}
        _message(data, "UserRegistered")["x-schema-version"] = 0

    _edit_yaml(root, ASYNCAPI, change)


@pytest.fixture(scope="module")
def bad_versioning(scenario: Scenario) -> DiffResult:
    return scenario(_bad_versioning)[1]


def test_a_new_version_needs_an_upcaster_that_imports_and_takes_the_data(
    bad_versioning: DiffResult,
) -> None:
    result = bad_versioning
    problems = {c.location: c.message for c in _find(result, "asyncapi.upcaster-invalid")}
    assert "no upcaster from v1" in problems["event OrderCreated"]
    assert "cannot be imported" in problems["event OrderConfirmed"]
    assert "does not take the event data" in problems["event OrderShipped"]
    assert "is not callable" in problems["event OrderDelivered"]
    for name in ("OrderCreated", "OrderConfirmed", "OrderShipped", "OrderDelivered"):
        payload = _one(
            result, "asyncapi.payload.required-property-added", f"event {name} payload: channel"
        )
        assert payload.severity is Severity.ERROR
        assert "needs valid upcasters" in payload.message
    assert not _find(result, "asyncapi.schema-version-bumped")


def test_a_schema_version_never_goes_down(bad_versioning: DiffResult) -> None:
    change = _one(bad_versioning, "asyncapi.schema-version-decreased", "event UserRegistered")
    assert change.severity is Severity.ERROR


def _good_versioning(root: Path) -> None:
    _upcaster_module(root)

    def change(data: Any) -> None:
        created = _payload(data, "OrderCreated")
        created["properties"]["channel"] = {"type": "string"}
        created["required"].append("channel")
        _message(data, "OrderCreated")["x-schema-version"] = 2
        _message(data, "OrderCreated")["x-upcasters"] = {1: "mc_test_upcasters.order_created_v1"}
        shipped = _payload(data, "OrderShipped")
        shipped["properties"]["carrier"] = {"type": "string", "maxLength": 40}

    _edit_yaml(root, ASYNCAPI, change)


@pytest.fixture(scope="module")
def good_versioning(scenario: Scenario) -> DiffResult:
    return scenario(_good_versioning)[1]


def test_a_new_version_with_its_upcaster_acknowledges_the_change(
    good_versioning: DiffResult,
) -> None:
    result = good_versioning
    change = _one(
        result, "asyncapi.payload.required-property-added", "event OrderCreated payload: channel"
    )
    assert change.severity is Severity.ACKNOWLEDGED
    assert "schema version 1 → 2" in change.note
    bumped = _one(result, "asyncapi.schema-version-bumped", "event OrderCreated")
    assert "mc_test_upcasters.order_created_v1" in bumped.message
    assert not ({Severity.ERROR, Severity.BREAKING} & _severities(result))
    assert exit_code(result, allow_breaking=False) == 0


def test_a_widening_event_change_is_compatible_but_says_who_deploys_first(
    good_versioning: DiffResult,
) -> None:
    result = good_versioning
    change = _one(result, "asyncapi.payload.property-added", "event OrderShipped payload: carrier")
    assert change.severity is Severity.COMPATIBLE
    assert "deploy analytics-service before orders" in change.message


# --------------------------------------------------------------------------- proto


def _proto_breaking(root: Path) -> None:
    for old, new in (
        ("  rpc DeleteWidget(GetWidgetRequest) returns (Widget);\n", ""),
        ("rpc ListWidgets(ListWidgetsRequest)", "rpc ListWidgets(GetWidgetRequest)"),
        ("  int32 size = 3;", "  int64 size = 3;"),
        ("  string price = 4;", "  int64 amount = 4;"),
        ("  string name = 2;", "  string title = 2;"),
        ("  repeated string tags = 6;", "  string tags = 6;"),
        ("  string legacy_code = 7;\n", ""),
        ("  reserved 9;\n", "  string secret = 9;\n"),
        ("  COLOR_GREEN = 3;\n", ""),
        ("  COLOR_BLUE = 2;", "  COLOR_NAVY = 2;"),
    ):
        _replace(root, WIDGETS, old, new)


@pytest.fixture(scope="module")
def proto_breaking(breaking: tuple[Path, DiffResult]) -> DiffResult:
    return breaking[1]


@pytest.mark.parametrize(
    ("kind", "location"),
    [
        ("proto.method-removed", "widgets.v1.WidgetService/DeleteWidget"),
        ("proto.method-signature-changed", "widgets.v1.WidgetService/ListWidgets"),
        ("proto.field-type-changed", "widgets.v1.Widget.size (3)"),
        ("proto.field-number-reused", "widgets.v1.Widget.price (4)"),
        ("proto.field-renamed", "widgets.v1.Widget.name (2)"),
        ("proto.field-cardinality-changed", "widgets.v1.Widget.tags (6)"),
        ("proto.field-removed", "widgets.v1.Widget.legacy_code (7)"),
        ("proto.reserved-removed", "widgets.v1.Widget"),
        ("proto.reserved-reused", "widgets.v1.Widget.secret (9)"),
        ("proto.enum-value-removed", "widgets.v1.Color.COLOR_GREEN (3)"),
        ("proto.enum-value-renamed", "widgets.v1.Color.COLOR_BLUE (2)"),
    ],
)
def test_breaking_proto_changes(proto_breaking: DiffResult, kind: str, location: str) -> None:
    change = _one(proto_breaking, kind, location)
    assert change.severity is Severity.BREAKING
    assert change.source.startswith("specs/proto/widgets/v1/widgets.proto:")


def test_a_reused_field_number_says_what_it_was(proto_breaking: DiffResult) -> None:
    change = _one(proto_breaking, "proto.field-number-reused")
    assert "was price (string), now amount (int64)" in change.message


def _proto_compatible(root: Path) -> None:
    for old, new in (
        ("  string note = 8;\n", "  reserved 8;\n  string owner = 10;\n"),
        ("  COLOR_GREEN = 3;\n", "  COLOR_GREEN = 3;\n  COLOR_YELLOW = 4;\n"),
        (
            "  rpc ListWidgets(ListWidgetsRequest) returns (ListWidgetsResponse);\n",
            "  rpc ListWidgets(ListWidgetsRequest) returns (ListWidgetsResponse);\n"
            "  rpc CountWidgets(ListWidgetsRequest) returns (WidgetCount);\n",
        ),
        (
            "message GetWidgetRequest {",
            "message WidgetCount {\n  int64 count = 1;\n}\n\nmessage GetWidgetRequest {",
        ),
    ):
        _replace(root, WIDGETS, old, new)


@pytest.fixture(scope="module")
def proto_compatible(compatible: DiffResult) -> DiffResult:
    return compatible


def test_compatible_proto_changes(proto_compatible: DiffResult) -> None:
    result = proto_compatible
    assert _severities(result) == {Severity.COMPATIBLE}
    assert {c.kind for c in result.changes if c.area == "proto"} == {
        "proto.field-removed-reserved",
        "proto.field-added",
        "proto.enum-value-added",
        "proto.method-added",
        "proto.message-added",
    }


# --------------------------------------------------------------------------- saga


def _steps(data: Any) -> dict[str, Any]:
    return {step["name"]: step for step in data["steps"]}


def _saga_breaking(root: Path) -> None:
    def change(data: Any) -> None:
        steps = _steps(data)
        payment = steps["process_payment"]
        payment["action"]["timeout"] = "10s"
        payment["on_timeout"]["reason"] = "PAYMENT_FAILED"
        reserve = steps["reserve_inventory"]
        reserve["compensation"]["grpc"] = "inventory.v1.InventoryService/RestoreStock"
        reserve["retry"]["attempts"] = 2
        data["steps"] = [
            payment,
            reserve,
            steps["commit_reservation"],
            {
                "name": "notify_customer",
                "kind": "retriable",
                "action": {"local": "notify_customer", "emits": ["orders.confirmed"]},
            },
        ]

    _edit_yaml(root, SAGA, change)


@pytest.fixture(scope="module")
def saga_breaking(breaking: tuple[Path, DiffResult]) -> DiffResult:
    return breaking[1]


@pytest.mark.parametrize(
    ("kind", "location", "text"),
    [
        ("saga.steps-reordered", "saga create_order", "process_payment, reserve_inventory"),
        ("saga.step-removed", "saga create_order: step confirm_order", "in flight"),
        ("saga.step-added", "saga create_order: step notify_customer", "position 4"),
        ("saga.timeout-shortened", "saga create_order: step process_payment", "30000 ms → 10000"),
        ("saga.on-timeout-changed", "saga create_order: step process_payment", "PAYMENT_FAILED"),
        (
            "saga.compensation-participant-changed",
            "saga create_order: step reserve_inventory",
            "RestoreStock",
        ),
        ("saga.retry-reduced", "saga create_order: step reserve_inventory", "attempts 4 → 2"),
    ],
)
def test_breaking_saga_changes(
    saga_breaking: DiffResult, kind: str, location: str, text: str
) -> None:
    change = _one(saga_breaking, kind, location)
    assert change.severity is Severity.BREAKING
    assert text in change.message


def _saga_compatible(root: Path) -> None:
    def change(data: Any) -> None:
        data["version"] += 1
        steps = _steps(data)
        steps["process_payment"]["action"]["timeout"] = "60s"
        steps["reserve_inventory"]["retry"]["attempts"] = 6

    _edit_yaml(root, SAGA, change)


@pytest.fixture(scope="module")
def saga_compatible(compatible: DiffResult) -> DiffResult:
    return compatible


def test_longer_timeouts_and_more_retries_are_compatible(saga_compatible: DiffResult) -> None:
    result = saga_compatible
    assert _severities(result) == {Severity.COMPATIBLE}
    assert {c.kind for c in result.changes if c.area == "saga"} == {
        "saga.version-bumped",
        "saga.timeout-lengthened",
        "saga.retry-extended",
    }


# --------------------------------------------------------------------------- allowing


def _acknowledge(root: Path, entries: list[dict[str, str]]) -> None:
    text = yaml.safe_dump({"acknowledged": entries}, sort_keys=False)
    (root / "specs" / "breaking-changes.yaml").write_text(text, encoding="utf-8")


def _acknowledged(root: Path) -> None:
    _openapi_breaking(root)
    _unversioned_event_change(root)
    _acknowledge(
        root,
        [
            {
                "kind": "openapi.request.bound-tightened",
                "location": "openapi/orders.yaml#/components/schemas/CreateOrderItem: quantity",
                "reason": "No customer ever ordered more than 100 units.",
            },
            {
                "kind": "asyncapi.payload.required-property-added",
                "location": "event OrderCreated payload: channel",
                "reason": "Trying to skip the versioning rule.",
            },
            {
                "kind": "openapi.operation-removed",
                "location": "orders: DELETE /api/orders/{orderId}",
                "reason": "Stale entry.",
            },
        ],
    )


@pytest.fixture(scope="module")
def acknowledged(scenario: Scenario) -> tuple[Path, DiffResult]:
    return scenario(_acknowledged)


def test_an_acknowledged_breaking_change_no_longer_fails(
    acknowledged: tuple[Path, DiffResult],
) -> None:
    _, result = acknowledged
    change = _one(result, "openapi.request.bound-tightened")
    assert change.severity is Severity.ACKNOWLEDGED
    assert change.note == "No customer ever ordered more than 100 units."
    # Other breaking changes still count.
    assert _one(result, "openapi.path-removed").severity is Severity.BREAKING


def test_errors_cannot_be_acknowledged(acknowledged: tuple[Path, DiffResult]) -> None:
    _, result = acknowledged
    change = _one(result, "asyncapi.payload.required-property-added")
    assert change.severity is Severity.ERROR
    assert "cannot be acknowledged" in change.message


def test_stale_acknowledgements_are_reported(acknowledged: tuple[Path, DiffResult]) -> None:
    _, result = acknowledged
    stale = _one(result, "meta.unused-acknowledgement")
    assert stale.severity is Severity.COMPATIBLE
    assert stale.location == "orders: DELETE /api/orders/{orderId}"


def test_a_malformed_acknowledgement_file_fails_with_exit_2(
    template: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "repo"
    shutil.copytree(template, root, symlinks=True)
    _acknowledge(root, [{"kind": "openapi.path-removed", "location": "orders: /api/orders"}])
    assert run_spec_diff("main", allow_breaking=False, fmt="markdown", root=root) == 2
    assert "needs a non-empty reason" in capsys.readouterr().err


# --------------------------------------------------------------------------- CLI, exit codes


def test_breaking_changes_fail_unless_allowed(
    breaking: tuple[Path, DiffResult],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, _ = breaking
    argv = ["spec-diff", "--root", str(root), "--base", "main", "--format", "json"]
    monkeypatch.delenv("ALLOW_BREAKING", raising=False)
    assert generator_main(argv) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is False
    breaking_count = len([c for c in report["changes"] if c["severity"] == "breaking"])
    assert report["counts"]["breaking"] == breaking_count > 0
    monkeypatch.setenv("ALLOW_BREAKING", "1")
    assert generator_main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True
    assert report["allow_breaking"] is True


def test_an_unknown_ref_fails_with_exit_2(
    template: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_spec_diff("no-such-branch", allow_breaking=False, fmt="markdown", root=template) == 2
    assert "unknown git ref 'no-such-branch'" in capsys.readouterr().err


def test_the_markdown_summary_is_a_pull_request_comment(
    openapi_breaking: DiffResult, openapi_compatible: DiffResult
) -> None:
    text = render_markdown(openapi_breaking, allow_breaking=False)
    lines = text.splitlines()
    assert lines[0] == (
        f"## Spec diff: `main` (`{openapi_breaking.base_commit[:12]}`) → working tree"
    )
    assert lines[2].startswith("❌ **fails**: ")
    headings = [line for line in lines if line.startswith("### ")]
    assert headings[0].startswith("### ⚠️ Breaking changes (")
    assert headings[-1].startswith("### ✅ Compatible changes (")
    assert "<details><summary>Show them</summary>" in lines
    rows = [line for line in lines if line.startswith("| ") and "---" not in line]
    assert rows[0] == "| Spec | Change | Where | What |"
    assert len(rows) == len(openapi_breaking.changes) + len(headings)
    for row in rows:  # every row keeps its 4 cells: pipes in the text are escaped
        assert len(re.split(r"(?<!\\)\|", row)) == 6, row
    assert "^(SP\\|RJ\\|MG)$" in text
    passed = render_markdown(openapi_breaking, allow_breaking=True).splitlines()[2]
    assert passed.startswith("✅ **passes** (breaking changes allowed")
    assert (
        render_markdown(openapi_compatible, allow_breaking=False)
        .splitlines()[2]
        .startswith("✅ **passes**: ")
    )


# --------------------------------------------------------------------------- the real repo


def test_the_committed_specs_compared_with_themselves_have_no_changes(tmp_path: Path) -> None:
    base, head = tmp_path / "base", tmp_path / "head"
    export_specs(REPO_ROOT, "HEAD", base)
    export_specs(REPO_ROOT, "HEAD", head)
    assert compare_trees(base, head) == []


def test_the_real_working_tree_diffs_cleanly_against_head(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = run_spec_diff("HEAD", allow_breaking=False, fmt="json", root=REPO_ROOT)
    report = json.loads(capsys.readouterr().out)
    # Whatever is being edited right now, the diff is computed and consistent.
    assert code == (0 if report["passed"] else 1)
    assert sum(report["counts"].values()) == len(report["changes"])
    for change in report["changes"]:
        assert change["kind"].split(".")[0] in {"openapi", "asyncapi", "proto", "saga", "meta"}
        assert change["location"] and change["message"]
