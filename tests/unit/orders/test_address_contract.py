"""Shipping addresses at the edge: the service accepts exactly the CEPs the spec accepts.

Found by contract fuzzing (tests/contract): ``\\d`` in the request model's regex
(Python or Rust) matches every Unicode digit, so a zip code written with Arabic-Indic
digits passed, while the spec's ECMA-262 ``\\d`` means ``[0-9]``.
"""

from __future__ import annotations

from pathlib import Path

import jsonschema_rs
import pytest
import yaml
from pydantic import ValidationError

from generated.models.orders import ShippingAddress

SPEC = yaml.safe_load(
    (Path(__file__).resolve().parents[3] / "specs/openapi/orders.yaml").read_text()
)
ZIP_CODE = jsonschema_rs.Draft202012Validator(
    SPEC["components"]["schemas"]["ShippingAddress"]["properties"]["zipCode"]
)


def address(zip_code: str) -> dict[str, str]:
    return {"street": "Av. Paulista, 1000", "city": "São Paulo", "state": "SP", "zipCode": zip_code}


@pytest.mark.parametrize("zip_code", ["٠١٣١٠-١٠٠", "０１３１０-１００", "01310-1OO", "1310-100"])
def test_a_zip_code_that_is_not_five_and_three_ascii_digits_is_rejected_at_the_edge(
    zip_code: str,
) -> None:
    assert not ZIP_CODE.is_valid(zip_code)
    with pytest.raises(ValidationError):
        ShippingAddress.model_validate(address(zip_code))


def test_a_brazilian_zip_code_is_accepted_by_spec_and_edge_alike() -> None:
    assert ZIP_CODE.is_valid("01310-100")
    assert ShippingAddress.model_validate(address("01310-100")).zip_code == "01310-100"
