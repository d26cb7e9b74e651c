"""Kong's path normalisation, escaping and route priorities."""

from __future__ import annotations

import pytest

from handwritten.gateway.domain.routing import (
    RouteMatcher,
    Router,
    escape_path,
    normalize_path,
    upstream_path,
)


def utf8(text: str) -> str:
    """Text as the gateway holds paths: its UTF-8 bytes, one char each (latin-1)."""
    return text.encode("utf-8").decode("latin-1")


# Kong 3.8.1 spec/01-unit/18-tools_uri_spec.lua, case for case.
@pytest.mark.parametrize(
    ("raw", "merge", "normalized"),
    [
        ("", False, ""),
        ("/", False, "/"),
        ("/a", False, "/a"),
        ("/a/", False, "/a/"),
        ("/a/b/c/", False, "/a/b/c/"),
        ("/a%2Fb%2Fc/", False, "/a%2Fb%2Fc/"),
        (
            "/%20%21%23%24%25%26%27%28%29%2A%2B%2C%2F%3A%3B%3D%3F%40%5B%5D",
            False,
            "/ %21%23%24%25%26%27%28%29%2A%2B%2C%2F%3A%3B%3D%3F%40%5B%5D",
        ),
        ("/a%2fb%2fc/", False, "/a%2Fb%2Fc/"),
        ("/f%6f%6f", False, "/foo"),
        ("/%6B%6f%6e%67", False, "/kong"),
        ("/%2E", False, "/"),
        ("//", False, "//"),
        ("/./", False, "/"),
        ("/.", False, "/"),
        ("/..", False, "/"),
        ("/../", False, "/"),
        ("/////", False, "/////"),
        ("/./.././../", False, "/"),
        ("/a/b/c/./../../g", False, "/a/g"),
        ("mid/content=5/../6", False, "mid/6"),
        ("//", True, "/"),
        ("/////", True, "/"),
        ("/a//b//", True, "/a/b/"),
        ("/endel%C3%B8st", False, utf8("/endeløst")),
        (
            "/%C3%A4/a/%2e./a%2E//a/%2e/./a/../a/%2e%2E/%5f%99%af%2f%2F",
            True,
            utf8("/ä/a./a/_") + "\x99\xaf%2F%2F",
        ),
    ],
)
def test_normalize_path_as_kong(raw: str, merge: bool, normalized: str) -> None:
    assert normalize_path(raw, merge_slashes=merge) == normalized


def test_escape_path_as_kong() -> None:
    safe = "/!#$%&'()*+,/:;=?@[]ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~"
    assert escape_path(safe) == safe
    assert escape_path("/a b/c d") == "/a%20b/c%20d"
    assert escape_path(utf8("/a😀")) == "/a%F0%9F%98%80"
    assert escape_path(utf8("/endeløst")) == "/endel%C3%B8st"


def test_dot_segments_are_resolved_before_matching() -> None:
    assert normalize_path("/api/inventory/../orders") == "/api/orders"
    assert normalize_path("/api/inventory/%2e%2E/orders") == "/api/orders"
    assert normalize_path("//api//orders") == "/api/orders"


KONG_ROUTES = [
    RouteMatcher("analytics", ("/api/analytics",), frozenset({"GET"})),
    RouteMatcher("auth", ("/api/auth",)),
    RouteMatcher("jwks", ("/.well-known/jwks.json",), frozenset({"GET"})),
    RouteMatcher("graphql", ("/graphql",), frozenset({"POST"})),
    RouteMatcher("inventory-read", ("/api/inventory",), frozenset({"GET"})),
    RouteMatcher("inventory-write", ("/api/inventory",), frozenset({"POST", "PATCH"})),
    RouteMatcher("orders", ("/api/orders",)),
    RouteMatcher("shipping", ("/api/shipping",), frozenset({"GET"})),
]


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("GET", "/api/orders", "orders"),
        ("DELETE", "/api/orders/1/cancel", "orders"),
        ("GET", "/api/inventory/products", "inventory-read"),
        ("PATCH", "/api/inventory/products/1", "inventory-write"),
        ("DELETE", "/api/inventory/products/1", None),
        ("POST", "/graphql/mobile", "graphql"),
        ("GET", "/graphql", None),
        ("GET", "/api/auth/login", "auth"),
        ("GET", "/api", None),
        ("GET", "/", None),
        # Plain paths are string prefixes, not segments (Kong's ``http.path ^=``).
        ("GET", "/api/ordersX", "orders"),
    ],
)
def test_routes_of_the_generated_kong_yml(method: str, path: str, route: str | None) -> None:
    match = Router(KONG_ROUTES).match(method, path)
    assert (match.route.name if match else None) == route


def test_the_longest_prefix_wins_among_equal_attributes() -> None:
    router = Router([RouteMatcher("short", ("/api",)), RouteMatcher("long", ("/api/orders",))])
    match = router.match("GET", "/api/orders/1")
    assert match is not None and match.route.name == "long" and match.path == "/api/orders"
    other = router.match("GET", "/api/other")
    assert other is not None and other.route.name == "short"


def test_more_attributes_beat_a_longer_path() -> None:
    """Kong's priority puts the number of attributes (methods…) before path length."""
    router = Router(
        [
            RouteMatcher("long-any-method", ("/api/orders/special",)),
            RouteMatcher("short-with-method", ("/api",), frozenset({"GET"})),
        ]
    )
    match = router.match("GET", "/api/orders/special")
    assert match is not None and match.route.name == "short-with-method"
    match = router.match("POST", "/api/orders/special")
    assert match is not None and match.route.name == "long-any-method"


def test_each_path_of_a_route_competes_on_its_own_length() -> None:
    router = Router(
        [
            RouteMatcher("a", ("/x", "/api/orders/deep")),
            RouteMatcher("b", ("/api/orders",)),
        ]
    )
    assert (m := router.match("GET", "/api/orders/deep/1")) and m.route.name == "a"
    assert (m := router.match("GET", "/api/orders/1")) and m.route.name == "b"


def test_hosts_narrow_a_route() -> None:
    router = Router(
        [
            RouteMatcher("api", ("/",), hosts=("api.example.com",)),
            RouteMatcher("wild", ("/",), hosts=("*.example.org",)),
            RouteMatcher("any", ("/",)),
        ]
    )
    assert (m := router.match("GET", "/x", "API.example.com:8000")) and m.route.name == "api"
    assert (m := router.match("GET", "/x", "shop.example.org")) and m.route.name == "wild"
    assert (m := router.match("GET", "/x", "other.test")) and m.route.name == "any"


def test_upstream_path_v0() -> None:
    assert upstream_path("", "/api/orders/1", "/api/orders", strip=False) == "/api/orders/1"
    assert upstream_path("", "/api/orders/1", "/api/orders", strip=True) == "/1"
    assert upstream_path("", "/api/orders", "/api/orders", strip=True) == "/"
    assert upstream_path("/s", "/fv0req", "/fv0", strip=True) == "/sreq"
    assert upstream_path("/s/", "/fv0/req", "/fv0", strip=True) == "/s/req"
    assert upstream_path("/s", "/api/x", None, strip=False) == "/s/api/x"
