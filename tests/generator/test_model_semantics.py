"""What the models emitter knows about JSON Schema that datamodel-code-generator does not."""

from __future__ import annotations

from typing import Any

from generator.emit.models import optional_not_nullable

COMMON: dict[str, Any] = {
    "components": {
        "schemas": {
            "Scope": {
                "type": "object",
                "properties": {"tag": {"type": "string"}, "note": {"type": ["string", "null"]}},
            },
            "Flag": {
                "type": "object",
                "required": ["mode"],
                "properties": {
                    "mode": {"type": "string"},
                    "scope": {"$ref": "#/components/schemas/Scope"},
                },
            },
        }
    }
}
SERVICE: dict[str, Any] = {
    "paths": {
        "/things": {
            "post": {
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/NewThing"}}
                    }
                },
                "responses": {
                    "200": {
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}
                        }
                    }
                },
            }
        },
        "/flags": {
            "put": {
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Flag"}}
                    }
                }
            }
        },
    },
    "components": {
        "schemas": {
            "Flag": {"$ref": "./common.yaml#/components/schemas/Flag"},
            "NewThing": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "size": {"type": "integer"},
                    "colour": {"type": "string", "default": "red"},
                    "parent": {"anyOf": [{"$ref": "#/components/schemas/Ref"}, {"type": "null"}]},
                    "child": {"$ref": "#/components/schemas/Ref"},
                },
            },
            "Ref": {"type": "object", "properties": {"id": {"type": "string", "nullable": True}}},
            "Thing": {"type": "object", "properties": {"detail": {"type": "string"}}},
        }
    },
}


def test_optional_non_nullable_properties_without_default_of_request_schemas_are_found() -> None:
    assert optional_not_nullable(SERVICE, [COMMON]) == {
        # `name` is required, `colour` has a default, `parent` takes null.
        "NewThing": frozenset({"size", "child"}),
        # A service's $ref stub names the shared definition, followed transitively.
        "Flag": frozenset({"scope"}),
        "Scope": frozenset({"tag"}),
        # Ref's only property is nullable; Thing is only a response.
    }
