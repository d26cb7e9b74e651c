"""The cross-checks pick the route serving an operation the way Kong does.

A public ``GET`` route next to a method-less JWT route on the same prefix is how the
catalog lets a method no operation uses reach the service (405 + Allow, found by
contract fuzzing) while writes still need a token: Kong prefers the route that lists
methods, then the longest path. The checks must see the same winner, or they would
call the public reads JWT-protected (or the writes public).
"""

from __future__ import annotations

from generator.catalog import Route
from generator.crossref import Operation, serving_route

READ = Route(name="read", paths=("/api/inventory",), auth="none")
WRITE = Route(
    name="write", paths=("/api/inventory/products",), methods=("POST", "PATCH"), auth="jwt"
)
ADMIN = Route(name="admin", paths=("/api/inventory/admin",), auth="jwt")
ROUTES = (READ, WRITE, ADMIN)


def operation(method: str, path: str) -> Operation:
    return Operation("inventory", method, path, "op", "#/paths", public=method == "GET")


def test_a_route_listing_the_method_wins_over_a_method_less_one() -> None:
    assert serving_route(ROUTES, operation("POST", "/api/inventory/products")) is WRITE
    assert serving_route(ROUTES, operation("PATCH", "/api/inventory/products/{id}")) is WRITE


def test_among_method_less_routes_the_longest_prefix_wins() -> None:
    assert serving_route(ROUTES, operation("PUT", "/api/inventory/admin/faults/{p}")) is ADMIN
    assert serving_route(ROUTES, operation("GET", "/api/inventory/admin/faults")) is ADMIN


def test_everything_else_goes_to_the_method_less_public_route() -> None:
    assert serving_route(ROUTES, operation("GET", "/api/inventory/products")) is READ
    assert serving_route(ROUTES, operation("DELETE", "/api/inventory/products/{id}")) is READ


def test_an_operation_no_route_matches_has_no_serving_route() -> None:
    assert serving_route(ROUTES, operation("GET", "/api/orders")) is None
