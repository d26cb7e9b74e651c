"""Tracking codes: the contract's pattern, the service's own format, uniqueness."""

from __future__ import annotations

import re

import pytest

from handwritten.shipping.domain.tracking import (
    ALPHABET,
    RANDOM_BITS,
    is_tracking_code,
    new_tracking_code,
)

#: shipping.scheduled / shipping.updated ``trackingCode`` (AsyncAPI).
EVENTS_PATTERN = re.compile(r"^[A-Z0-9-]{8,40}$")
#: ``Shipment.trackingCode`` (OpenAPI).
API_PATTERN = re.compile(r"^[A-Za-z0-9-]+$")


def test_codes_match_both_contracts_and_the_own_format() -> None:
    for _ in range(1000):
        code = new_tracking_code()
        assert EVENTS_PATTERN.fullmatch(code), code
        assert API_PATTERN.fullmatch(code) and len(code) <= 64
        assert is_tracking_code(code)


def test_format_is_prefix_and_three_groups_of_four() -> None:
    assert new_tracking_code(lambda bits: 0) == "MC-0000-0000-0000"
    assert new_tracking_code(lambda bits: (1 << bits) - 1) == "MC-ZZZZ-ZZZZ-ZZZZ"
    # 1 is the last symbol; 32 carries into the next one.
    assert new_tracking_code(lambda bits: 1).endswith("-0001")
    assert new_tracking_code(lambda bits: 32).endswith("-0010")


def test_alphabet_avoids_ambiguous_letters() -> None:
    assert len(ALPHABET) == 32
    assert not set("ILOU") & set(ALPHABET)


def test_codes_are_unique() -> None:
    codes = {new_tracking_code() for _ in range(20_000)}
    assert len(codes) == 20_000


def test_out_of_range_random_source_is_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        new_tracking_code(lambda bits: 1 << RANDOM_BITS)


@pytest.mark.parametrize(
    "text",
    ["", "MC-0000-0000", "mc-0000-0000-0000", "MC-0000-0000-000I", "XX-0000-0000-0000"],
)
def test_foreign_texts_are_not_tracking_codes(text: str) -> None:
    assert not is_tracking_code(text)
