"""Every answer the gateway gives on its own is documented where it can happen.

Found by contract fuzzing (tests/contract): the gateway (Kong, or ours enforcing the
same kong.yml) refuses a missing or invalid token with 401 and the per-user rate
limit with 429 in Kong's format, ``{"message": ...}`` as ``application/json``, while
the specs documented only the services' problem+json bodies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.catalog import Catalog
from generator.crossref import Operation, serving_route

SPECS = Path(__file__).resolve().parents[2] / "specs"
CATALOG = Catalog.from_data(yaml.safe_load((SPECS / "services.yaml").read_text()))
COMMON = yaml.safe_load((SPECS / "openapi" / "common.yaml").read_text())
METHODS = ("get", "put", "post", "delete", "patch")


def gateway_served_operations() -> list[tuple[str, str, str, dict[str, Any], str, bool]]:
    found = []
    for name, service in CATALOG.services.items():
        if service.gateway is None or service.openapi is None:
            continue
        document = yaml.safe_load((SPECS / service.openapi).read_text())
        for path, item in document["paths"].items():
            for method in METHODS:
                if method not in item:
                    continue
                op = Operation(name, method.upper(), path, "", "", public=False)
                route = serving_route(service.gateway.routes, op)
                assert route is not None, f"{method.upper()} {path} has no route"
                limited = "rate-limiting" in route.plugins
                found.append((name, method, path, item[method], route.auth, limited))
    return found


def response(responses: dict[str, Any], status: str) -> dict[str, Any]:
    answer = responses.get(status)
    assert answer is not None, f"{status} is not documented"
    ref = answer.get("$ref", "")
    if ref.startswith("./common.yaml#/components/responses/"):
        return dict(COMMON["components"]["responses"][ref.rpartition("/")[2]])
    return dict(answer)


OPERATIONS = gateway_served_operations()


@pytest.mark.parametrize(
    ("service", "method", "path", "operation", "auth", "limited"),
    OPERATIONS,
    ids=[f"{method.upper()} {path}" for _, method, path, *_ in OPERATIONS],
)
def test_the_gateways_own_refusals_are_documented_as_kong_formats_them(
    service: str, method: str, path: str, operation: dict[str, Any], auth: str, limited: bool
) -> None:
    statuses = (["401"] if auth == "jwt" else []) + (["429"] if limited else [])
    for status in statuses:
        content = response(operation["responses"], status).get("content", {})
        assert content.get("application/json", {}).get("schema") == {
            "$ref": "#/components/schemas/GatewayError"
        }, f"{method.upper()} {path}: the gateway's {status} is not documented"
