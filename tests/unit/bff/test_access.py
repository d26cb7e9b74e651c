"""The access rule: customers see their own orders, admins every order."""

from __future__ import annotations

import pytest

from handwritten.bff.domain.access import UNSCOPED, Caller, listing_scope
from handwritten.bff.domain.errors import ForbiddenError

CUSTOMER = Caller(user_id="u-1")
ADMIN = Caller(user_id="a-1", is_admin=True)


def test_reads_are_scoped_to_the_customer_and_unscoped_for_admins() -> None:
    assert CUSTOMER.scope == "u-1"
    assert ADMIN.scope == UNSCOPED == ""


def test_a_customer_lists_their_own_orders() -> None:
    assert listing_scope(CUSTOMER, None) == "u-1"
    assert listing_scope(CUSTOMER, "u-1") == "u-1"


def test_a_customer_cannot_list_someone_elses_orders() -> None:
    with pytest.raises(ForbiddenError) as refused:
        listing_scope(CUSTOMER, "u-2")
    assert refused.value.as_extensions() == {"code": "FORBIDDEN"}


def test_an_admin_lists_anyones_or_everyones_orders() -> None:
    assert listing_scope(ADMIN, "u-2") == "u-2"
    assert listing_scope(ADMIN, None) == UNSCOPED
