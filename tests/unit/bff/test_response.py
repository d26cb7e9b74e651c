"""The response body: error codes, masking, degradations, the data rule, the cap."""

from __future__ import annotations

from graphql import GraphQLError, GraphQLSyntaxError, Source
from strawberry.types import ExecutionResult

from handwritten.bff.domain.errors import NotFoundError, ServiceUnavailableError
from handwritten.bff.entrypoints.graphql.response import MAX_ERRORS, format_error, response_body
from handwritten.bff.service_layer.queries import Degradation


def test_an_error_before_execution_leaves_data_out() -> None:
    syntax = GraphQLSyntaxError(Source("{ orders "), 9, "Expected Name, found <EOF>.")
    body = response_body(ExecutionResult(data=None, errors=[syntax]))
    assert "data" not in body
    assert body["errors"][0]["extensions"] == {"code": "GRAPHQL_PARSE_FAILED"}
    assert body["errors"][0]["locations"] == [{"line": 1, "column": 10}]

    invalid = GraphQLError("Cannot query field 'x' on type 'Query'.")
    assert response_body(ExecutionResult(data=None, errors=[invalid]))["errors"][0][
        "extensions"
    ] == {"code": "GRAPHQL_VALIDATION_FAILED"}


def test_an_error_during_execution_keeps_data_even_when_null() -> None:
    error = GraphQLError(
        "ignored", path=["orders"], original_error=ServiceUnavailableError("orders", reason="x")
    )
    body = response_body(ExecutionResult(data=None, errors=[error]))
    assert body["data"] is None
    assert body["errors"] == [
        {
            "message": "The orders service is unavailable right now; try again shortly.",
            "path": ["orders"],
            "extensions": {"code": "SERVICE_UNAVAILABLE", "service": "orders", "reason": "x"},
        }
    ]


def test_unexpected_exceptions_are_masked() -> None:
    leaked = RuntimeError("connection to 10.0.0.7:5432 failed, password=…")
    body = response_body(
        ExecutionResult(
            data={"order": None},
            errors=[GraphQLError(str(leaked), path=["order"], original_error=leaked)],
        )
    )
    assert body["errors"][0]["message"] == "An unexpected error occurred."
    assert body["errors"][0]["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}


def test_bff_errors_keep_their_message_and_code() -> None:
    error = GraphQLError(
        "x", path=["order"], original_error=NotFoundError("Order 1 was not found.")
    )
    assert format_error(error)["extensions"] == {"code": "NOT_FOUND"}
    assert format_error(error)["message"] == "Order 1 was not found."


def test_degradations_are_errors_next_to_the_data() -> None:
    degraded = Degradation(
        ("orders", 0, "items", 1, "productName"),
        ServiceUnavailableError("inventory", reason="circuit_open"),
        fallback="the product's name at order time",
    )
    body = response_body(ExecutionResult(data={"orders": []}, errors=None), [degraded])
    (error,) = body["errors"]
    assert error["path"] == ["orders", 0, "items", 1, "productName"]
    assert error["extensions"] == {
        "code": "SERVICE_UNAVAILABLE",
        "service": "inventory",
        "reason": "circuit_open",
        "degraded": True,
    }
    assert error["message"].endswith("Showing the product's name at order time instead.")


def test_a_clean_result_has_no_errors_key() -> None:
    assert response_body(ExecutionResult(data={"orders": []}, errors=None)) == {
        "data": {"orders": []}
    }


def test_errors_are_capped_with_a_note_of_how_many_were_left_out() -> None:
    errors = [
        GraphQLError("x", path=["orders", i, "shipping"], original_error=NotFoundError("gone"))
        for i in range(150)
    ]
    body = response_body(ExecutionResult(data={"orders": []}, errors=errors))
    assert len(body["errors"]) == MAX_ERRORS
    assert body["errors"][-1] == {
        "message": "51 more errors were left out.",
        "extensions": {"code": "TOO_MANY_ERRORS"},
    }
