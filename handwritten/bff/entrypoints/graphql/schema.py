"""The two executable schemas, with limits against abusive documents.

Limits (validation rules, so nothing runs and no downstream is called when one
is broken):

- depth (``QueryDepthLimiter``, fields above the deepest leaf, fragments
  included): the deepest selections this schema allows have depth 4
  (``ordersPage → orders → items → product → name``, ``… shipping → history →
  status``). The default limit 5 leaves one level for growth; the schema has no
  cycles today, so the limit is what keeps a future one (a type pointing back to
  ``Order``) from becoming an exponential query;
- aliases (``MaxAliasesLimiter``): aliases are the way to repeat an expensive root
  field (``a: orders … b: orders …``) inside one request;
- tokens (``MaxTokensLimiter``): bounds parsing and breadth (thousands of fields);
- list sizes are bounded by the arguments themselves (``first`` ≤ 100).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionContext, ExecutionResult

from handwritten.bff.domain.errors import BffError
from handwritten.bff.entrypoints.graphql import mobile, web
from handwritten.bff.entrypoints.graphql.common import SCALARS
from handwritten.runtime.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Limits:
    max_depth: int = 5
    max_aliases: int = 15
    max_tokens: int = 2000
    introspection: bool = True


class BffSchema(strawberry.Schema):
    """A strawberry schema that logs only unexpected resolver errors.

    Strawberry logs every error with its stack trace; NOT_FOUND or an unavailable
    downstream are normal answers here (the client gets them in ``errors``).
    """

    async def run(
        self,
        query: str,
        *,
        variables: dict[str, Any] | None,
        context: Any,
        operation_name: str | None,
    ) -> ExecutionResult:
        """``execute``, with the request errors strawberry leaves to its own HTTP views
        (no operation to run: an unknown ``operationName``, a document without any)
        answered as GraphQL errors, like every other error in the document, instead of
        escaping as a 500."""
        try:
            return await self.execute(
                query,
                variable_values=variables,
                context_value=context,
                operation_name=operation_name,
            )
        except CannotGetOperationTypeError:
            message = (
                f'Unknown operation named "{operation_name}".'
                if operation_name is not None
                else "The document has no operation to run."
            )
        except InvalidOperationTypeError as error:
            message = f"{error.operation_type.value} operations are not supported."
        except MissingQueryError:
            message = "The request has no GraphQL document."
        return ExecutionResult(data=None, errors=[GraphQLError(message)])

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            original = error.original_error
            # No path: the document or its variables were refused before execution.
            if (
                error.path is not None
                and original is not None
                and not isinstance(original, BffError)
            ):
                log.error(
                    "unexpected error in a resolver",
                    path=error.path,
                    exc_info=original,
                )


def _extensions(limits: Limits) -> list[Callable[[], SchemaExtension]]:
    # Factories, not instances: strawberry then builds fresh extensions per request
    # (an instance would share its execution context between concurrent requests).
    extensions: list[Callable[[], SchemaExtension]] = [
        partial(QueryDepthLimiter, max_depth=limits.max_depth),
        partial(MaxAliasesLimiter, max_alias_count=limits.max_aliases),
        partial(MaxTokensLimiter, max_token_count=limits.max_tokens),
    ]
    if not limits.introspection:
        extensions.append(DisableIntrospection)
    return extensions


def build_web_schema(limits: Limits) -> BffSchema:
    return BffSchema(
        query=web.Query,
        mutation=web.Mutation,
        extensions=_extensions(limits),
        config=StrawberryConfig(scalar_map=SCALARS),
    )


def build_mobile_schema(limits: Limits) -> BffSchema:
    return BffSchema(
        query=mobile.Query,
        mutation=mobile.Mutation,
        extensions=_extensions(limits),
        config=StrawberryConfig(scalar_map=SCALARS),
    )


#: The shapes by name (the SDL files in ``handwritten/bff/schema/`` are named so).
SHAPES = {"web": build_web_schema, "mobile": build_mobile_schema}
