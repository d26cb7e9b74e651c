"""Signing-key rotation policy: which key signs, which are published, when to rotate.

Exactly one key is *active* (it signs new access tokens). Rotation retires it and
activates a fresh one; the retired key stays published in the JWKS so that tokens it
signed keep verifying until they expire. The immediately previous key is always
published (through a rotation, verifiers may still see its tokens), and so is any
older key retired less than ``verification_window`` ago (several rotations in quick
succession, e.g. ``rotate-keys`` run twice).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class SigningKeyInfo:
    kid: str
    created_at: datetime
    activated_at: datetime | None
    retired_at: datetime | None

    @property
    def is_active(self) -> bool:
        return self.activated_at is not None and self.retired_at is None


@dataclass(frozen=True)
class KeyRotationPolicy:
    #: How long a key signs before it is replaced.
    rotation_interval: timedelta
    #: How long a retired key must stay published: access-token lifetime plus leeway.
    verification_window: timedelta
    #: The JWKS carries at most this many keys.
    max_published: int = 10

    def signing_key(self, keys: Iterable[SigningKeyInfo]) -> SigningKeyInfo | None:
        """The active key (the newest, should there ever be several)."""
        active = [key for key in keys if key.is_active]
        return max(active, key=_activation, default=None)

    def rotation_due(self, active: SigningKeyInfo | None, now: datetime) -> bool:
        """True when there is no active key or it has signed for a full interval."""
        if active is None or active.activated_at is None:
            return True
        return now - active.activated_at >= self.rotation_interval

    def next_rotation_at(self, active: SigningKeyInfo) -> datetime:
        assert active.activated_at is not None
        return active.activated_at + self.rotation_interval

    def published(self, keys: Iterable[SigningKeyInfo], now: datetime) -> list[SigningKeyInfo]:
        """The keys a JWKS lists, active first, then retired ones newest first."""
        keys = list(keys)
        active = self.signing_key(keys)
        retired = sorted(
            (k for k in keys if k.retired_at is not None and k.activated_at is not None),
            key=_retirement,
            reverse=True,
        )
        published = [active] if active is not None else []
        for index, key in enumerate(retired):
            assert key.retired_at is not None
            if index == 0 or now - key.retired_at < self.verification_window:
                published.append(key)
        return published[: self.max_published]


def _activation(key: SigningKeyInfo) -> datetime:
    assert key.activated_at is not None
    return key.activated_at


def _retirement(key: SigningKeyInfo) -> datetime:
    assert key.retired_at is not None
    return key.retired_at
