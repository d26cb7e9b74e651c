"""kong.yml parsing: the generated file, plugin resolution, and what is refused."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from handwritten.gateway.domain.config import (
    EMPTY_UUID,
    ConfigError,
    CorrelationIdPlugin,
    JwtPlugin,
    PrometheusPlugin,
    RateLimitingPlugin,
    RequestTransformerPlugin,
    UserIdFromTokenPlugin,
    kong_entity_id,
    parse_kong_config,
)

ROOT = Path(__file__).resolve().parents[3]
KONG_YML = ROOT / "infrastructure" / "gateway" / "kong.yml"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(KONG_YML.read_text())
    return data


def edited(document: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(document)


def test_the_generated_kong_yml(document: dict[str, Any]) -> None:
    config = parse_kong_config(document)
    assert [r.name for r in config.routes] == [
        "analytics",
        "auth",
        "jwks",
        "graphql",
        "inventory-read",
        "inventory-write",
        "inventory-admin",
        "orders",
        "payments",
        "shipping",
    ]
    assert config.consumers == ("microcommerce-users",)
    orders = config.route("orders")
    assert orders.service.name == "orders"
    assert (orders.service.host, orders.service.port) == ("orders", 8102)
    assert orders.strip_path is False and orders.preserve_host is False
    # Kong's execution order: priorities, highest first; globals included.
    assert [type(p) for p in orders.plugins] == [
        UserIdFromTokenPlugin,
        JwtPlugin,
        RateLimitingPlugin,
        PrometheusPlugin,
        CorrelationIdPlugin,
    ]
    public = config.route("inventory-read")
    assert [type(p) for p in public.plugins] == [
        RequestTransformerPlugin,
        PrometheusPlugin,
        CorrelationIdPlugin,
    ]


def test_plugin_settings_are_read(document: dict[str, Any]) -> None:
    config = parse_kong_config(document)
    orders = config.route("orders")
    jwt = orders.plugin(JwtPlugin)
    assert jwt == JwtPlugin(
        header_names=("authorization",),
        uri_param_names=(),
        cookie_names=(),
        key_claim_name="kid",
        claims_to_verify=("exp", "nbf"),
        maximum_expiration=900,
        run_on_preflight=False,
    )
    assert orders.plugin(UserIdFromTokenPlugin) == UserIdFromTokenPlugin(
        issuer="microcommerce-auth", audience="microcommerce"
    )
    limit = orders.plugin(RateLimitingPlugin)
    assert limit.limits == (("minute", 100),)
    assert (limit.limit_by, limit.header_name) == ("header", "X-User-ID")
    assert limit.fault_tolerant is True and limit.redis_timeout_ms == 2000
    assert limit.route_id == orders.id and limit.service_id == EMPTY_UUID
    correlation = orders.plugin(CorrelationIdPlugin)
    assert correlation == CorrelationIdPlugin("X-Correlation-ID", "uuid", echo_downstream=True)
    transformer = config.route("auth").plugin(RequestTransformerPlugin)
    assert transformer.remove_headers == ("X-User-ID",)


def test_entity_ids_are_kongs_deterministic_ones(document: dict[str, Any]) -> None:
    config = parse_kong_config(document)
    orders = config.route("orders")
    namespace = uuid.uuid5(uuid.UUID("fd02801f-0957-4a15-a55a-c8d9606f30b5"), "routes")
    assert orders.id == str(uuid.uuid5(namespace, "orders")) == kong_entity_id("routes", "orders")
    assert orders.service.id == kong_entity_id("services", "orders")


def test_a_route_plugin_overrides_the_global_one(document: dict[str, Any]) -> None:
    data = edited(document)
    orders = next(r for s in data["services"] for r in s["routes"] if r["name"] == "orders")
    orders["plugins"].append(
        {"name": "correlation-id", "config": {"header_name": "X-Trace", "generator": "uuid"}}
    )
    config = parse_kong_config(data)
    assert config.route("orders").plugin(CorrelationIdPlugin).header_name == "X-Trace"
    assert config.route("shipping").plugin(CorrelationIdPlugin).header_name == "X-Correlation-ID"


def test_service_level_plugins_apply_to_its_routes(document: dict[str, Any]) -> None:
    data = edited(document)
    shipping = next(s for s in data["services"] if s["name"] == "shipping")
    shipping["plugins"] = [{"name": "rate-limiting", "config": {"second": 5, "policy": "redis"}}]
    limit = parse_kong_config(data).route("shipping").plugin(RateLimitingPlugin)
    assert limit.limits == (("second", 5),)
    assert (limit.route_id, limit.service_id) == (
        EMPTY_UUID,
        kong_entity_id("services", "shipping"),
    )


def test_disabled_plugins_do_not_run(document: dict[str, Any]) -> None:
    data = edited(document)
    data["plugins"][0]["enabled"] = False  # correlation-id
    assert parse_kong_config(data).route("orders").plugin(CorrelationIdPlugin) is None


def _route(data: dict[str, Any], name: str) -> dict[str, Any]:
    route: dict[str, Any] = next(
        r for s in data["services"] for r in s["routes"] if r["name"] == name
    )
    return route


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["plugins"].append({"name": "key-auth"}), "plugin 'key-auth' is not supported"),
        (lambda d: d.__setitem__("_format_version", "1.1"), "_format_version"),
        (lambda d: d.__setitem__("upstreams", [{"name": "x"}]), "'upstreams' is not supported"),
        (lambda d: _route(d, "orders").__setitem__("paths", ["~/api/o.*"]), "regex paths"),
        (lambda d: _route(d, "orders").__setitem__("paths", ["api/orders"]), "must start with '/'"),
        (lambda d: _route(d, "orders").__setitem__("methods", ["FETCH"]), "invalid methods"),
        (lambda d: _route(d, "shipping").__setitem__("name", "orders"), "not unique"),
        (lambda d: d["services"][0].pop("url"), "needs a url or a host"),
        (
            lambda d: _route(d, "orders")["plugins"][0]["config"].__setitem__(
                "access", ["kong.service.request.set_header('X-User-ID', 'x')"]
            ),
            "unknown Lua",
        ),
        (
            lambda d: _route(d, "orders")["plugins"][2]["config"].__setitem__("policy", "local"),
            "policy 'local' is not supported",
        ),
        (
            lambda d: _route(d, "orders")["plugins"][1]["config"].__setitem__("anonymous", "x"),
            "anonymous",
        ),
        (
            lambda d: _route(d, "auth")["plugins"][0]["config"].__setitem__(
                "add", {"headers": ["X-A:1"]}
            ),
            "add is not supported",
        ),
        (
            lambda d: d["consumers"][0].__setitem__(
                "jwt_secrets", [{"key": "k", "algorithm": "RS256", "rsa_public_key": "pem"}]
            ),
            "jwt_secrets are not supported",
        ),
        (
            lambda d: d["plugins"].append({"name": "prometheus", "route": "nowhere"}),
            "unknown routes",
        ),
    ],
)
def test_what_this_gateway_cannot_enforce_is_refused(
    document: dict[str, Any], edit: Any, message: str
) -> None:
    data = edited(document)
    edit(data)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_kong_config(data)


def test_lua_string_escapes_in_the_pre_function(document: dict[str, Any]) -> None:
    data = edited(document)
    pre = _route(data, "orders")["plugins"][0]["config"]
    pre["access"] = [
        pre["access"][0].replace(
            'local ISSUER, AUDIENCE = "microcommerce-auth", "microcommerce"',
            'local ISSUER, AUDIENCE = "a\\"b\\\\c", "d\\065"',  # \065: decimal, "A"
        )
    ]
    plugin = parse_kong_config(data).route("orders").plugin(UserIdFromTokenPlugin)
    assert (plugin.issuer, plugin.audience) == ('a"b\\c', "dA")


def test_the_marker_is_the_generators() -> None:
    from generator.emit import infra
    from handwritten.gateway.domain.config import PRE_FUNCTION_MARKER

    assert PRE_FUNCTION_MARKER == infra.PRE_FUNCTION_MARKER
