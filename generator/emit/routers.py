"""FastAPI routers and handler Protocols from each service's OpenAPI document.

Per service with an OpenAPI spec this emits ``generated/services/<service>/api.py``:
a ``<Service>Handlers`` Protocol with one async method per operation, and
``build_router(handlers)`` returning an ``APIRouter`` whose routes validate the path,
query, header and body exactly as the spec says before awaiting the handler.
"""

from __future__ import annotations

import ast
import keyword
import re
from dataclasses import dataclass, field
from typing import Any

from datamodel_code_generator import InputFileType
from datamodel_code_generator.reference import ModelResolver

from generator.crossref import HTTP_METHODS
from generator.emit import Output, header, render
from generator.emit.models import models_module
from generator.errors import InvalidSpecsError, join_pointer
from generator.specset import SpecSet
from generator.yamlsource import SourceDocument

#: Names the generated route functions use themselves; parameters get a ``_`` suffix.
RESERVED_NAMES = frozenset({"self", "request", "body", "handlers", "router"})
#: (type, format) → Python annotation of a parameter.
FORMAT_TYPES: dict[tuple[str, str | None], str] = {
    ("string", "uuid"): "UUID",
    ("string", "date"): "datetime.date",
    ("string", "date-time"): "datetime.datetime",
}
SCALAR_TYPES = {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}
#: JSON Schema keyword → pydantic/FastAPI constraint, by Python type family.
STRING_CONSTRAINTS = (
    ("minLength", "min_length"),
    ("maxLength", "max_length"),
    ("pattern", "pattern"),
)
NUMBER_CONSTRAINTS = (("minimum", "ge"), ("maximum", "le"), ("multipleOf", "multiple_of"))
ARRAY_CONSTRAINTS = (("minItems", "min_length"), ("maxItems", "max_length"))
PARAM_CLASSES = {"path": "Path", "query": "Query", "header": "Header", "cookie": "Cookie"}
MAX_REF_DEPTH = 32
LITERAL_WIDTH = 76
LINE_WIDTH = 100


# -- Python source helpers ----------------------------------------------------------------
def py_literal(value: Any) -> str:
    """A Python literal for a YAML scalar or list, preferring double-quoted strings."""
    if isinstance(value, str):
        text = repr(value)
        if text.startswith("'") and '"' not in value:
            text = '"' + text[1:-1] + '"'
        return text
    if isinstance(value, list):
        return "[" + ", ".join(py_literal(item) for item in value) + "]"
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    raise TypeError(f"no Python literal for {value!r}")


def py_text(value: str, indent: int, prefix: int = 0) -> str:
    """A string literal for code at ``indent`` after ``prefix`` characters of the line.

    It stays on one line when it fits, else it becomes implicitly concatenated chunks
    in parentheses (concatenated, they give ``value`` back exactly).
    """
    literal = py_literal(value)
    if "\n" not in value.rstrip("\n") and indent + prefix + len(literal) + 1 <= LINE_WIDTH:
        return literal
    width = min(LITERAL_WIDTH, LINE_WIDTH - indent - 8)
    chunks: list[str] = []
    current = ""
    words = re.findall(r"[^ \n]*(?: +|\n|$)", value)
    pieces = [word[start : start + width] for word in words for start in range(0, len(word), width)]
    for piece in pieces:
        if current and (len(current) + len(piece) > width or current.endswith("\n")):
            chunks.append(current)
            current = ""
        current += piece
    if current:
        chunks.append(current)
    pad = " " * (indent + 4)
    body = "".join(f"{pad}{py_literal(chunk)}\n" for chunk in chunks)
    return "(\n" + body + " " * indent + ")"


@dataclass(frozen=True)
class Text:
    """Prose to render as a (possibly wrapped) string literal."""

    value: str


def value_code(value: str | Text, indent: int, prefix: int) -> str:
    """Source for an argument value: code as is, or prose as a string literal."""
    return py_text(value.value, indent, prefix) if isinstance(value, Text) else value


def call(function: str, arguments: list[tuple[str, str | Text]], indent: int) -> str:
    """``function(k=v, ...)`` on one line if it fits, else one argument per line."""
    flat = call_flat(function, arguments)
    multiline = any(isinstance(v, Text) and "\n" in v.value.strip() for _, v in arguments)
    if not multiline and indent + len(flat) <= LINE_WIDTH - 12:
        return flat
    pad = " " * (indent + 4)
    lines = [f"{pad}{k}={value_code(v, indent + 4, len(k) + 1)}," for k, v in arguments]
    return f"{function}(\n" + "\n".join(lines) + "\n" + " " * indent + ")"


def call_flat(function: str, arguments: list[tuple[str, str | Text]]) -> str:
    """``function(k=v, ...)`` on one line."""
    rendered = (f"{k}={py_literal(v.value) if isinstance(v, Text) else v}" for k, v in arguments)
    return f"{function}(" + ", ".join(rendered) + ")"


def docstring(text: str) -> str:
    """One-line docstring text that is safe inside triple double quotes."""
    text = " ".join(text.split())
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return text[:-1] + '\\"' if text.endswith('"') else text


def snake_case(name: str) -> str:
    """``orderId`` → ``order_id``, ``Idempotency-Key`` → ``idempotency_key``."""
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    text = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_").lower()
    if not text or text[0].isdigit():
        text = "p_" + text
    if keyword.iskeyword(text) or text in RESERVED_NAMES:
        text += "_"
    return text


def pascal_case(name: str) -> str:
    """``orders`` → ``Orders``, ``order-history`` → ``OrderHistory``."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", name))


# -- Spec navigation ----------------------------------------------------------------------
@dataclass(frozen=True)
class Located:
    """A spec node with the document and pointer it was found at."""

    document: SourceDocument
    pointer: str
    node: Any


def _fail(document: SourceDocument, pointer: str, message: str) -> InvalidSpecsError:
    """The exception for one problem at ``pointer`` in ``document``."""
    return InvalidSpecsError([document.error(pointer, message)])


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


class SpecWalker:
    """Follows ``$ref``s within one service spec and into the shared component files."""

    def __init__(self, specset: SpecSet) -> None:
        documents = [*specset.openapi.values(), *specset.openapi_shared.values()]
        self.by_path = {document.path.resolve(): document for document in documents}

    def child(self, located: Located, *tokens: str | int) -> Located:
        node = located.node
        for token in tokens:
            if isinstance(node, dict):
                node = node.get(token)
            elif isinstance(node, list) and isinstance(token, int) and 0 <= token < len(node):
                node = node[token]
            else:
                node = None
        return Located(located.document, located.pointer + join_pointer(*tokens), node)

    def target(self, located: Located) -> tuple[SourceDocument, str]:
        """The document and pointer a ``$ref`` node names."""
        ref = located.node["$ref"]
        where = located.pointer + "/$ref"
        if not isinstance(ref, str) or "#" not in ref:
            raise _fail(located.document, where, f"unsupported $ref {ref!r}")
        file_part, fragment = ref.split("#", 1)
        document = located.document
        if file_part:
            path = (located.document.path.parent / file_part).resolve()
            found = self.by_path.get(path)
            if found is None:
                raise _fail(
                    located.document,
                    where,
                    f"$ref {ref!r} names a file that is not an OpenAPI spec",
                )
            document = found
        return document, fragment

    def resolve(self, located: Located) -> Located:
        """Follow ``$ref``s until a real node is reached."""
        for _ in range(MAX_REF_DEPTH):
            if not (isinstance(located.node, dict) and "$ref" in located.node):
                return located
            document, fragment = self.target(located)
            node: Any = document.data
            for token in fragment.split("/")[1:] if fragment else []:
                node = node.get(_unescape(token)) if isinstance(node, dict) else None
                if node is None:
                    raise _fail(
                        located.document,
                        located.pointer + "/$ref",
                        f"$ref {located.node['$ref']!r} does not resolve",
                    )
            located = Located(document, fragment, node)
        raise _fail(located.document, located.pointer, "$ref chain is too deep")


# -- Model class names --------------------------------------------------------------------
class ModelNames:
    """Schema name → class name, checked against the module datamodel-codegen emitted."""

    def __init__(self, document: SourceDocument, code: str) -> None:
        self.document = document
        self.classes = {
            node.name for node in ast.parse(code).body if isinstance(node, ast.ClassDef)
        }
        self.resolver = ModelResolver()

    def candidates(self, schema: str) -> list[str]:
        normalized = self.resolver.get_class_name(schema, unique=False).name
        return [name for name in dict.fromkeys((schema, normalized)) if name in self.classes]

    def class_for(self, ref_at: Located, schema_document: SourceDocument, schema: str) -> str:
        found = self.candidates(schema)
        if not found:
            raise _fail(
                ref_at.document,
                ref_at.pointer,
                f"datamodel-codegen emitted no class for schema {schema!r} of "
                f"{schema_document.relpath} (rename the schema to a plain PascalCase name)",
            )
        name = found[0]
        local = (self.document.data.get("components") or {}).get("schemas") or {}
        rivals = sorted(
            other for other in local if other != schema and name in self.candidates(other)
        )
        if rivals:
            raise _fail(
                ref_at.document,
                ref_at.pointer,
                f"schemas {[schema, *rivals]} all map to class {name!r}; rename them apart",
            )
        return name


# -- Template views -----------------------------------------------------------------------
@dataclass
class ParamView:
    """One path/query/header/cookie parameter of an operation."""

    name: str
    location: str
    python_name: str
    protocol_type: str
    route_decl: str  # ``name: Annotated[...] = default`` at 8 spaces, maybe multi-line


@dataclass
class OperationView:
    """Everything the template needs about one operation."""

    operation_id: str
    method: str
    path: str
    summary: str
    description: str | None
    status_code: int
    response_model: str
    response_description: str | None
    return_type: str
    responses: list[str]  # rendered ``code: {...},`` entries
    tags: list[str]
    body_type: str | None
    body_default: str | None
    params: list[ParamView] = field(default_factory=list)


@dataclass
class Imports:
    """Names the module needs, collected while building the views."""

    models: set[str] = field(default_factory=set)
    fastapi: set[str] = field(default_factory=lambda: {"APIRouter", "Request", "Response"})
    typing: set[str] = field(default_factory=lambda: {"Protocol"})
    uuid: bool = False
    datetime: bool = False

    def note(self, annotation: str) -> None:
        if re.search(r"\bUUID\b", annotation):
            self.uuid = True
        if "datetime." in annotation:
            self.datetime = True
        if "Literal[" in annotation:
            self.typing.add("Literal")


def _is_json(media_type: str) -> bool:
    base = media_type.split(";", 1)[0].strip().lower()
    return base == "application/json" or base.endswith("+json")


class ServiceBuilder:
    """Builds the template context for one service's ``api.py``."""

    def __init__(self, specset: SpecSet, service: str, document: SourceDocument) -> None:
        self.service = service
        self.document = document
        self.walker = SpecWalker(specset)
        self.names = ModelNames(document, models_module(document.path, InputFileType.OpenAPI))
        self.imports = Imports()

    # -- schemas -------------------------------------------------------------------------
    def model_type(self, schema: Located, what: str) -> str:
        """The Python type of a body or success schema: a model class or a list of one."""
        node = schema.node
        if isinstance(node, dict) and node.get("type") == "array" and "$ref" not in node:
            item = self.walker.child(schema, "items")
            return f"list[{self.model_type(item, what)}]"
        if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)):
            raise _fail(
                schema.document,
                schema.pointer,
                f"{what} schema must be a $ref to components/schemas (inline schemas have "
                "no generated model class)",
            )
        target_document, fragment = self.walker.target(schema)
        tokens = [_unescape(token) for token in fragment.split("/")[1:]]
        if len(tokens) != 3 or tokens[:2] != ["components", "schemas"]:
            raise _fail(
                schema.document,
                schema.pointer + "/$ref",
                f"{what} schema must be a $ref to components/schemas",
            )
        self.walker.resolve(schema)  # the target must exist
        name = self.names.class_for(schema, target_document, tokens[2])
        self.imports.models.add(name)
        return name

    # -- parameters ----------------------------------------------------------------------
    def scalar_type(self, schema: Located) -> tuple[str, bool, str]:
        """(Python type, nullable, type family) of a parameter schema."""
        node = schema.node
        if not isinstance(node, dict):
            raise _fail(schema.document, schema.pointer, "parameter needs a schema")
        if "enum" in node:
            values = [value for value in node["enum"] if value is not None]
            family = "string" if all(isinstance(v, str) for v in values) else "number"
            return (
                "Literal[" + ", ".join(py_literal(v) for v in values) + "]",
                None in node["enum"],
                family,
            )
        types = node.get("type")
        kinds = types if isinstance(types, list) else [types]
        nullable = "null" in kinds
        kinds = [kind for kind in kinds if kind != "null"]
        if len(kinds) != 1 or kinds[0] not in (*SCALAR_TYPES, "array"):
            raise _fail(
                schema.document, schema.pointer, f"unsupported parameter schema type {types!r}"
            )
        kind = kinds[0]
        if kind == "array":
            item_type, _, _ = self.scalar_type(
                self.walker.resolve(self.walker.child(schema, "items"))
            )
            return f"list[{item_type}]", nullable, "array"
        special = FORMAT_TYPES.get((kind, node.get("format")))
        if special is not None:
            return special, nullable, "other"
        family = {"string": "string", "integer": "number", "number": "number"}.get(kind, "other")
        return SCALAR_TYPES[kind], nullable, family

    @staticmethod
    def constraints(schema: dict[str, Any], family: str) -> list[tuple[str, str | Text]]:
        """FastAPI/pydantic keyword arguments for the schema's validation keywords."""
        table = {
            "string": STRING_CONSTRAINTS,
            "number": NUMBER_CONSTRAINTS,
            "array": ARRAY_CONSTRAINTS,
        }.get(family, ())
        found = {python: schema[key] for key, python in table if key in schema}
        if family == "number":
            for key, python, inclusive in (
                ("exclusiveMinimum", "gt", "ge"),
                ("exclusiveMaximum", "lt", "le"),
            ):
                value = schema.get(key)
                if value is True and inclusive in found:  # OpenAPI 3.0 boolean form
                    found[python] = found.pop(inclusive)
                elif isinstance(value, int | float) and not isinstance(value, bool):
                    found[python] = value
        return [(python, py_literal(value)) for python, value in found.items()]

    def parameter(self, located: Located, param: dict[str, Any]) -> ParamView:
        name, location = param.get("name"), param.get("in")
        if not isinstance(name, str) or location not in PARAM_CLASSES:
            raise _fail(
                located.document, located.pointer, "parameter needs a name and a valid 'in'"
            )
        if "content" in param:
            raise _fail(
                located.document,
                located.pointer + "/content",
                "parameters with 'content' are not supported",
            )
        schema = self.walker.resolve(self.walker.child(located, "schema"))
        python_type, nullable, family = self.scalar_type(schema)
        required = bool(param.get("required")) or location == "path"
        has_default = "default" in schema.node
        python_name = snake_case(name)
        arguments: list[tuple[str, str | Text]] = []
        if python_name != name or location == "header":
            arguments.append(("alias", py_literal(name)))
        arguments.extend(self.constraints(schema.node, family))
        description = param.get("description")
        if isinstance(description, str) and description.strip():
            arguments.append(("description", Text(" ".join(description.split()))))
        if param.get("deprecated") is True:
            arguments.append(("deprecated", "True"))
        optional = nullable or (not required and not has_default)
        annotation = f"{python_type} | None" if optional else python_type
        default = ""
        if not required:
            default = " = " + (py_literal(schema.node["default"]) if has_default else "None")
        param_class = PARAM_CLASSES[location]
        validator = call_flat(param_class, arguments)
        flat = f"{python_name}: Annotated[{annotation}, {validator}]{default}"
        if 8 + len(flat) + 1 > LINE_WIDTH or any(
            isinstance(v, Text) and "\n" in v.value for _, v in arguments
        ):
            flat = (
                f"{python_name}: Annotated[\n{' ' * 12}{annotation},\n{' ' * 12}"
                f"{call(param_class, arguments, 12)},\n{' ' * 8}]{default}"
            )
        self.imports.fastapi.add(param_class)
        self.imports.typing.add("Annotated")
        self.imports.note(annotation)
        return ParamView(name, location, python_name, annotation, flat)

    def parameters(self, item: Located, operation: Located) -> list[ParamView]:
        merged: dict[tuple[str, str], tuple[Located, dict[str, Any]]] = {}
        for owner in (item, operation):
            listed = self.walker.child(owner, "parameters")
            for index in range(len(listed.node or [])):
                located = self.walker.resolve(self.walker.child(listed, index))
                param = located.node
                if not isinstance(param, dict):
                    raise _fail(
                        listed.document, f"{listed.pointer}/{index}", "parameter must be an object"
                    )
                merged[(str(param.get("name")), str(param.get("in")))] = (located, param)
        views = [self.parameter(located, param) for located, param in merged.values()]
        seen: dict[str, str] = {}
        for view in views:
            if view.python_name in seen:
                raise _fail(
                    operation.document,
                    operation.pointer,
                    f"parameters {seen[view.python_name]!r} and {view.name!r} both become "
                    f"Python name {view.python_name!r}",
                )
            seen[view.python_name] = view.name
        return views

    # -- bodies and responses ------------------------------------------------------------
    def request_body(self, operation: Located) -> tuple[str | None, str | None]:
        """(body type, route default) for the operation's JSON request body."""
        body = self.walker.child(operation, "requestBody")
        if body.node is None:
            return None, None
        body = self.walker.resolve(body)
        content = self.walker.child(body, "content")
        media = [key for key in content.node or {} if _is_json(key)]
        if not media:
            raise _fail(
                body.document,
                content.pointer,
                "request bodies must have JSON (application/json) content",
            )
        body_type = self.model_type(self.walker.child(content, media[0], "schema"), "request body")
        if body.node.get("required") is True:
            return body_type, None
        return f"{body_type} | None", "None"

    def responses(self, operation: Located) -> tuple[int, str, str | None, str, list[str]]:
        """(status, response_model, description, return type, other documented responses)."""
        listed = self.walker.child(operation, "responses")
        entries = list((listed.node or {}).items())
        success = next(
            (str(code) for code, _ in entries if re.fullmatch(r"2\d\d", str(code))), None
        )
        if success is None:
            raise _fail(listed.document, listed.pointer, "operation has no 2xx response")
        others = []
        success_info: tuple[str, str | None, str] = ("None", None, "Response")
        for raw_code, _ in entries:
            code = str(raw_code)
            response = self.walker.resolve(self.walker.child(listed, raw_code))
            description = " ".join(str((response.node or {}).get("description") or "").split())
            if code != success:
                key = code if code.isdigit() else py_literal(code)
                entry = f'{key}: {{"description": {py_literal(description)}}},'
                if 12 + len(entry) > LINE_WIDTH:
                    entry = (
                        f'{key}: {{\n{" " * 16}"description": {py_text(description, 16, 15)},'
                        f"\n{' ' * 12}}},"
                    )
                others.append(entry)
                continue
            content = self.walker.child(response, "content")
            media = [key for key in content.node or {} if _is_json(key)]
            if media:
                model = self.model_type(
                    self.walker.child(content, media[0], "schema"), "success response"
                )
                success_info = (model, description or None, f"{model} | Response")
            else:
                success_info = ("None", description or None, "Response")
        model, success_description, return_type = success_info
        return int(success), model, success_description, return_type, others

    # -- whole document ------------------------------------------------------------------
    def operations(self) -> list[OperationView]:
        views = []
        root = Located(self.document, "", self.document.data)
        for path, item in (self.document.data.get("paths") or {}).items():
            item_at = self.walker.child(root, "paths", path)
            for method in item:  # document order, like the spec reads
                if method not in HTTP_METHODS or not isinstance(item[method], dict):
                    continue
                operation = self.walker.child(item_at, method)
                views.append(self.operation(path, method, item_at, operation))
        return views

    def operation(self, path: str, method: str, item: Located, operation: Located) -> OperationView:
        data = operation.node
        operation_id = data.get("operationId")
        if (
            not isinstance(operation_id, str)
            or not operation_id.isidentifier()
            or (keyword.iskeyword(operation_id) or operation_id in RESERVED_NAMES)
        ):
            raise _fail(
                operation.document,
                operation.pointer + "/operationId",
                "operationId must be a Python identifier (it names the handler method)",
            )
        params = self.parameters(item, operation)
        template = re.findall(r"{([^}]*)}", path)
        declared = sorted(p.name for p in params if p.location == "path")
        if sorted(template) != declared or not all(n.isidentifier() for n in template):
            raise _fail(
                item.document,
                item.pointer,
                f"path template names {template} must be identifiers matching the declared "
                f"path parameters {declared}",
            )
        body_type, body_default = self.request_body(operation)
        if body_type is not None:
            self.imports.note(body_type)
        status, model, response_description, return_type, others = self.responses(operation)
        summary = str(data.get("summary") or operation_id.replace("_", " ").capitalize())
        description = data.get("description")
        return OperationView(
            operation_id=operation_id,
            method=method,
            path=path,
            summary=summary,
            description=str(description).strip() if description else None,
            status_code=status,
            response_model=model,
            response_description=response_description,
            return_type=return_type,
            responses=others,
            tags=[str(tag) for tag in data.get("tags") or []],
            body_type=body_type,
            body_default=body_default,
            params=params,
        )

    def context(self) -> dict[str, Any]:
        operations = self.operations()
        shared_tags = (
            [tag for tag in operations[0].tags if all(tag in op.tags for op in operations)]
            if operations
            else []
        )
        for op in operations:
            op.tags = [tag for tag in op.tags if tag not in shared_tags]
        handlers = f"{pascal_case(self.service)}Handlers"
        imports = self.imports
        taken = {*imports.fastapi, *imports.typing, "UUID", "datetime", handlers, "build_router"}
        clashes = sorted(imports.models & taken)
        if clashes:
            raise _fail(
                self.document,
                "/components/schemas",
                f"model classes {clashes} clash with names api.py imports or defines; "
                "rename those schemas",
            )
        return {
            "header": header([self.document.relpath]),
            "service": self.service,
            "spec": self.document.relpath,
            "handlers_class": handlers,
            "router_tags": [py_literal(tag) for tag in shared_tags],
            "operations": [self.operation_context(op) for op in operations],
            "import_datetime": imports.datetime,
            "import_uuid": imports.uuid,
            "typing_names": sorted(imports.typing),
            "fastapi_names": sorted(imports.fastapi),
            "model_import": self.model_import(),
        }

    def model_import(self) -> str | None:
        """``from generated.models.<service> import ...``, wrapped when long."""
        names = sorted(self.imports.models)
        if not names:
            return None
        line = f"from generated.models.{self.service} import {', '.join(names)}"
        if len(line) <= LINE_WIDTH:
            return line
        listed = "".join(f"    {name},\n" for name in names)
        return f"from generated.models.{self.service} import (\n{listed})"

    @staticmethod
    def operation_context(op: OperationView) -> dict[str, Any]:
        return {
            "name": op.operation_id,
            "method": op.method,
            "path": py_literal(op.path),
            "operation_id": py_literal(op.operation_id),
            "summary": py_text(op.summary, 8, 8),
            "summary_doc": docstring(op.summary),
            "description": py_text(op.description, 8, 12) if op.description else None,
            "status_code": op.status_code,
            "response_model": op.response_model,
            "response_description": (
                py_text(op.response_description, 8, 21) if op.response_description else None
            ),
            "return_type": op.return_type,
            "responses": op.responses,
            "tags": [py_literal(tag) for tag in op.tags],
            "body_type": op.body_type,
            "body_default": op.body_default,
            "params": op.params,
        }


def emit_routers(specset: SpecSet, out: Output) -> None:
    """``generated/services/<service>/api.py`` per OpenAPI spec, plus package markers."""
    if specset.openapi and "generated/services/__init__.py" not in out.files:
        out.add("generated/services/__init__.py", header(["specs/"]))
    for service, document in sorted(specset.openapi.items()):
        context = ServiceBuilder(specset, service, document).context()
        package = f"generated/services/{service}"
        if f"{package}/__init__.py" not in out.files:
            out.add(f"{package}/__init__.py", header(["specs/"]))
        out.add(f"{package}/api.py", render("routers/api.py.j2", **context))
