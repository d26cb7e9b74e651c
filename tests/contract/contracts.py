"""One schemathesis schema per OpenAPI spec, aimed at the gateway and authenticated.

Every check schemathesis has is on (its defaults: server errors, status codes,
content types, headers and bodies against the spec, negative data refused, positive
data accepted, auth enforced, 405 for undeclared methods, use after free…).
Requests carry the credentials the operation's ``security`` asks for: none on public
operations, the fuzzer's own admin's token where ``x-roles`` says ``admin``, a customer's
token from the pool otherwise.
"""

from __future__ import annotations

import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import schemathesis
from hypothesis.errors import Flaky
from schemathesis import AuthContext, Case, HookContext, Response
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.engine.errors import is_inconsistent_replay
from schemathesis.openapi.checks import UnsupportedMethodResponse
from schemathesis.specs.openapi.schemas import OpenApiSchema

from handwritten.inventory.adapters.seed import DEMO_PRODUCTS
from tests.contract.budget import BUDGET, random_loopback
from tests.contract.identities import IdentityPool
from tests.contract.semantics import shape_positive_case
from tests.contract.stock import FuzzStock, ProductGuard
from tests.contract.transport import FuzzSession

SPECS = Path(__file__).resolve().parents[2] / "specs" / "openapi"
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})

IDENTITIES = IdentityPool(BUDGET.gateway_url, BUDGET.identity_address)
STOCK = FuzzStock(BUDGET.gateway_url, IDENTITIES.admin_token)
PRODUCTS = ProductGuard(STOCK, frozenset(str(p.product_id) for p in DEMO_PRODUCTS))
#: Placeholder bearer tokens, one per kind of account (see transport.py).
PLACEHOLDER_TOKENS = {"admin": "Bearer mc-fuzz-admin", "customer": "Bearer mc-fuzz-customer"}


def required_credentials(operation: schemathesis.APIOperation) -> str | None:
    """``None`` (public), ``"admin"`` or ``"customer"``, from the operation's spec."""
    return _credentials(operation.definition.raw, operation.schema.raw_schema)


def _credentials(raw: dict[str, Any], document: dict[str, Any]) -> str | None:
    security = raw.get("security", document.get("security", []))
    if not security or all(not requirement for requirement in security):
        return None
    return "admin" if "admin" in raw.get("x-roles", []) else "customer"


def gateway_authenticates_first(
    context: HookContext, failure: Failure, case: Case, response: Response
) -> bool:
    """A ``filter_failure`` hook keeping every failure but one kind.

    The one it drops: a 401 instead of 405 for a method no operation of the path
    declares, when the path also has operations that require a token. The gateway
    checks tokens by method and path prefix (``inventory-write``: POST and PATCH under
    /api/inventory/products), so such a request is refused before the service could
    say 405, and schemathesis only excuses the 401 when the operation it happened to
    test (say the public GET on that path) requires a token itself. With a token the
    service does answer 405 and ``Allow``, which the check verifies as usual.
    """
    if not isinstance(failure, UnsupportedMethodResponse) or response.status_code != 401:
        return True
    document = case.operation.schema.raw_schema
    item = document["paths"][case.operation.path]
    return not any(
        _credentials(operation, document) is not None
        for method, operation in item.items()
        if method in HTTP_METHODS and isinstance(operation, dict)
    )


class PoolAuth:
    """The credentials an operation needs, as a placeholder the session resolves
    into a token from the identity pool when the request is sent."""

    def get(self, case: Case, context: AuthContext) -> str | None:
        needed = required_credentials(context.operation)
        return None if needed is None else PLACEHOLDER_TOKENS[needed]

    def set(self, case: Case, data: str, context: AuthContext) -> None:
        case.headers = {**(case.headers or {}), "Authorization": data}


def resolve_deferred(request: requests.PreparedRequest) -> None:
    """Swap placeholder tokens and product ids for real ones, just before sending."""
    authorization = request.headers.get("Authorization")
    if authorization == PLACEHOLDER_TOKENS["admin"]:
        request.headers["Authorization"] = f"Bearer {IDENTITIES.admin_token()}"
    elif authorization == PLACEHOLDER_TOKENS["customer"]:
        path = urlsplit(request.url or "").path
        request.headers["Authorization"] = f"Bearer {IDENTITIES.customer_token(path)}"
    if isinstance(request.body, bytes):
        request.body = STOCK.resolve(request.body)
    PRODUCTS.redirect(request)


SESSION = FuzzSession(BUDGET.client_address, resolve_deferred, PRODUCTS.observe)


def load_contract(spec: str) -> OpenApiSchema:
    """The schema of ``specs/openapi/<spec>.yaml``, ready for ``parametrize()`` and
    ``as_state_machine()``."""
    config: dict[str, Any] = {
        "base-url": BUDGET.gateway_url,
        "request-timeout": 30,
        "generation": {"mode": "all", "max-examples": BUDGET.examples},
    }
    schema = schemathesis.openapi.from_path(
        SPECS / f"{spec}.yaml", config=SchemathesisConfig.from_dict(config)
    )
    schema.auth(refresh_interval=None)(PoolAuth)
    schema.hooks.register_hook_with_name(shape_positive_case, "map_case")
    schema.hooks.register_hook_with_name(gateway_authenticates_first, "filter_failure")
    return schema


def call_kwargs() -> dict[str, requests.Session]:
    """What every ``case.call`` needs: the fuzz client's session."""
    return {"session": SESSION}


def scenarios(schema: OpenApiSchema) -> type[Any]:
    """The ``unittest`` test case running ``schema``'s stateful scenarios.

    A scenario follows the spec's OpenAPI links (create an order, then read, cancel
    and inspect it…) as one client: one customer and one address for all its steps.

    Hypothesis expects a scenario to behave the same when it replays one, and the
    stack does not: an order moves on through its saga (a cancel that succeeded may
    later meet a shipped order and get 409), so Hypothesis can stop with its "flaky
    strategy" error although no check failed. That is the harness, not the API: as
    schemathesis' own runner does, such a stop is not a failure, but a warning says
    the scenarios ended early; a check failure seen before it is raised instead.
    """
    base = schema.as_state_machine()
    found: list[BaseException] = []

    class OneClientScenario(base):  # type: ignore[misc, valid-type]
        """One scenario, one client: a pinned customer and a loopback address of its own."""

        def setup(self) -> None:
            self._client = ExitStack()
            self._client.enter_context(IDENTITIES.scenario())
            self._session = self._client.enter_context(
                FuzzSession(random_loopback(), resolve_deferred, PRODUCTS.observe)
            )

        def teardown(self) -> None:
            self._client.close()

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"session": self._session}

        def validate_response(
            self, response: Response, case: Case, *args: Any, **kwargs: Any
        ) -> None:
            try:
                super().validate_response(response, case, *args, **kwargs)
            except FailureGroup as failure:
                found.append(failure)
                raise

    class Scenarios(OneClientScenario.TestCase):  # type: ignore[misc, name-defined]
        settings = BUDGET.settings(shrink=False)

        def runTest(self) -> None:
            found.clear()
            try:
                super().runTest()
            except Exception as error:
                if not (isinstance(error, Flaky) or is_inconsistent_replay(error)):
                    raise
                if found:
                    raise found[0] from error
                warnings.warn(
                    f"{schema.raw_schema['info']['title']}: Hypothesis stopped the scenarios "
                    "early (a replayed scenario met changed data); no check had failed",
                    stacklevel=1,
                )

    return Scenarios
