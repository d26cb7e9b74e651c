"""Every operation documents the answers any request body can get.

Found by contract fuzzing (tests/contract): the fault flag endpoints answered 400 to
a body that is not JSON, which their specs did not list. A body that is not JSON is
a 400 and one that breaks the schema a 422 on every operation that takes a body.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

SPECS = Path(__file__).resolve().parents[2] / "specs" / "openapi"
METHODS = ("get", "put", "post", "delete", "patch")


def operations_with_a_body() -> list[tuple[str, str, str, dict[str, Any]]]:
    found = []
    for spec in sorted(SPECS.glob("*.yaml")):
        document = yaml.safe_load(spec.read_text())
        for path, item in (document.get("paths") or {}).items():
            for method in METHODS:
                operation = item.get(method)
                if isinstance(operation, dict) and "requestBody" in operation:
                    found.append((spec.name, method, path, operation))
    return found


OPERATIONS = operations_with_a_body()


@pytest.mark.parametrize(
    ("spec", "method", "path", "operation"),
    OPERATIONS,
    ids=[f"{spec} {method.upper()} {path}" for spec, method, path, _ in OPERATIONS],
)
def test_a_body_that_is_not_json_or_breaks_the_schema_has_a_documented_answer(
    spec: str, method: str, path: str, operation: dict[str, Any]
) -> None:
    assert "400" in operation["responses"], "a body that is not JSON answers 400"
    assert "422" in operation["responses"], "a body that breaks the schema answers 422"
