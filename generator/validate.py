"""Structural validation of each spec document against its schema."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError
from openapi_spec_validator import OpenAPIV31SpecValidator
from pydantic import ValidationError as PydanticValidationError

from generator.asyncapi_schema import asyncapi_validator
from generator.catalog import Catalog
from generator.errors import SpecError, join_pointer
from generator.saga import SagaSpec, check_saga_rules
from generator.specset import SpecSet
from generator.yamlsource import SourceDocument

#: The DSL schemas belong to the generator: every spec set is checked against these.
SCHEMAS_DIR = Path(__file__).resolve().parents[1] / "specs" / "schemas"


def _schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS_DIR / name).read_text("utf-8"))
    return loaded


def _errors_from(document: SourceDocument, found: Iterable[ValidationError]) -> list[SpecError]:
    errors = []
    for error in found:
        pointer = join_pointer(*error.absolute_path)
        errors.append(document.error(pointer, error.message))
    return errors


def _best(found: Iterable[ValidationError]) -> list[ValidationError]:
    """One error per location, preferring the most specific (``best_match``)."""
    by_path: dict[tuple[Any, ...], list[ValidationError]] = {}
    for error in found:
        by_path.setdefault(tuple(error.absolute_path), []).append(error)
    return [
        best
        for errors in by_path.values()
        if (best := jsonschema.exceptions.best_match(errors)) is not None
    ]


def validate_catalog(specset: SpecSet) -> list[SpecError]:
    """services.yaml against schemas/services.schema.json, then build the typed catalog."""
    document = specset.catalog_doc
    validator = jsonschema.Draft202012Validator(_schema("services.schema.json"))
    errors = _errors_from(document, _best(validator.iter_errors(document.data)))
    if not errors:
        specset.catalog = Catalog.from_data(document.data)
    return errors


def validate_sagas(specset: SpecSet) -> list[SpecError]:
    """Each saga against schemas/saga.schema.json, then the pivot rules."""
    validator = jsonschema.Draft202012Validator(_schema("saga.schema.json"))
    errors: list[SpecError] = []
    for document in specset.saga_docs:
        found = _errors_from(document, _best(validator.iter_errors(document.data)))
        errors.extend(found)
        if found:
            continue
        try:
            saga = SagaSpec.from_document(document)
        except PydanticValidationError as exc:  # the schema and the model disagree
            errors.extend(
                document.error(join_pointer(*err["loc"]), err["msg"]) for err in exc.errors()
            )
            continue
        errors.extend(document.error(p, m) for p, m in check_saga_rules(saga, document))
        expected = document.path.name.removesuffix(".saga.yaml")
        if saga.saga != expected:
            errors.append(
                document.error(
                    "/saga", f"saga name {saga.saga!r} must match file name {expected!r}"
                )
            )
        specset.sagas.append(saga)
    return errors


def validate_openapi(specset: SpecSet) -> list[SpecError]:
    """Each OpenAPI document against the OpenAPI 3.1 schema (refs resolved)."""
    errors: list[SpecError] = []
    for document in [*specset.openapi.values(), *specset.openapi_shared.values()]:
        if document in specset.openapi_shared.values() and "openapi" not in document.data:
            continue  # a components-only file, checked through the documents that use it
        version = str(document.data.get("openapi", ""))
        if not version.startswith("3.1."):
            errors.append(document.error("/openapi", f"expected OpenAPI 3.1.x, got {version!r}"))
            continue
        validator = OpenAPIV31SpecValidator(document.data, base_uri=document.path.as_uri())
        errors.extend(_errors_from(document, validator.iter_errors()))
    return errors


def validate_asyncapi(specset: SpecSet) -> list[SpecError]:
    """The AsyncAPI document against the official AsyncAPI 3.0.0 JSON Schema."""
    document = specset.asyncapi
    if str(document.data.get("asyncapi", "")) != "3.0.0":
        return [document.error("/asyncapi", "expected AsyncAPI 3.0.0")]
    return _errors_from(document, _best(asyncapi_validator().iter_errors(document.data)))


def validate_structure(specset: SpecSet) -> list[SpecError]:
    """Every structural check; typed views are filled in for what passed."""
    return [
        *validate_catalog(specset),
        *validate_sagas(specset),
        *validate_openapi(specset),
        *validate_asyncapi(specset),
    ]
