"""Cursors are opaque, round-trip exactly, and foreign ones are a 422, not a 500."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest

from handwritten.orders.domain.errors import InvalidOrderError
from handwritten.orders.service_layer.paging import PageKey, decode_cursor, encode_cursor


def test_round_trip() -> None:
    key = PageKey(datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=UTC), uuid.uuid4())
    cursor = encode_cursor(key)
    assert decode_cursor(cursor) == key
    assert cursor.rstrip("=").replace("-", "").replace("_", "").isalnum()


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        base64.urlsafe_b64encode(b"2026-11-28T12:00:00|not-a-uuid").decode(),
        base64.urlsafe_b64encode(f"2026-11-28T12:00:00|{uuid.uuid4()}".encode()).decode(),
    ],
)
def test_foreign_cursors_are_invalid_input(cursor: str) -> None:
    with pytest.raises(InvalidOrderError):
        decode_cursor(cursor)
