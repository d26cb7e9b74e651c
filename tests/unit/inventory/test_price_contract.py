"""Prices at the edge: the service accepts exactly the prices the spec accepts.

Found by contract fuzzing (tests/contract): schema-valid prices such as ``0.00`` or
``-1.00`` were answered with 422 by the domain, and prices written with non-ASCII
digits (``٣.٠٠``) passed the request model because ``\\d`` in a Python or Rust regex
matches every Unicode digit while JSON Schema's ECMA-262 ``\\d`` is ``[0-9]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml
from pydantic import BaseModel, ValidationError

from generated.models.inventory import CreateProductRequest, UpdateProductRequest

SPEC = yaml.safe_load(
    (Path(__file__).resolve().parents[3] / "specs/openapi/inventory.yaml").read_text()
)
REJECTED = ["0.00", "-1.00", "-0.01", "01.00", "00.50", "1.5", "1", "+1.00", "٣.٠٠", "１.００"]
ACCEPTED = ["0.01", "0.10", "1.00", "59.90", "99999999.99"]


def spec_accepts(schema_name: str, price: str) -> bool:
    schema = SPEC["components"]["schemas"][schema_name]["properties"]["price"]
    return bool(jsonschema_rs.Draft202012Validator(schema).is_valid(price))


def model_accepts(model: type[BaseModel], payload: dict[str, Any]) -> bool:
    try:
        model.model_validate(payload)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("price", REJECTED)
def test_a_price_that_is_not_positive_or_not_plain_ascii_is_rejected_at_the_edge(
    price: str,
) -> None:
    assert not spec_accepts("CreateProductRequest", price)
    assert not model_accepts(
        CreateProductRequest, {"name": "Mug", "price": price, "availableQuantity": 1}
    )
    assert not spec_accepts("UpdateProductRequest", price)
    assert not model_accepts(UpdateProductRequest, {"price": price})


@pytest.mark.parametrize("price", ACCEPTED)
def test_a_positive_price_with_two_places_is_accepted_by_spec_and_edge_alike(price: str) -> None:
    assert spec_accepts("CreateProductRequest", price)
    assert model_accepts(
        CreateProductRequest, {"name": "Mug", "price": price, "availableQuantity": 1}
    )
    assert spec_accepts("UpdateProductRequest", price)
    assert model_accepts(UpdateProductRequest, {"price": price})
