"""Cross-checks between specs: every reference must land on something real."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from generator.catalog import Catalog, Route
from generator.errors import SpecError, join_pointer
from generator.saga import Action, SagaSpec
from generator.specset import SpecSet
from generator.yamlsource import SourceDocument

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


@dataclass(frozen=True)
class Operation:
    """One OpenAPI operation of one service."""

    service: str
    method: str  # upper case
    path: str
    operation_id: str
    pointer: str
    public: bool


def openapi_operations(service: str, document: SourceDocument) -> list[Operation]:
    """Every operation in a service's OpenAPI document, in document order."""
    operations = []
    global_security = document.data.get("security", [])
    for path, item in (document.data.get("paths") or {}).items():
        for method in HTTP_METHODS:
            operation = item.get(method)
            if not isinstance(operation, dict):
                continue
            security = operation.get("security", global_security)
            operations.append(
                Operation(
                    service=service,
                    method=method.upper(),
                    path=path,
                    operation_id=str(operation.get("operationId", "")),
                    pointer=join_pointer("paths", path, method),
                    public=not security or security == [{}],
                )
            )
    return operations


def _matched_prefix_length(route: Route, operation: Operation) -> int:
    """Length of the longest of the route's paths that prefixes the operation's; -1 if none."""
    return max(
        (
            len(prefix)
            for prefix in route.paths
            if operation.path == prefix or operation.path.startswith(prefix.rstrip("/") + "/")
        ),
        default=-1,
    )


def _route_matches(route: Route, operation: Operation) -> bool:
    if route.methods is not None and operation.method not in route.methods:
        return False
    return _matched_prefix_length(route, operation) >= 0


def serving_route(routes: tuple[Route, ...], operation: Operation) -> Route | None:
    """The route the gateway sends the operation's requests to, as Kong picks it.

    Kong counts the attributes a route matches on before it compares path lengths,
    so a route that lists methods wins over one that does not (a public ``GET``
    route next to a method-less JWT route for every other method), then the
    longest path prefix wins.
    """
    candidates = [route for route in routes if _route_matches(route, operation)]
    if not candidates:
        return None
    return max(
        candidates,
        key=lambda route: (route.methods is not None, _matched_prefix_length(route, operation)),
    )


def resolve_local(document: SourceDocument, node: Any) -> Any:
    """Follow ``#/...`` references inside one document."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        ref = node["$ref"]
        if not ref.startswith("#/"):
            return node
        node = document.data
        for token in ref[2:].split("/"):
            node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


class CrossChecker:
    """Collects cross-reference errors over a structurally valid spec set."""

    def __init__(self, specset: SpecSet, catalog: Catalog) -> None:
        self.specset = specset
        self.catalog = catalog
        self.errors: list[SpecError] = []
        self.catalog_doc = specset.catalog_doc

    def fail(self, document: SourceDocument, pointer: str, message: str) -> None:
        self.errors.append(document.error(pointer, message))

    # -- services catalog --------------------------------------------------------------
    def check_catalog(self) -> None:
        specs = self.specset.specs_dir
        ports: Counter[int] = Counter()
        producers = {t for s in self.catalog.services.values() for t in s.produces}
        for name, service in self.catalog.services.items():
            at = join_pointer("services", name)
            ports.update(p for p in (service.http_port, service.grpc_port) if p is not None)
            if service.openapi and not (specs / service.openapi).is_file():
                self.fail(
                    self.catalog_doc, f"{at}/openapi", f"no such file specs/{service.openapi}"
                )
            if service.proto and not (specs / service.proto).is_file():
                self.fail(self.catalog_doc, f"{at}/proto", f"no such file specs/{service.proto}")
            if service.proto and service.grpc_port is None:
                self.fail(self.catalog_doc, at, "a service with a proto needs a grpc_port")
            if (service.database is not None) != ("postgres" in service.uses):
                self.fail(self.catalog_doc, at, "'database' goes with 'uses: [postgres]'")
            if bool(service.consumes) != (service.consumer_group is not None):
                self.fail(self.catalog_doc, at, "'consumer_group' goes with a non-empty 'consumes'")
            if (service.produces or service.consumes) and "kafka" not in service.uses:
                self.fail(self.catalog_doc, f"{at}/uses", "a service using topics must use kafka")
            if service.gateway is not None and service.openapi is None:
                self.fail(self.catalog_doc, f"{at}/gateway", "gateway routes need an openapi spec")
            for index, callee in enumerate(service.calls):
                target = self.catalog.services.get(callee)
                if target is None or target.proto is None:
                    self.fail(
                        self.catalog_doc,
                        f"{at}/calls/{index}",
                        f"{callee!r} is not a service with a gRPC proto",
                    )
            for index, topic in enumerate(service.consumes):
                if topic not in producers:
                    self.fail(
                        self.catalog_doc,
                        f"{at}/consumes/{index}",
                        f"topic {topic!r} is consumed but no service produces it",
                    )
        infra = self.catalog.infrastructure
        ports.update(
            [
                self.catalog.platform.gateway.port,
                infra.postgres.port,
                infra.redis.port,
                infra.kafka.port,
                infra.kafka.controller_port,
            ]
        )
        for port, count in sorted(ports.items()):
            if count > 1:
                self.fail(self.catalog_doc, "/services", f"port {port} is used {count} times")

    # -- gateway routes ↔ OpenAPI ------------------------------------------------------
    def check_routes(self) -> None:
        seen_ids: dict[str, str] = {}
        route_names: Counter[str] = Counter()
        for name, service in self.catalog.services.items():
            document = self.specset.openapi.get(name)
            if document is None:
                continue
            operations = openapi_operations(name, document)
            for operation in operations:
                if not operation.operation_id:
                    self.fail(document, operation.pointer, "operation has no operationId")
                elif operation.operation_id in seen_ids:
                    self.fail(
                        document,
                        f"{operation.pointer}/operationId",
                        f"operationId {operation.operation_id!r} is also used in "
                        f"{seen_ids[operation.operation_id]}",
                    )
                else:
                    seen_ids[operation.operation_id] = document.relpath
            routes = service.gateway.routes if service.gateway else ()
            served_by = {op: serving_route(routes, op) for op in operations}
            for index, route in enumerate(routes):
                route_names[route.name] += 1
                at = join_pointer("services", name, "gateway", "routes", index)
                matched = [op for op in operations if served_by[op] is route]
                if not matched:
                    self.fail(
                        self.catalog_doc,
                        at,
                        f"route {route.name!r} ({', '.join(route.paths)}) matches no operation "
                        f"in specs/{service.openapi}",
                    )
                if route.auth == "jwt":
                    for op in matched:
                        if op.public:
                            self.fail(
                                document,
                                op.pointer,
                                f"{op.method} {op.path} is public but route {route.name!r} "
                                "requires a JWT",
                            )
            if service.gateway is not None:
                for op in operations:
                    if served_by[op] is None:
                        self.fail(
                            document,
                            op.pointer,
                            f"{op.method} {op.path} is not reachable through any gateway route "
                            f"of service {name!r} in specs/services.yaml",
                        )
        for route_name, count in route_names.items():
            if count > 1:
                self.fail(self.catalog_doc, "/services", f"route name {route_name!r} is not unique")

    # -- AsyncAPI ↔ catalog ------------------------------------------------------------
    def asyncapi_topics(self) -> dict[str, str]:
        """Topic address → channel key."""
        channels = self.specset.asyncapi.data.get("channels") or {}
        return {str(ch.get("address")): key for key, ch in channels.items() if isinstance(ch, dict)}

    def check_asyncapi(self) -> None:
        document = self.specset.asyncapi
        topics = self.asyncapi_topics()
        for name, service in self.catalog.services.items():
            for field_name in ("produces", "consumes"):
                for index, topic in enumerate(getattr(service, field_name)):
                    if topic not in topics:
                        self.fail(
                            self.catalog_doc,
                            join_pointer("services", name, field_name, index),
                            f"topic {topic!r} is not a channel address in {document.relpath}",
                        )
        declared: set[tuple[str, str, str]] = set()
        channel_topic = {key: topic for topic, key in topics.items()}
        for key, operation in (document.data.get("operations") or {}).items():
            at = join_pointer("operations", key)
            service = operation.get("x-service")
            ref = str((operation.get("channel") or {}).get("$ref", ""))
            topic = channel_topic.get(ref.removeprefix("#/channels/"))
            if service not in self.catalog.services:
                self.fail(document, f"{at}/x-service", f"unknown service {service!r}")
                continue
            if topic is None:
                self.fail(document, f"{at}/channel", f"unknown channel {ref!r}")
                continue
            action = operation.get("action")
            declared.add((service, str(action), topic))
            listed = (
                self.catalog.services[service].produces
                if action == "send"
                else (self.catalog.services[service].consumes)
            )
            if topic not in listed:
                verb = "produce" if action == "send" else "consume"
                self.fail(
                    document,
                    at,
                    f"service {service!r} does not {verb} {topic!r} in specs/services.yaml",
                )
        for name, service in self.catalog.services.items():
            for action, field_name in (("send", "produces"), ("receive", "consumes")):
                for index, topic in enumerate(getattr(service, field_name)):
                    if topic in topics and (name, action, topic) not in declared:
                        self.fail(
                            self.catalog_doc,
                            join_pointer("services", name, field_name, index),
                            f"no AsyncAPI operation with action {action!r} and x-service "
                            f"{name!r} for {topic!r}",
                        )
        self.check_message_keys(document)

    def check_message_keys(self, document: SourceDocument) -> None:
        for key, channel in (document.data.get("channels") or {}).items():
            for message_key, message in (channel.get("messages") or {}).items():
                at = join_pointer("channels", key, "messages", message_key)
                message = resolve_local(document, message)
                payload = resolve_local(document, message.get("payload"))
                key_field = message.get("x-key")
                properties = (payload or {}).get("properties") or {}
                if key_field not in properties or key_field not in payload.get("required", []):
                    self.fail(
                        document,
                        at,
                        f"x-key {key_field!r} must be a required field of the message payload",
                    )

    # -- sagas -------------------------------------------------------------------------
    def check_saga(self, saga: SagaSpec, document: SourceDocument) -> None:
        orchestrator = self.catalog.services.get(saga.orchestrator)
        if orchestrator is None:
            self.fail(document, "/orchestrator", f"unknown service {saga.orchestrator!r}")
            return
        topics = self.asyncapi_topics()
        if saga.starts_on not in orchestrator.produces:
            self.fail(
                document, "/starts_on", f"{saga.orchestrator!r} does not produce {saga.starts_on!r}"
            )
        for index, step in enumerate(saga.steps):
            for label, action in (("action", step.action), ("compensation", step.compensation)):
                if action is not None:
                    at = join_pointer("steps", index, label)
                    self.check_action(document, at, action, orchestrator.name, topics)

    def check_action(
        self,
        document: SourceDocument,
        at: str,
        action: Action,
        orchestrator: str,
        topics: dict[str, str],
    ) -> None:
        service = self.catalog.services[orchestrator]
        if action.grpc is not None:
            method = self.specset.protos.methods.get(action.grpc)
            if method is None:
                self.fail(
                    document,
                    f"{at}/grpc",
                    f"gRPC method {action.grpc!r} is not declared in any proto under specs/proto",
                )
                return
            owners = [
                s.name
                for s in self.catalog.services.values()
                if s.proto and f"specs/{s.proto}" == method.file
            ]
            if not set(owners) & set(service.calls):
                self.fail(
                    document,
                    f"{at}/grpc",
                    f"{orchestrator!r} calls {action.grpc!r} "
                    f"but does not list {owners or 'its service'} in 'calls'",
                )
        sent = [action.command] if action.command else list(action.emits)
        for topic in sent:
            if topic not in topics:
                self.fail(document, at, f"event {topic!r} does not exist in AsyncAPI")
            elif topic not in service.produces:
                self.fail(document, at, f"{orchestrator!r} does not produce {topic!r}")
        awaited = [*action.await_.success, *action.await_.failure] if action.await_ else []
        for topic in awaited:
            if topic not in topics:
                self.fail(
                    document, f"{at}/await", f"awaited event {topic!r} does not exist in AsyncAPI"
                )
            elif topic not in service.consumes:
                self.fail(
                    document,
                    f"{at}/await",
                    f"{orchestrator!r} awaits {topic!r} but does not consume it",
                )

    def run(self) -> list[SpecError]:
        self.check_catalog()
        self.check_routes()
        self.check_asyncapi()
        for saga, document in zip(self.specset.sagas, self.specset.saga_docs, strict=True):
            self.check_saga(saga, document)
        return self.errors


def cross_check(specset: SpecSet) -> list[SpecError]:
    """Every cross-reference rule over a structurally valid spec set."""
    assert specset.catalog is not None
    return CrossChecker(specset, specset.catalog).run()
