"""Capped exponential backoff with full jitter, for retry loops."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delays ``initial * 2**attempt`` capped at ``maximum``, jittered within its upper half.

    Jitter spreads competing retries apart, which is what makes optimistic-concurrency
    retries converge instead of colliding again; keeping the lower half out means a
    retry loop against a dead dependency never spins with near-zero delays.
    """

    initial: float = 0.1
    maximum: float = 5.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.maximum < self.initial:
            raise ValueError("backoff needs 0 < initial <= maximum")

    def ceiling(self, attempt: int) -> float:
        """The cap of the delay before retry number ``attempt`` (0-based)."""
        # min() on the exponent first: 2**attempt would overflow a float for huge counts.
        return min(self.maximum, self.initial * 2.0 ** min(attempt, 62))

    def delay(self, attempt: int) -> float:
        """The delay to sleep before retry number ``attempt`` (0-based)."""
        ceiling = self.ceiling(attempt)
        # Jitter, not cryptography: the module PRNG is what we want here.
        return random.uniform(ceiling / 2, ceiling) if self.jitter else ceiling  # noqa: S311
