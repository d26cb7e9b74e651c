"""Opaque keyset cursors over the catalogue's (created_at, product_id) order."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from handwritten.inventory.domain.errors import InvalidInputError


@dataclass(frozen=True)
class PageKey:
    """The last product of a page; the next page starts after it."""

    created_at: datetime
    product_id: UUID


def encode_cursor(key: PageKey) -> str:
    """URL-safe base64 of the key (stable under retries, no server state)."""
    raw = f"{key.created_at.isoformat()}|{key.product_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str) -> PageKey:
    """The key a cursor stands for; ``InvalidInputError`` when it was not made by us."""
    try:
        raw = base64.urlsafe_b64decode(cursor.encode()).decode()
        created_text, product_text = raw.split("|")
        created_at = datetime.fromisoformat(created_text)
        product_id = UUID(product_text)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInputError.single("cursor", "is not a cursor returned by this API") from exc
    if created_at.tzinfo is None:
        raise InvalidInputError.single("cursor", "is not a cursor returned by this API")
    return PageKey(created_at, product_id)
