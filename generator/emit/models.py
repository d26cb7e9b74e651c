"""Pydantic v2 models for REST DTOs and event payloads (datamodel-code-generator)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from datamodel_code_generator import (
    DataModelType,
    InputFileType,
    PythonVersion,
    generate,
)
from datamodel_code_generator.enums import StrictTypes

from generator.emit import Output, header
from generator.specset import SpecSet

#: Options shared by every model module; explicit so output never depends on defaults.
CODEGEN_OPTIONS: dict[str, Any] = {
    "output_model_type": DataModelType.PydanticV2BaseModel,
    "target_python_version": PythonVersion.PY_311,
    "disable_timestamp": True,
    "use_annotated": True,
    "field_constraints": True,
    "use_standard_collections": True,
    "use_union_operator": True,
    "snake_case_field": True,
    "allow_population_by_field_name": True,
    "use_schema_description": True,
    "use_field_description": True,
    "use_double_quotes": True,
    "keep_model_order": True,
    "enum_field_as_literal": "one",
    # Marks every JSON Schema integer (StrictInt), which ``_json_integers`` then turns
    # into JsonInt (see JSON_TYPES_MODULE).
    "strict_types": (StrictTypes.int,),
    # Only `nullable` (or a `null` type) makes a field accept null; an optional field
    # with a default is its type, not `| None` (found by contract fuzzing).
    "strict_nullable": True,
    "formatters": [],
}

#: ``generated/models/json_types.py``: what the models use for JSON Schema's integer.
JSON_TYPES_MODULE = '''"""JSON Schema types pydantic has no exact equivalent for."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError


def json_integer(value: object) -> object:
    """JSON Schema's ``integer``: a JSON number without a fractional part (``3`` or
    ``3.0``), never a boolean or a string. Pydantic's lax ``int`` takes ``true`` and
    ``"3"``, its strict one refuses ``3.0``; this takes exactly the schema's values."""
    if isinstance(value, bool | str | bytes):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JsonInt = Annotated[int, BeforeValidator(json_integer)]


def reject_null(value: object) -> object:
    """An optional property that is not nullable: absent (the default, never validated)
    is fine, an explicit ``null`` is not. Pydantic types such a field ``X | None``, which
    would take ``null`` as well."""
    if value is None:
        raise PydanticCustomError("not_null", "Input should not be null")
    return value


NotNull = BeforeValidator(reject_null)
'''

_PYDANTIC_IMPORT = re.compile(r"^from pydantic import (.*)$", re.MULTILINE)


def models_module(source: Path, input_type: InputFileType) -> str:
    """Run datamodel-code-generator on one spec file and return the module text."""
    code = generate(source, input_file_type=input_type, **CODEGEN_OPTIONS)
    if not isinstance(code, str):
        raise TypeError(f"expected one module from {source}, got {type(code).__name__}")
    return _json_integers(code)


def _json_integers(code: str) -> str:
    """``StrictInt`` (what ``strict_types`` marks integers with) replaced by ``JsonInt``."""
    if "StrictInt" not in code:
        return code

    def without_strict_int(match: re.Match[str]) -> str:
        names = [name for name in match.group(1).split(", ") if name != "StrictInt"]
        return (
            f"from pydantic import {', '.join(names)}\n"
            "from generated.models.json_types import JsonInt"
        )

    code = _PYDANTIC_IMPORT.sub(without_strict_int, code, count=1)
    return re.sub(r"\bStrictInt\b", "JsonInt", code)


def _is_nullable(
    schema: Any, components: dict[str, Any], seen: frozenset[str] = frozenset()
) -> bool:
    """Whether JSON ``null`` is a valid value of ``schema`` (refs into components followed)."""
    if not isinstance(schema, dict):
        return False
    kind = schema.get("type")
    if (
        schema.get("nullable") is True
        or kind == "null"
        or (isinstance(kind, list) and "null" in kind)
    ):
        return True
    if any(
        _is_nullable(branch, components, seen)
        for key in ("anyOf", "oneOf")
        for branch in schema.get(key) or ()
    ):
        return True
    ref = schema.get("$ref")
    if isinstance(ref, str) and "#/components/schemas/" in ref:
        name = ref.rpartition("/")[2]
        return name not in seen and _is_nullable(components.get(name), components, seen | {name})
    return False


def _request_schemas(document: dict[str, Any], components: dict[str, Any]) -> set[str]:
    """Names of the component schemas a request body of ``document`` uses, transitively."""
    pending: list[Any] = [
        media.get("schema")
        for item in (document.get("paths") or {}).values()
        if isinstance(item, dict)
        for operation in item.values()
        if isinstance(operation, dict)
        for media in ((operation.get("requestBody") or {}).get("content") or {}).values()
        if isinstance(media, dict)
    ]
    found: set[str] = set()
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and "#/components/schemas/" in ref:
                name = ref.rpartition("/")[2]
                if name not in found:
                    found.add(name)
                    pending.append(components.get(name))
            pending.extend(value for key, value in node.items() if key != "$ref")
    return found


def optional_not_nullable(
    document: dict[str, Any], shared: list[dict[str, Any]]
) -> dict[str, frozenset[str]]:
    """Per schema a request body uses: its optional properties that take no ``null`` and
    have no default (those get ``NotNull``; with a default, ``strict_nullable`` already
    types them without ``| None``). Response models are left alone: they are what the
    services build, not what clients send."""
    components: dict[str, Any] = {}
    for source in (*shared, document):
        for name, schema in ((source.get("components") or {}).get("schemas") or {}).items():
            # A service's `X: {$ref: ./common.yaml#/.../X}` names the shared definition.
            if not (name in components and isinstance(schema, dict) and set(schema) == {"$ref"}):
                components[name] = schema
    found: dict[str, frozenset[str]] = {}
    for name in sorted(_request_schemas(document, components)):
        schema = components.get(name)
        if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
            continue
        required = set(schema.get("required") or ())
        names = frozenset(
            prop
            for prop, definition in schema["properties"].items()
            if prop not in required
            and isinstance(definition, dict)
            and "default" not in definition
            and not _is_nullable(definition, components)
        )
        if names:
            found[name] = names
    return found


_CLASS = re.compile(r"^class (\w+)\(", re.MULTILINE)
_ANNOTATED_FIELD = re.compile(r"^    (\w+): Annotated\[(.+) \| None, Field\((.*)\)\] = None$")
_PLAIN_FIELD = re.compile(r"^    (\w+): (.+) \| None = None$")
_ALIAS = re.compile(r"\balias=['\"](\w+)['\"]")


def _not_null_fields(code: str, fields: dict[str, frozenset[str]]) -> str:
    """``NotNull`` on the fields of ``fields`` (class name → property names)."""
    lines = code.split("\n")
    current: str | None = None
    changed = False
    for index, line in enumerate(lines):
        if line.startswith("class "):
            match = _CLASS.match(line)
            current = match.group(1) if match else None
            continue
        wanted = fields.get(current or "")
        if not wanted:
            continue
        if annotated := _ANNOTATED_FIELD.match(line):
            name, kind, args = annotated.groups()
            alias = _ALIAS.search(args)
            if (alias.group(1) if alias else name) in wanted:
                lines[index] = (
                    f"    {name}: Annotated[{kind} | None, NotNull, Field({args})] = None"
                )
                changed = True
        elif plain := _PLAIN_FIELD.match(line):
            name, kind = plain.groups()
            if name in wanted:
                lines[index] = f"    {name}: Annotated[{kind} | None, NotNull] = None"
                changed = True
    code = "\n".join(lines)
    if changed:
        code = code.replace(
            "from generated.models.json_types import JsonInt",
            "from generated.models.json_types import JsonInt, NotNull",
        )
        if "import JsonInt, NotNull" not in code:
            code = _PYDANTIC_IMPORT.sub(
                lambda m: m.group(0) + "\nfrom generated.models.json_types import NotNull",
                code,
                count=1,
            )
        if "Annotated" not in code.split("class ", 1)[0]:
            code = "from typing import Annotated\n" + code
    return code


def _strip_tool_header(code: str) -> str:
    """Drop the tool's own ``# generated by`` / ``#   filename:`` banner lines."""
    lines = code.splitlines(keepends=True)
    while lines and (lines[0].startswith("#") or not lines[0].strip()):
        lines.pop(0)
    return "".join(lines)


def emit_models(specset: SpecSet, out: Output) -> None:
    """``generated/models/<service>.py`` per OpenAPI spec and ``events.py`` for AsyncAPI."""
    shared = sorted(specset.openapi_shared)
    shared_data = [
        doc.data for doc in specset.openapi_shared.values() if isinstance(doc.data, dict)
    ]
    for service, document in sorted(specset.openapi.items()):
        code = models_module(document.path, InputFileType.OpenAPI)
        code = _not_null_fields(code, optional_not_nullable(document.data, shared_data))
        banner = header([document.relpath, *shared])
        out.add(f"generated/models/{service}.py", banner + "\n" + _strip_tool_header(code))
    events = specset.asyncapi
    code = models_module(events.path, InputFileType.AsyncAPI)
    out.add(
        "generated/models/events.py", header([events.relpath]) + "\n" + _strip_tool_header(code)
    )
    out.add(
        "generated/models/json_types.py",
        header(["generator/emit/models.py"]) + "\n" + JSON_TYPES_MODULE,
    )
    out.add(
        "generated/models/__init__.py",
        header(["specs/"])
        + '"""Pydantic models generated from the OpenAPI and AsyncAPI specs."""\n',
    )
