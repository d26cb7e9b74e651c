"""The BFF's GraphQL schemas (handwritten/bff/schema/*.graphql), fuzzed through the gateway.

Schemathesis writes queries and mutations from the SDL (every root field, arguments
from their types) and checks that no response is a server failure, that valid
documents are executed and that no non-null field comes back null.

A GraphQL error with a path is a server error to schemathesis unless its code says
otherwise, and the BFF reports its domain outcomes that way, with documented codes
(the SDL's descriptions and specs/openapi/bff.yaml): an order that does not exist or
is not the caller's (NOT_FOUND), an id that is not a UUID (BAD_USER_INPUT, the SDL's
``ID`` cannot say so), not enough stock (INSUFFICIENT_STOCK), an order past canceling
(CONFLICT), a degraded downstream (SERVICE_UNAVAILABLE). Failures made only of such
errors are the API working as documented and are dropped; anything else, such as
INTERNAL_SERVER_ERROR or an unknown code, still fails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis import AuthContext, Case, HookContext, Response
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import Failure
from schemathesis.graphql.checks import GraphQLClientError, GraphQLServerError

from tests.contract.budget import BUDGET
from tests.contract.contracts import PLACEHOLDER_TOKENS, call_kwargs

pytestmark = pytest.mark.infra

SDL = Path(__file__).resolve().parents[2] / "handwritten" / "bff" / "schema"
DOMAIN_CODES = frozenset(
    {"NOT_FOUND", "BAD_USER_INPUT", "INSUFFICIENT_STOCK", "CONFLICT", "SERVICE_UNAVAILABLE"}
)


class CustomerAuth:
    """Every GraphQL request is a customer's (resolved when sent, see transport.py)."""

    def get(self, case: Case, context: AuthContext) -> str:
        return PLACEHOLDER_TOKENS["customer"]

    def set(self, case: Case, data: str, context: AuthContext) -> None:
        case.headers = {**(case.headers or {}), "Authorization": data}


def only_documented_outcomes(
    context: HookContext, failure: Failure, case: Case, response: Response
) -> bool:
    """A ``filter_failure`` hook: keep a GraphQL error failure unless every error in it
    carries one of the documented domain codes."""
    if not isinstance(failure, GraphQLClientError | GraphQLServerError):
        return True
    codes = {_code(error) for error in failure.errors}
    return not codes <= DOMAIN_CODES


def _code(error: Any) -> str | None:
    extensions = error.get("extensions") if isinstance(error, dict) else None
    code = extensions.get("code") if isinstance(extensions, dict) else None
    return code if isinstance(code, str) else None


def load_graphql(shape: str, path: str) -> Any:
    config = SchemathesisConfig.from_dict(
        {"base-url": f"{BUDGET.gateway_url}{path}", "request-timeout": 30}
    )
    schema = schemathesis.graphql.from_path(SDL / f"{shape}.graphql", config=config)
    schema.auth(refresh_interval=None)(CustomerAuth)
    schema.hooks.register_hook_with_name(only_documented_outcomes, "filter_failure")
    return schema


web = load_graphql("web", "/graphql")
mobile = load_graphql("mobile", "/graphql/mobile")


@web.parametrize()
@BUDGET.settings()
def test_the_web_graphql_schema_holds(case: Case) -> None:
    case.call_and_validate(**call_kwargs())


@mobile.parametrize()
@BUDGET.settings()
def test_the_mobile_graphql_schema_holds(case: Case) -> None:
    case.call_and_validate(**call_kwargs())
