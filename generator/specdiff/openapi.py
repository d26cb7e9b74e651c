"""OpenAPI: what an existing API client would notice.

Requests are read by the new server and written by old clients: a narrower request
schema breaks them, a wider one does not. Responses are written by the new server
and read by old clients: a wider response schema (a new enum value, a field that may
now be missing or null) breaks them; a new optional response field does not
(clients ignore unknown fields), a removed one does.

Operations are matched by method and path template, with path parameter names
ignored (``/orders/{id}`` is ``/orders/{orderId}``); path parameters are matched by
position, other parameters by location and name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generator.crossref import HTTP_METHODS
from generator.specdiff.model import Change, Severity
from generator.specdiff.schema import Delta, Documents, Node, SchemaComparer
from generator.specset import SpecSet

_PATH_PARAMETER = re.compile(r"\{[^}]+\}")
_SPECS_PREFIX = "specs/"


def documents(specset: SpecSet, label: str) -> Documents:
    """Every OpenAPI document of ``specset`` (services and shared components)."""
    docs = {doc.relpath: doc for doc in specset.openapi.values()}
    docs.update(specset.openapi_shared)
    return Documents(docs, label)


def _template(path: str) -> str:
    return _PATH_PARAMETER.sub("{}", path)


def _success(status: str) -> bool:
    return status[:1] in ("1", "2", "3")


@dataclass(frozen=True)
class _Operation:
    service: str
    method: str
    path: str
    node: Node  # the operation object
    item: Node  # its path item

    @property
    def label(self) -> str:
        return f"{self.service}: {self.method} {self.path}"


def _operations(service: str, root: Node) -> dict[tuple[str, str], _Operation]:
    found: dict[tuple[str, str], _Operation] = {}
    paths = root.child("paths")
    for path in paths.value or {}:
        item = paths.child(path)
        for method in HTTP_METHODS:
            if isinstance((item.value or {}).get(method), Mapping):
                found[(method.upper(), _template(path))] = _Operation(
                    service, method.upper(), path, item.child(method), item
                )
    return found


def _response_direction(delta: Delta) -> bool:
    """Whether ``delta`` breaks a client that reads responses of the old schema."""
    if delta.rule == "property-removed":
        return True
    if delta.rule in ("property-added", "required-property-added"):
        return False  # tolerant readers ignore unknown fields
    return delta.widens


class OpenApiDiff:
    """Compares the OpenAPI documents of two spec sets."""

    def __init__(self, base: SpecSet, head: SpecSet) -> None:
        self.base, self.head = base, head
        self.old = documents(base, "base")
        self.new = documents(head, "head")
        self.schemas = SchemaComparer(self.old, self.new)
        self.changes: list[Change] = []

    def run(self) -> list[Change]:
        """Every change, in no particular order (the report sorts and merges)."""
        for service in sorted(set(self.base.openapi) | set(self.head.openapi)):
            if service not in self.head.openapi:
                doc = self.base.openapi[service]
                self._add(
                    "openapi.api-removed",
                    Severity.BREAKING,
                    f"{service}: API",
                    f"the {service} API ({doc.relpath}) was removed",
                    self.old.source(self.old.root(doc.relpath)),
                )
            elif service not in self.base.openapi:
                doc = self.head.openapi[service]
                self._add(
                    "openapi.api-added",
                    Severity.COMPATIBLE,
                    f"{service}: API",
                    f"new API {doc.relpath}",
                    self.new.source(self.new.root(doc.relpath)),
                )
            else:
                self._service(service)
        return self.changes

    def _add(
        self,
        kind: str,
        severity: Severity,
        location: str,
        message: str,
        source: str,
        affects: tuple[str, ...] = (),
    ) -> None:
        self.changes.append(Change(kind, severity, location, message, source, affects))

    def _service(self, service: str) -> None:
        old_root = self.old.root(self.base.openapi[service].relpath)
        new_root = self.new.root(self.head.openapi[service].relpath)
        old_ops, new_ops = _operations(service, old_root), _operations(service, new_root)
        new_templates = {template for _, template in new_ops}
        removed_paths: dict[str, list[_Operation]] = {}
        for key, operation in old_ops.items():
            if key in new_ops:
                self._operation(operation, new_ops[key], old_root, new_root)
            elif key[1] not in new_templates:
                removed_paths.setdefault(operation.path, []).append(operation)
            else:
                self._add(
                    "openapi.operation-removed",
                    Severity.BREAKING,
                    operation.label,
                    "operation removed",
                    self.old.source(operation.node),
                )
        for path, operations in sorted(removed_paths.items()):
            methods = ", ".join(op.method for op in operations)
            self._add(
                "openapi.path-removed",
                Severity.BREAKING,
                f"{service}: {path}",
                f"path removed with its operations ({methods})",
                self.old.source(operations[0].item),
            )
        for key, operation in new_ops.items():
            if key not in old_ops:
                self._add(
                    "openapi.operation-added",
                    Severity.COMPATIBLE,
                    operation.label,
                    "new operation",
                    self.new.source(operation.node),
                )

    # ------------------------------------------------------------------ operation

    def _operation(self, old: _Operation, new: _Operation, old_root: Node, new_root: Node) -> None:
        label = new.label
        old_id = (old.node.value or {}).get("operationId")
        new_id = (new.node.value or {}).get("operationId")
        if old_id != new_id:
            self._add(
                "openapi.operation-id-changed",
                Severity.BREAKING,
                label,
                f"operationId {old_id!r} → {new_id!r}: generated clients and routers rename it",
                self.new.source(new.node.child("operationId")),
            )
        if (new.node.value or {}).get("deprecated") and not (old.node.value or {}).get(
            "deprecated"
        ):
            self._add(
                "openapi.operation-deprecated",
                Severity.COMPATIBLE,
                label,
                "deprecated",
                self.new.source(new.node),
            )
        self._security(old, new, old_root, new_root)
        self._parameters(old, new)
        self._request_body(old, new)
        self._responses(old, new)

    def _security(self, old: _Operation, new: _Operation, old_root: Node, new_root: Node) -> None:
        def public(operation: _Operation, root: Node) -> bool:
            value = operation.node.value or {}
            security = value.get("security", (root.value or {}).get("security", []))
            return not security or {} in security

        def roles(operation: _Operation) -> set[str]:
            return set((operation.node.value or {}).get("x-roles") or [])

        label, source = new.label, self.new.source(new.node)
        was_public, is_public = public(old, old_root), public(new, new_root)
        if was_public and not is_public:
            self._add(
                "openapi.security-added",
                Severity.BREAKING,
                label,
                "now requires authentication",
                source,
            )
        elif is_public and not was_public:
            self._add(
                "openapi.security-removed",
                Severity.COMPATIBLE,
                label,
                "no longer requires authentication",
                source,
            )
        before, after = roles(old), roles(new)
        if before != after:
            narrowed = bool(after) and (not before or bool(before - after))
            self._add(
                "openapi.roles-narrowed" if narrowed else "openapi.roles-widened",
                Severity.BREAKING if narrowed else Severity.COMPATIBLE,
                label,
                f"roles {sorted(before) or 'any'} → {sorted(after) or 'any'}",
                source,
            )

    def _parameters(self, old: _Operation, new: _Operation) -> None:
        old_params = self._parameter_map(old, self.old)
        new_params = self._parameter_map(new, self.new)
        for key, (old_node, old_param) in old_params.items():
            name = f"{key[0]} parameter {old_param.get('name')}"
            where = f"{new.label}, {name}"
            if key not in new_params:
                self._add(
                    "openapi.parameter-removed",
                    Severity.BREAKING,
                    where,
                    "parameter removed",
                    self.old.source(old_node),
                )
                continue
            new_node, new_param = new_params[key]
            if new_param.get("required") and not old_param.get("required"):
                self._add(
                    "openapi.parameter-now-required",
                    Severity.BREAKING,
                    where,
                    "parameter is now required",
                    self.new.source(new_node),
                )
            elif old_param.get("required") and not new_param.get("required"):
                self._add(
                    "openapi.parameter-now-optional",
                    Severity.COMPATIBLE,
                    where,
                    "parameter is now optional",
                    self.new.source(new_node),
                )
            for keyword in ("style", "explode"):
                if old_param.get(keyword) != new_param.get(keyword):
                    self._add(
                        "openapi.parameter-serialization-changed",
                        Severity.BREAKING,
                        where,
                        f"{keyword} {old_param.get(keyword)!r} → {new_param.get(keyword)!r}",
                        self.new.source(new_node),
                    )
            self._schema_deltas(
                old_node.child("schema"), new_node.child("schema"), where, request=True
            )
        for key, (new_node, new_param) in new_params.items():
            if key in old_params:
                continue
            where = f"{new.label}, {key[0]} parameter {new_param.get('name')}"
            if new_param.get("required"):
                self._add(
                    "openapi.parameter-required-added",
                    Severity.BREAKING,
                    where,
                    "new required parameter",
                    self.new.source(new_node),
                )
            else:
                self._add(
                    "openapi.parameter-added",
                    Severity.COMPATIBLE,
                    where,
                    "new optional parameter",
                    self.new.source(new_node),
                )

    @staticmethod
    def _parameter_map(
        operation: _Operation, side: Documents
    ) -> dict[tuple[str, str], tuple[Node, Mapping[str, Any]]]:
        positions = {
            name: index for index, name in enumerate(re.findall(r"\{([^}]+)\}", operation.path))
        }
        found: dict[tuple[str, str], tuple[Node, Mapping[str, Any]]] = {}
        for owner in (operation.item, operation.node):  # operation-level ones win
            parameters = owner.child("parameters")
            for index in range(len(parameters.value or [])):
                node, _ = side.resolve(parameters.child(index))
                value = node.value if isinstance(node.value, Mapping) else {}
                location, name = str(value.get("in")), str(value.get("name"))
                if location == "path":
                    key = ("path", f"#{positions.get(name, name)}")
                elif location == "header":
                    key = ("header", name.lower())
                else:
                    key = (location, name)
                found[key] = (node, value)
        return found

    def _request_body(self, old: _Operation, new: _Operation) -> None:
        old_body, _ = self.old.resolve(old.node.child("requestBody"))
        new_body, _ = self.new.resolve(new.node.child("requestBody"))
        where = f"{new.label}, request body"
        if old_body.value is None and new_body.value is None:
            return
        if new_body.value is None:
            self._add(
                "openapi.request-body-removed",
                Severity.BREAKING,
                where,
                "request body removed",
                self.old.source(old_body),
            )
            return
        required = bool(new_body.value.get("required"))
        if old_body.value is None:
            self._add(
                "openapi.request-body-added",
                Severity.BREAKING if required else Severity.COMPATIBLE,
                where,
                "new required request body" if required else "new optional request body",
                self.new.source(new_body),
            )
            return
        if required and not old_body.value.get("required"):
            self._add(
                "openapi.request-body-now-required",
                Severity.BREAKING,
                where,
                "request body is now required",
                self.new.source(new_body),
            )
        self._content(old_body, new_body, where, request=True)

    def _content(
        self, old: Node, new: Node, where: str, *, request: bool, affects: tuple[str, ...] = ()
    ) -> None:
        direction = "request" if request else "response"
        old_content = old.child("content")
        new_content = new.child("content")
        for media in old_content.value or {}:
            if media not in (new_content.value or {}):
                self._add(
                    f"openapi.{direction}-media-type-removed",
                    Severity.BREAKING,
                    f"{where} {media}",
                    "media type removed",
                    self.old.source(old_content.child(media)),
                    affects,
                )
                continue
            self._schema_deltas(
                old_content.child(media, "schema"),
                new_content.child(media, "schema"),
                f"{where} {media}",
                request=request,
                affects=affects,
            )
        for media in new_content.value or {}:
            if media not in (old_content.value or {}):
                self._add(
                    f"openapi.{direction}-media-type-added",
                    Severity.COMPATIBLE,
                    f"{where} {media}",
                    "new media type",
                    self.new.source(new_content.child(media)),
                    affects,
                )

    def _responses(self, old: _Operation, new: _Operation) -> None:
        old_responses = old.node.child("responses")
        new_responses = new.node.child("responses")
        before = {str(k): k for k in old_responses.value or {}}
        after = {str(k): k for k in new_responses.value or {}}
        for status, key in before.items():
            where = f"{new.label}, response {status}"
            if status in after:
                self._response(old_responses.child(key), new_responses.child(after[status]), where)
            elif _success(status):
                self._add(
                    "openapi.success-status-removed",
                    Severity.BREAKING,
                    where,
                    "success status removed: clients waiting for it break",
                    self.old.source(old_responses.child(key)),
                )
            else:
                self._add(
                    "openapi.error-status-removed",
                    Severity.COMPATIBLE,
                    where,
                    "error status no longer returned",
                    self.old.source(old_responses.child(key)),
                )
        for status, key in after.items():
            if status in before:
                continue
            where = f"{new.label}, response {status}"
            source = self.new.source(new_responses.child(key))
            if _success(status):
                self._add(
                    "openapi.success-status-added",
                    Severity.BREAKING,
                    where,
                    "new success status: clients may not expect it",
                    source,
                )
            else:
                self._add(
                    "openapi.error-status-added",
                    Severity.COMPATIBLE,
                    where,
                    "new error status",
                    source,
                )

    def _response(self, old: Node, new: Node, where: str) -> None:
        old_response, old_anchor = self.old.resolve(old)
        new_response, new_anchor = self.new.resolve(new)
        if old_anchor is not None and old_anchor == new_anchor:
            # A shared response (common.yaml's Unauthorized...): report it there once.
            affects: tuple[str, ...] = (where,)
            where = old_anchor.removeprefix(_SPECS_PREFIX)
        else:
            affects = ()
        old_headers = old_response.child("headers")
        new_headers = new_response.child("headers")
        before = {str(k).lower(): k for k in old_headers.value or {}}
        after = {str(k).lower(): k for k in new_headers.value or {}}
        for name, key in before.items():
            if name not in after:
                self._add(
                    "openapi.response-header-removed",
                    Severity.BREAKING,
                    f"{where} header {key}",
                    "response header removed",
                    self.old.source(old_headers.child(key)),
                    affects,
                )
                continue
            old_header, _ = self.old.resolve(old_headers.child(key))
            new_header, _ = self.new.resolve(new_headers.child(after[name]))
            self._schema_deltas(
                old_header.child("schema"),
                new_header.child("schema"),
                f"{where} header {key}",
                request=False,
                affects=affects,
            )
        for name, key in after.items():
            if name not in before:
                self._add(
                    "openapi.response-header-added",
                    Severity.COMPATIBLE,
                    f"{where} header {key}",
                    "new response header",
                    self.new.source(new_headers.child(key)),
                    affects,
                )
        self._content(old_response, new_response, where, request=False, affects=affects)

    def _schema_deltas(
        self,
        old: Node,
        new: Node,
        where: str,
        *,
        request: bool,
        affects: tuple[str, ...] = (),
    ) -> None:
        if old.value is None and new.value is None:
            return
        direction = "request" if request else "response"
        for delta in self.schemas.compare(old, new):
            breaking = delta.narrows if request else _response_direction(delta)
            if delta.anchor is not None:
                anchor = delta.anchor.removeprefix(_SPECS_PREFIX)
                location = f"{anchor}: {delta.path}" if delta.path else anchor
                uses: tuple[str, ...] = affects or (where,)
            else:
                location = f"{where}: {delta.path}" if delta.path else where
                uses = affects
            why = ""
            if breaking:
                why = (
                    " (requests valid before are now rejected)"
                    if request
                    else " (clients reading the old schema can receive what they do not expect)"
                )
            self._add(
                f"openapi.{direction}.{delta.rule}",
                Severity.BREAKING if breaking else Severity.COMPATIBLE,
                location,
                delta.message + why,
                delta.source,
                uses,
            )


def diff_openapi(base: SpecSet, head: SpecSet) -> list[Change]:
    """Classified changes between the OpenAPI documents of ``base`` and ``head``."""
    return OpenApiDiff(base, head).run()
