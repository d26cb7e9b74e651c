"""Catalogue cursors round-trip and reject anything we did not issue."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from handwritten.inventory.domain.errors import InvalidInputError
from handwritten.inventory.service_layer.paging import PageKey, decode_cursor, encode_cursor


def test_cursor_round_trips_and_fits_the_api_pattern() -> None:
    key = PageKey(datetime(2030, 5, 1, 8, 30, 0, 123456, tzinfo=UTC), uuid.uuid4())
    cursor = encode_cursor(key)
    assert decode_cursor(cursor) == key
    assert cursor.rstrip("=").replace("-", "").replace("_", "").isalnum()


@pytest.mark.parametrize(
    "cursor",
    ["abc", "bm90LWEtY3Vyc29y", encode_cursor(PageKey(datetime(2030, 1, 1), uuid.uuid4()))],
)
def test_foreign_cursors_are_invalid_input(cursor: str) -> None:
    with pytest.raises(InvalidInputError) as raised:
        decode_cursor(cursor)
    assert raised.value.violations[0].field == "cursor"
