"""The official AsyncAPI 3.0.0 JSON Schema (vendored; see specs/schemas/vendor/)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import jsonschema

SCHEMA_PATH = (
    Path(__file__).resolve().parents[1]
    / "specs"
    / "schemas"
    / "vendor"
    / "asyncapi-3.0.0.schema.json"
)


@cache
def asyncapi_validator() -> jsonschema.Draft7Validator:
    """A Draft-07 validator for AsyncAPI 3.0.0 documents."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema)
