"""A strawberry ``ExecutionResult`` as the GraphQL response body the spec declares.

- Errors before execution (syntax, validation, limits, variable coercion) leave out
  ``data``, as the GraphQL spec prescribes; after execution started ``data`` is
  present, possibly null.
- ``BffError``s keep their message and get ``extensions.code``; any other exception
  is masked ("An unexpected error occurred.", ``INTERNAL_SERVER_ERROR``): internals
  never reach the client.
- Degradations (fallback values) are added as errors with their path.
- At most 100 errors (the OpenAPI bound): the last one says how many were left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.types import ExecutionResult

from handwritten.bff.domain.errors import BffError
from handwritten.bff.service_layer.queries import Degradation

MAX_ERRORS = 100
MAX_MESSAGE = 4000


def format_error(error: GraphQLError) -> dict[str, Any]:
    formatted: dict[str, Any] = {}
    original = error.original_error
    if error.path is None:
        formatted["message"] = error.message
        if isinstance(error, GraphQLSyntaxError):
            code = "GRAPHQL_PARSE_FAILED"
        elif original is not None:
            code = "BAD_USER_INPUT"  # a variable's value did not coerce
        else:
            code = "GRAPHQL_VALIDATION_FAILED"
        extensions: dict[str, Any] = {"code": code}
    elif isinstance(original, BffError):
        formatted["message"] = original.message
        extensions = original.as_extensions()
    elif original is None:
        formatted["message"] = error.message
        extensions = {"code": "INTERNAL_SERVER_ERROR"}
    else:
        formatted["message"] = "An unexpected error occurred."
        extensions = {"code": "INTERNAL_SERVER_ERROR"}
    formatted["message"] = formatted["message"][:MAX_MESSAGE]
    if error.locations:
        formatted["locations"] = [
            {"line": location.line, "column": location.column} for location in error.locations
        ]
    if error.path is not None:
        formatted["path"] = list(error.path)
    formatted["extensions"] = extensions
    return formatted


def response_body(
    result: ExecutionResult, degradations: Sequence[Degradation] = ()
) -> dict[str, Any]:
    errors = [format_error(error) for error in result.errors or ()]
    executed = result.data is not None or any(error.get("path") for error in errors)
    errors += [degradation.formatted() for degradation in degradations]
    if len(errors) > MAX_ERRORS:
        left_out = len(errors) - (MAX_ERRORS - 1)
        errors = errors[: MAX_ERRORS - 1]
        errors.append(
            {
                "message": f"{left_out} more errors were left out.",
                "extensions": {"code": "TOO_MANY_ERRORS"},
            }
        )
    body: dict[str, Any] = {}
    if executed:
        body["data"] = result.data
    if errors:
        body["errors"] = errors
    return body
