"""Request models accept exactly what the OpenAPI schemas accept.

Found by contract fuzzing (tests/contract): pydantic's defaults differ from JSON
Schema in ways a request shows. The generator now emits models where

- an ``integer`` is a JSON number without a fractional part: ``true`` and ``"5"`` are
  refused (pydantic's lax int took them), ``5.0`` is accepted (its strict int does not);
- an optional property that is not nullable takes no explicit ``null`` (pydantic
  types it ``X | None``), while leaving it out is fine;
- an optional property with a default is not nullable either;
- a name is not blank (white space only), as the domains already required.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from generated.models.auth import RegisterRequest
from generated.models.inventory import CreateProductRequest, UpdateProductRequest
from generated.models.orders import CreateOrderItem, CreateOrderRequest
from handwritten.auth.domain.users import name_violations
from handwritten.inventory.domain.products import new_product

ADDRESS = {
    "street": "Av. Paulista, 1000",
    "city": "São Paulo",
    "state": "SP",
    "zipCode": "01310-100",
}
ITEM = {"productId": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "quantity": 1}
PRODUCT = {"name": "Mug", "price": "10.00", "availableQuantity": 1}


def accepts(model: type[BaseModel], payload: dict[str, Any]) -> bool:
    try:
        model.model_validate(payload)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("quantity", [True, False, "5", "5.0", 5.5, float("nan"), [5], None])
def test_a_boolean_a_string_or_a_fraction_is_not_an_integer(quantity: object) -> None:
    assert not accepts(CreateOrderItem, {**ITEM, "quantity": quantity})
    assert not accepts(CreateProductRequest, {**PRODUCT, "availableQuantity": quantity})


@pytest.mark.parametrize(("sent", "read"), [(5, 5), (5.0, 5), (1000, 1000)])
def test_a_json_number_without_fraction_is_an_integer(sent: object, read: int) -> None:
    assert CreateOrderItem.model_validate({**ITEM, "quantity": sent}).quantity == read


@pytest.mark.parametrize(
    ("model", "payload"),
    [
        (CreateOrderRequest, {"items": [ITEM], "shippingAddress": ADDRESS, "paymentMethod": None}),
        (UpdateProductRequest, {"price": None}),
        (UpdateProductRequest, {"name": "Mug", "availableQuantity": None}),
        (CreateProductRequest, {**PRODUCT, "description": None}),
    ],
)
def test_an_optional_property_that_is_not_nullable_refuses_null(
    model: type[BaseModel], payload: dict[str, Any]
) -> None:
    assert not accepts(model, payload)


def test_leaving_an_optional_property_out_is_still_fine() -> None:
    order = CreateOrderRequest.model_validate({"items": [ITEM], "shippingAddress": ADDRESS})
    assert order.payment_method is None
    product = CreateProductRequest.model_validate(PRODUCT)
    assert product.description == ""
    update = UpdateProductRequest.model_validate({"price": "12.50"})
    assert update.model_fields_set == {"price"}


BLANK = [" ", "\u00a0", "\u3000 \u2003", "\t", "\x85"]
NOT_BLANK = ["a", " Mug ", "\ufeff", "Café", "\u2003x"]


@pytest.mark.parametrize("name", BLANK + NOT_BLANK)
def test_a_name_is_refused_at_the_edge_exactly_when_the_domain_calls_it_blank(name: str) -> None:
    """Found by contract fuzzing: a name of white space only (``"\\u00a0"``) matched
    the spec's pattern, so it was "valid", and then the domain refused it as blank."""
    blank = name in BLANK
    assert blank == bool(name_violations(name))
    assert accepts(CreateProductRequest, {**PRODUCT, "name": name}) is not blank
    assert accepts(UpdateProductRequest, {"name": name}) is not blank
    registration = {"email": "ana@example.com", "password": "Sturdy-Passw0rd!", "name": name}
    assert accepts(RegisterRequest, registration) is not blank
    if not blank:
        assert new_product(name=name, description="", price="1.00", available_quantity=1)
