"""Validation of products created and changed by an admin."""

from __future__ import annotations

from decimal import Decimal

import pytest

from handwritten.inventory.domain.errors import InvalidInputError
from handwritten.inventory.domain.products import MAX_STOCK, new_product, product_changes


def test_a_valid_product_keeps_its_exact_price() -> None:
    product = new_product(name="Caneca", description="", price="39.90", available_quantity=5)
    assert product.price == Decimal("39.90")
    assert product.available_quantity == 5


def test_every_violation_of_a_new_product_is_reported() -> None:
    with pytest.raises(InvalidInputError) as raised:
        new_product(name="  ", description="", price="0.00", available_quantity=MAX_STOCK + 1)
    assert {v.field for v in raised.value.violations} == {"name", "price", "availableQuantity"}


def test_changes_need_at_least_one_field() -> None:
    with pytest.raises(InvalidInputError) as raised:
        product_changes()
    assert raised.value.violations[0].message == "at least one field must be given"


def test_changes_validate_only_the_given_fields() -> None:
    changes = product_changes(price="10.00")
    assert changes.price == Decimal("10.00")
    assert changes.name is None and changes.available_quantity is None
    assert product_changes(available_quantity=0).available_quantity == 0
    with pytest.raises(InvalidInputError):
        product_changes(price="-5.00")
    with pytest.raises(InvalidInputError):
        product_changes(available_quantity=-1)
