"""Login throttling policy against password guessing.

Attempts are counted *before* the password is checked, per account and per client
address, in fixed windows; a successful login clears the account's counter and
takes its own attempt back from the address's counter. So a counter holds the
failures (plus attempts still in flight) since the window opened, and a burst of
parallel guesses cannot slip through before the first failure is recorded.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ThrottleLimit:
    #: Failed attempts allowed in one window; the next one is refused.
    max_failures: int
    window_seconds: int


@dataclass(frozen=True)
class AttemptCount:
    """A counter after this attempt was added, and the seconds its window has left."""

    attempts: int
    ttl_seconds: int


@dataclass(frozen=True)
class ThrottleDecision:
    allowed: bool
    retry_after_seconds: int = 0


ALLOW = ThrottleDecision(allowed=True)


@dataclass(frozen=True)
class LoginThrottlePolicy:
    per_account: ThrottleLimit
    per_client: ThrottleLimit

    def decide(self, account: AttemptCount, client: AttemptCount) -> ThrottleDecision:
        """Refuse when either counter went past its limit; wait until both allow."""
        waits = [
            _retry_after(count, limit)
            for count, limit in ((account, self.per_account), (client, self.per_client))
            if count.attempts > limit.max_failures
        ]
        return ThrottleDecision(False, max(waits)) if waits else ALLOW


def _retry_after(count: AttemptCount, limit: ThrottleLimit) -> int:
    # A counter without a known expiry (ttl < 1) waits a whole window.
    seconds = count.ttl_seconds if count.ttl_seconds > 0 else limit.window_seconds
    return max(1, min(seconds, limit.window_seconds))
