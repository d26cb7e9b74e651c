"""Tracking codes: ``MC-XXXX-XXXX-XXXX``, 60 random bits in Crockford base32.

Crockford's alphabet leaves out I, L, O and U, so a code read aloud or typed from a
label is not mistaken for another. 60 bits make a collision practically impossible;
the database's unique constraint still guards it (the caller draws again).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

#: Crockford base32: digits and letters without I, L, O, U.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PREFIX = "MC"
GROUPS = 3
GROUP_LENGTH = 4
RANDOM_BITS = GROUPS * GROUP_LENGTH * 5

#: What this service issues: a subset of the contracts' ``^[A-Z0-9-]{8,40}$``.
_OWN_FORMAT = re.compile(rf"^{PREFIX}(-[{ALPHABET}]{{{GROUP_LENGTH}}}){{{GROUPS}}}$")

RandomBits = Callable[[int], int]


def new_tracking_code(randbits: RandomBits = secrets.randbits) -> str:
    """A fresh tracking code; ``randbits(k)`` returns k random bits (injectable for tests)."""
    value = randbits(RANDOM_BITS)
    if not 0 <= value < 1 << RANDOM_BITS:
        raise ValueError(f"randbits({RANDOM_BITS}) returned {value}, out of range")
    symbols = []
    for _ in range(GROUPS * GROUP_LENGTH):
        symbols.append(ALPHABET[value & 0x1F])
        value >>= 5
    text = "".join(reversed(symbols))
    groups = [text[i : i + GROUP_LENGTH] for i in range(0, len(text), GROUP_LENGTH)]
    return "-".join([PREFIX, *groups])


def is_tracking_code(text: str) -> bool:
    """Whether ``text`` has the format this service issues."""
    return _OWN_FORMAT.fullmatch(text) is not None
