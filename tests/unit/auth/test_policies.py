"""Key rotation and login throttle policies (pure domain)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from handwritten.auth.domain.keys import KeyRotationPolicy, SigningKeyInfo
from handwritten.auth.domain.throttle import (
    ALLOW,
    AttemptCount,
    LoginThrottlePolicy,
    ThrottleDecision,
    ThrottleLimit,
)

NOW = datetime(2025, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)
POLICY = KeyRotationPolicy(rotation_interval=30 * DAY, verification_window=timedelta(minutes=15))


def key(kid: str, activated: datetime | None, retired: datetime | None = None) -> SigningKeyInfo:
    return SigningKeyInfo(
        kid, created_at=activated or NOW, activated_at=activated, retired_at=retired
    )


def test_no_active_key_means_rotation_is_due() -> None:
    assert POLICY.rotation_due(None, NOW)
    assert POLICY.signing_key([key("old", NOW - 60 * DAY, NOW - 30 * DAY)]) is None


def test_rotation_is_due_after_the_interval() -> None:
    active = key("a", NOW - 30 * DAY + timedelta(seconds=1))
    assert not POLICY.rotation_due(active, NOW)
    assert POLICY.rotation_due(active, NOW + timedelta(seconds=1))
    assert POLICY.next_rotation_at(active) == NOW + timedelta(seconds=1)


def test_the_active_key_signs() -> None:
    keys = [key("old", NOW - 40 * DAY, NOW - 10 * DAY), key("current", NOW - 10 * DAY)]
    signing = POLICY.signing_key(keys)
    assert signing is not None and signing.kid == "current"


def test_current_and_previous_keys_are_published() -> None:
    keys = [
        key("oldest", NOW - 90 * DAY, NOW - 60 * DAY),
        key("previous", NOW - 60 * DAY, NOW - 10 * DAY),
        key("current", NOW - 10 * DAY),
        key("never-activated", None),
    ]
    assert [k.kid for k in POLICY.published(keys, NOW)] == ["current", "previous"]


def test_keys_retired_within_the_verification_window_stay_published() -> None:
    # rotate-keys run twice in a row: tokens of both older keys may still be valid.
    keys = [
        key("k1", NOW - 30 * DAY, NOW - timedelta(minutes=2)),
        key("k2", NOW - timedelta(minutes=2), NOW - timedelta(minutes=1)),
        key("k3", NOW - timedelta(minutes=1)),
    ]
    assert [k.kid for k in POLICY.published(keys, NOW)] == ["k3", "k2", "k1"]
    later = NOW + timedelta(minutes=20)
    assert [k.kid for k in POLICY.published(keys, later)] == ["k3", "k2"]


def test_published_set_is_bounded() -> None:
    keys = [
        key(f"k{i}", NOW - timedelta(seconds=i + 1), NOW - timedelta(seconds=i)) for i in range(20)
    ]
    keys.append(key("current", NOW))
    published = POLICY.published(keys, NOW)
    assert len(published) == POLICY.max_published
    assert published[0].kid == "current"


THROTTLE = LoginThrottlePolicy(
    per_account=ThrottleLimit(max_failures=5, window_seconds=900),
    per_client=ThrottleLimit(max_failures=50, window_seconds=600),
)


def test_attempts_up_to_the_limit_are_allowed() -> None:
    assert THROTTLE.decide(AttemptCount(5, 100), AttemptCount(50, 100)) == ALLOW


def test_the_attempt_after_the_limit_is_refused_until_the_window_ends() -> None:
    assert THROTTLE.decide(AttemptCount(6, 321), AttemptCount(6, 500)) == ThrottleDecision(
        False, 321
    )
    assert THROTTLE.decide(AttemptCount(1, 900), AttemptCount(51, 42)) == ThrottleDecision(
        False, 42
    )


def test_both_limits_exceeded_waits_for_the_later_window() -> None:
    decision = THROTTLE.decide(AttemptCount(9, 100), AttemptCount(99, 400))
    assert decision == ThrottleDecision(False, 400)


def test_retry_after_is_at_least_one_second_and_a_window_without_ttl() -> None:
    assert THROTTLE.decide(AttemptCount(6, 0), AttemptCount(1, 1)).retry_after_seconds == 900
    assert THROTTLE.decide(AttemptCount(6, -1), AttemptCount(1, 1)).retry_after_seconds == 900
    assert THROTTLE.decide(AttemptCount(6, 5000), AttemptCount(1, 1)).retry_after_seconds == 900
