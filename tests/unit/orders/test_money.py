"""Money is exact: Decimal cents in BRL, parsed and written in the wire form."""

from __future__ import annotations

from decimal import Decimal

import pytest

from handwritten.orders.domain.money import Money


def test_parse_and_write_back_exactly() -> None:
    assert Money.parse("349.90").to_wire() == "349.90"
    assert Money.parse("0.01").amount == Decimal("0.01")
    assert Money.parse("99999999.99").fits_wire


@pytest.mark.parametrize("text", ["1", "1.5", "1.999", "1e3", " 1.00", "NaN", "", "123456789.00"])
def test_only_the_two_place_wire_form_parses(text: str) -> None:
    with pytest.raises(ValueError, match="two decimal places"):
        Money.parse(text)


def test_floats_are_refused_because_they_already_lost_the_cents() -> None:
    with pytest.raises(TypeError):
        Money(0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money.parse("1.00").times(1.5)  # type: ignore[arg-type]


def test_sub_cent_amounts_are_refused_never_rounded() -> None:
    with pytest.raises(ValueError, match="whole number of cents"):
        Money(Decimal("0.005"))


def test_only_brl() -> None:
    with pytest.raises(ValueError, match="BRL"):
        Money(Decimal("1.00"), "USD")


def test_sums_are_exact_where_floats_drift() -> None:
    total = Money.zero()
    for _ in range(10):
        total += Money.parse("0.10")
    assert total == Money.parse("1.00")
    assert sum([0.1] * 10) != 1.0  # what a float total would have said
    assert Money.parse("349.90").times(3).to_wire() == "1049.70"


def test_equal_amounts_are_equal_whatever_their_exponent() -> None:
    assert Money(Decimal("2.5")) == Money(Decimal("2.50"))
    assert Money(Decimal("2.5")).to_wire() == "2.50"


def test_amounts_beyond_eight_integer_digits_do_not_fit_the_wire() -> None:
    assert not Money.parse("99999999.99").times(2).fits_wire
