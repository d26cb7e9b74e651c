"""kong.yml checked offline against Kong 3.8's schemas (kong_plugin_schemas.yaml).

Kong cannot run here (and decK could not be fetched), so every plugin config in the
generated file is validated field by field against the transcribed plugin schemas,
together with the entity-level rules Kong's declarative loader applies. The checker
itself is tested: a misspelt field, a wrong type and an unknown plugin are rejected.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any

import pytest
import yaml

from handwritten.gateway.kong_sync import jwt_secrets, with_jwt_secrets
from tests.gateway.support import TestKeys

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCHEMAS: dict[str, Any] = yaml.safe_load((HERE / "kong_plugin_schemas.yaml").read_text())
KONG_FILES = {
    "generated": ROOT / "infrastructure" / "gateway" / "kong.yml",
    "golden shop": HERE / "golden" / "shop" / "infrastructure" / "gateway" / "kong.yml.golden",
}
FORMAT_VERSIONS = {"1.1", "2.1", "3.0"}
TOP_LEVEL = {
    "_format_version",
    "_transform",
    "_workspace",
    "services",
    "routes",
    "consumers",
    "plugins",
    "upstreams",
    "certificates",
    "ca_certificates",
    "snis",
    "vaults",
    "consumer_groups",
}
HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
#: Entities nested in a consumer in the declarative format (credentials), checked here.
CONSUMER_CREDENTIALS = {"jwt_secrets"}


class Checker:
    """Collects every violation (a path and what is wrong) instead of stopping at one."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    # ------------------------------------------------------------------ values

    def value(self, value: Any, spec: Mapping[str, Any], path: str) -> None:
        kind = spec["type"]
        if not self._type_ok(value, kind):
            self.fail(path, f"expected a {kind}, got {type(value).__name__} {value!r}")
            return
        choices = spec.get("one_of") or SCHEMAS.get(spec.get("one_of_ref", ""))
        if choices is not None and value not in choices:
            self.fail(path, f"{value!r} is not one of {choices}")
        if "between" in spec:
            low, high = spec["between"]
            if not low <= value <= high:
                self.fail(path, f"{value} is not between {low} and {high}")
        if "gt" in spec and not value > spec["gt"]:
            self.fail(path, f"{value} must be greater than {spec['gt']}")
        if "starts_with" in spec and not value.startswith(spec["starts_with"]):
            self.fail(path, f"{value!r} must start with {spec['starts_with']!r}")
        if "match" in spec and not re.search(spec["match"], value):
            self.fail(path, f"{value!r} does not match {spec['match']!r}")
        if kind in ("array", "set"):
            if kind == "set" and len({repr(v) for v in value}) != len(value):
                self.fail(path, "a set cannot repeat elements")
            for index, element in enumerate(value):
                if "elements" in spec:
                    self.value(element, spec["elements"], f"{path}[{index}]")
        if kind == "record" and "fields" in spec:
            self.record(value, spec["fields"], path)

    @staticmethod
    def _type_ok(value: Any, kind: str) -> bool:
        if kind == "string":
            return isinstance(value, str)
        if kind == "boolean":
            return isinstance(value, bool)
        if kind == "integer":
            return isinstance(value, int) and not isinstance(value, bool)
        if kind == "number":
            return isinstance(value, int | float) and not isinstance(value, bool)
        if kind in ("array", "set"):
            return isinstance(value, list)
        if kind in ("record", "map"):
            return isinstance(value, dict)
        if kind == "foreign":
            return isinstance(value, str) or (
                isinstance(value, dict) and bool(set(value) & {"name", "id", "username"})
            )
        raise AssertionError(f"unknown schema type {kind}")

    def record(
        self,
        value: Mapping[str, Any],
        fields: Mapping[str, Any],
        path: str,
        *,
        ignore: AbstractSet[str] = frozenset(),
    ) -> None:
        for name, item in value.items():
            if name in ignore:
                continue
            if name not in fields:
                self.fail(f"{path}.{name}", "unknown field")
            elif item is not None:
                self.value(item, fields[name], f"{path}.{name}")
        for name, spec in fields.items():
            if spec.get("required") and value.get(name) is None:
                self.fail(f"{path}.{name}", "required field missing")

    def entity_checks(self, value: Mapping[str, Any], checks: list[Any], path: str) -> None:
        for check in checks:
            if "at_least_one_of" in check:
                names = check["at_least_one_of"]
                if all(_get(value, name) is None for name in names):
                    self.fail(path, f"at least one of {names} is required")
            if "conditional" in check:
                rule = check["conditional"]
                if _matches(_get(value, rule["if_field"]), rule["if_match"]) and not _matches(
                    _get(value, rule["then_field"]), rule["then_match"]
                ):
                    self.fail(
                        f"{path}.{rule['then_field']}",
                        f"must be {rule['then_match']} when {rule['if_field']} is"
                        f" {rule['if_match']}",
                    )

    # ------------------------------------------------------------------ entities

    def plugin(self, plugin: Mapping[str, Any], path: str) -> None:
        name = plugin.get("name")
        self.record(plugin, SCHEMAS["plugin_entity"]["fields"], path)
        if name not in SCHEMAS["bundled_plugins"]:
            self.fail(f"{path}.name", f"unknown plugin {name!r} (not bundled with Kong OSS)")
            return
        schema = SCHEMAS["plugins"].get(name)
        if schema is None:
            self.fail(f"{path}.name", f"no transcribed schema for {name!r}")
            return
        if schema.get("no_consumer") and plugin.get("consumer") is not None:
            self.fail(f"{path}.consumer", f"{name} cannot be scoped to a consumer")
        for index, protocol in enumerate(plugin.get("protocols") or []):
            if protocol not in SCHEMAS[schema["protocols"]]:
                self.fail(f"{path}.protocols[{index}]", f"{name} does not run on {protocol}")
        config = plugin.get("config") or {}
        fields = {**schema["config"], **schema.get("shorthand_fields", {})}
        self.record(config, fields, f"{path}.config")
        self.entity_checks(config, schema.get("entity_checks", []), f"{path}.config")

    def document(self, document: Mapping[str, Any]) -> None:
        if str(document.get("_format_version")) not in FORMAT_VERSIONS:
            self.fail("_format_version", f"{document.get('_format_version')!r} is not supported")
        for key in document:
            if key not in TOP_LEVEL:
                self.fail(key, "unknown top-level key")
        entities = SCHEMAS["entities"]
        service_names: set[str] = set()
        route_names: set[str] = set()
        for s_index, service in enumerate(document.get("services") or []):
            path = f"services[{s_index}]"
            self.record(service, entities["services"]["fields"], path, ignore={"routes", "plugins"})
            if not service.get("url") and not service.get("host"):
                self.fail(path, "a service needs a url or a host")
            self._unique(service.get("name"), service_names, f"{path}.name")
            for r_index, route in enumerate(service.get("routes") or []):
                self.route(route, f"{path}.routes[{r_index}]", route_names)
            for p_index, plugin in enumerate(service.get("plugins") or []):
                self.plugin(plugin, f"{path}.plugins[{p_index}]")
        for r_index, route in enumerate(document.get("routes") or []):
            self.route(route, f"routes[{r_index}]", route_names)
        usernames: set[str] = set()
        for c_index, consumer in enumerate(document.get("consumers") or []):
            path = f"consumers[{c_index}]"
            self.record(
                consumer,
                entities["consumers"]["fields"],
                path,
                ignore={"plugins", *CONSUMER_CREDENTIALS},
            )
            self.entity_checks(consumer, entities["consumers"]["entity_checks"], path)
            self._unique(consumer.get("username"), usernames, f"{path}.username")
            for k_index, secret in enumerate(consumer.get("jwt_secrets") or []):
                self.record(
                    secret, entities["jwt_secrets"]["fields"], f"{path}.jwt_secrets[{k_index}]"
                )
        for p_index, plugin in enumerate(document.get("plugins") or []):
            self.plugin(plugin, f"plugins[{p_index}]")

    def route(self, route: Mapping[str, Any], path: str, names: set[str]) -> None:
        self.record(route, SCHEMAS["entities"]["routes"]["fields"], path, ignore={"plugins"})
        self._unique(route.get("name"), names, f"{path}.name")
        for index, method in enumerate(route.get("methods") or []):
            if method not in HTTP_METHODS:
                self.fail(f"{path}.methods[{index}]", f"{method!r} is not an HTTP method")
        if not any(route.get(k) for k in ("methods", "hosts", "headers", "paths")):
            self.fail(path, "an http route needs methods, hosts, headers or paths")
        for index, plugin in enumerate(route.get("plugins") or []):
            self.plugin(plugin, f"{path}.plugins[{index}]")

    def _unique(self, name: Any, seen: set[str], path: str) -> None:
        if name is None:
            return
        if name in seen:
            self.fail(path, f"{name!r} is not unique")
        seen.add(name)


def _get(value: Mapping[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)  # type: ignore[assignment]
    return value


def _matches(value: Any, condition: Mapping[str, Any]) -> bool:
    if "eq" in condition:
        return bool(value == condition["eq"])
    if "gt" in condition:
        return isinstance(value, int | float) and value > condition["gt"]
    if "required" in condition:
        return value is not None
    if "contains" in condition:
        return isinstance(value, list) and condition["contains"] in value
    raise AssertionError(f"unknown condition {condition}")


def violations(document: Mapping[str, Any]) -> list[str]:
    checker = Checker()
    checker.document(document)
    return checker.errors


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(KONG_FILES[name].read_text())
    return data


# ------------------------------------------------------------------ the real files


@pytest.mark.parametrize("name", sorted(KONG_FILES))
def test_kong_yml_conforms_to_kong_3_8_schemas(name: str) -> None:
    assert violations(load(name)) == []


def test_every_plugin_of_the_generated_file_was_checked() -> None:
    document = load("generated")
    names = {p["name"] for p in document["plugins"]} | {
        p["name"] for s in document["services"] for r in s["routes"] for p in r["plugins"]
    }
    assert names == set(SCHEMAS["plugins"])  # all six transcribed schemas are exercised


def test_the_config_the_jwks_sync_posts_conforms() -> None:
    document = with_jwt_secrets(
        load("generated"), "microcommerce-users", jwt_secrets({"keys": [TestKeys().jwk()]})
    )
    assert violations(document) == []


# ------------------------------------------------------------------ the checker rejects


def _orders(document: dict[str, Any]) -> dict[str, Any]:
    route: dict[str, Any] = next(
        r for s in document["services"] for r in s["routes"] if r["name"] == "orders"
    )
    return route


def _plugin(route: dict[str, Any], name: str) -> dict[str, Any]:
    plugin: dict[str, Any] = next(p for p in route["plugins"] if p["name"] == name)
    return plugin


def rejected(edit: Any) -> list[str]:
    document = copy.deepcopy(load("generated"))
    edit(document)
    return violations(document)


def test_a_misspelt_field_is_rejected() -> None:
    errors = rejected(
        lambda d: _plugin(_orders(d), "jwt")["config"].update({"claim_to_verify": ["exp"]})
    )
    assert errors == ["services[4].routes[0].plugins[1].config.claim_to_verify: unknown field"]
    errors = rejected(lambda d: _orders(d).update({"strip_paths": False}))
    assert errors == ["services[4].routes[0].strip_paths: unknown field"]
    errors = rejected(
        lambda d: _plugin(_orders(d), "rate-limiting")["config"]["redis"].update({"hots": "x"})
    )
    assert errors == ["services[4].routes[0].plugins[2].config.redis.hots: unknown field"]


def test_a_wrong_type_is_rejected() -> None:
    errors = rejected(
        lambda d: _plugin(_orders(d), "rate-limiting")["config"].update({"minute": "100"})
    )
    assert len(errors) == 1 and "config.minute: expected a number, got str" in errors[0]
    errors = rejected(
        lambda d: _plugin(_orders(d), "jwt")["config"].update({"run_on_preflight": "false"})
    )
    assert len(errors) == 1 and "run_on_preflight: expected a boolean" in errors[0]
    errors = rejected(
        lambda d: _plugin(_orders(d), "rate-limiting")["config"]["redis"].update({"port": 6379.5})
    )
    assert len(errors) == 1 and "redis.port: expected a integer" in errors[0]


def test_an_unknown_plugin_is_rejected() -> None:
    errors = rejected(lambda d: d["plugins"].append({"name": "jwt-keycloak", "config": {}}))
    assert errors == ["plugins[2].name: unknown plugin 'jwt-keycloak' (not bundled with Kong OSS)"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda d: _plugin(_orders(d), "rate-limiting")["config"].update({"limit_by": "user"}),
            "config.limit_by: 'user' is not one of",
        ),
        (
            lambda d: _plugin(_orders(d), "rate-limiting")["config"].pop("redis"),
            "config.redis.host: must be {'required': True} when policy is {'eq': 'redis'}",
        ),
        (
            lambda d: _plugin(_orders(d), "rate-limiting")["config"].pop("header_name"),
            "config.header_name: must be {'required': True} when limit_by is",
        ),
        (
            lambda d: _plugin(_orders(d), "rate-limiting")["config"].pop("minute"),
            "at least one of ['second', 'minute', 'hour', 'day', 'month', 'year']",
        ),
        (
            lambda d: _plugin(_orders(d), "rate-limiting")["config"].update({"minute": 0}),
            "config.minute: 0 must be greater than 0",
        ),
        (
            lambda d: _plugin(_orders(d), "jwt")["config"].update({"claims_to_verify": ["nbf"]}),
            "config.claims_to_verify: must be {'contains': 'exp'} when maximum_expiration",
        ),
        (
            lambda d: _plugin(_orders(d), "jwt")["config"].update({"claims_to_verify": ["iat"]}),
            "config.claims_to_verify[0]: 'iat' is not one of ['exp', 'nbf']",
        ),
        (
            lambda d: _plugin(_orders(d), "jwt")["config"].update({"header_names": ["a", "a"]}),
            "config.header_names: a set cannot repeat elements",
        ),
        (
            lambda d: d["plugins"][0]["config"].update({"generator": "ulid"}),
            "plugins[0].config.generator: 'ulid' is not one of",
        ),
        (
            lambda d: _plugin(_orders(d), "pre-function").update({"config": {}}),
            "at least one of ['certificate', 'rewrite', 'access'",
        ),
        (
            lambda d: _plugin(_orders(d), "jwt").update({"consumer": "microcommerce-users"}),
            "jwt cannot be scoped to a consumer",
        ),
        (lambda d: _orders(d).update({"paths": ["api/orders"]}), "does not match '^[/~]'"),
        (lambda d: _orders(d).update({"methods": ["FETCH"]}), "'FETCH' is not an HTTP method"),
        (lambda d: _orders(d).update({"methods": ["get"]}), "'get' does not match"),
        (lambda d: _orders(d).update({"name": "shipping"}), ".name: 'shipping' is not unique"),
        (lambda d: _orders(d).update({"paths": None}), "needs methods, hosts, headers or paths"),
        (lambda d: d["services"][0].pop("url"), "services[0]: a service needs a url or a host"),
        (lambda d: d["services"][1].update({"name": "analytics"}), "'analytics' is not unique"),
        (lambda d: d.update({"_format_version": "4.0"}), "_format_version: '4.0' is not supported"),
        (lambda d: d.update({"service": []}), "service: unknown top-level key"),
        (lambda d: d["consumers"][0].pop("username"), "at least one of ['custom_id', 'username']"),
    ],
)
def test_entity_and_plugin_rules_are_enforced(edit: Any, expected: str) -> None:
    errors = rejected(edit)
    assert any(expected in error for error in errors), errors
