"""A document whose operation cannot be chosen is a GraphQL error, never a 500.

Found by contract fuzzing (tests/contract): an ``operationName`` naming no operation
of the document made strawberry raise ``CannotGetOperationTypeError`` (it leaves
such request errors to its own HTTP views, which the BFF does not use), and the
BFF answered 500.
"""

from __future__ import annotations

import pytest

from handwritten.bff.entrypoints.graphql.response import response_body
from handwritten.bff.entrypoints.graphql.schema import SHAPES, Limits


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize(
    ("document", "operation_name", "message"),
    [
        ("query Mine { orders { id } }", "Other", 'Unknown operation named "Other".'),
        (
            "fragment F on Order { id }",
            None,
            "The document has no operation to run.",
        ),
    ],
)
async def test_a_document_without_an_operation_to_run_is_answered_in_errors(
    shape: str, document: str, operation_name: str | None, message: str
) -> None:
    schema = SHAPES[shape](Limits())
    # No resolver may run, so no context is needed.
    result = await schema.run(document, variables=None, context=None, operation_name=operation_name)
    body = response_body(result)
    assert "data" not in body
    assert body["errors"] == [
        {"message": message, "extensions": {"code": "GRAPHQL_VALIDATION_FAILED"}}
    ]
