"""Opaque keyset cursors over the read model's (created_at DESC, order_id DESC) order."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from handwritten.orders.domain.errors import InvalidOrderError

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class PageKey:
    """The last order of a page; the next page starts right after it."""

    created_at: datetime
    order_id: UUID


def encode_cursor(key: PageKey) -> str:
    """URL-safe base64 of the key (stable under retries, no server state)."""
    raw = f"{key.created_at.isoformat()}|{key.order_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str, *, field: str = "cursor") -> PageKey:
    """The key a cursor stands for; ``InvalidOrderError`` when it was not made by us."""
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        created_text, order_text = raw.split("|")
        created_at = datetime.fromisoformat(created_text)
        order_id = UUID(order_text)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidOrderError.single(field, "is not a cursor returned by this API") from exc
    if created_at.tzinfo is None:
        raise InvalidOrderError.single(field, "is not a cursor returned by this API")
    return PageKey(created_at, order_id)
