"""Kong's fixed windows, counter keys and rate-limit headers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from handwritten.gateway.domain.rate_limit import (
    counter_key,
    decide,
    seconds_to_reset,
    window_start_ms,
)

# 2026-03-14 15:09:26 UTC
NOW = int(datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC).timestamp())


def ms(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp()) * 1000  # type: ignore[misc]


@pytest.mark.parametrize(
    ("period", "start"),
    [
        ("second", ms(2026, 3, 14, 15, 9, 26)),
        ("minute", ms(2026, 3, 14, 15, 9, 0)),
        ("hour", ms(2026, 3, 14, 15, 0, 0)),
        ("day", ms(2026, 3, 14)),
        ("month", ms(2026, 3, 1)),
        ("year", ms(2026, 1, 1)),
    ],
)
def test_windows_are_utc_calendar_periods(period: str, start: int) -> None:
    assert window_start_ms(NOW, period) == start


def test_the_counter_key_is_kongs() -> None:
    key = counter_key("route-id", "00000000-0000-0000-0000-000000000000", "user-1", NOW, "minute")
    assert key == (
        f"ratelimit:route-id:00000000-0000-0000-0000-000000000000:user-1:"
        f"{ms(2026, 3, 14, 15, 9, 0)}:minute"
    )
    # the same minute, the same key; the next minute, a new one
    assert key == counter_key(
        "route-id", "00000000-0000-0000-0000-000000000000", "user-1", NOW + 33, "minute"
    )
    assert key != counter_key(
        "route-id", "00000000-0000-0000-0000-000000000000", "user-1", NOW + 34, "minute"
    )


def test_reset_is_the_seconds_to_the_window_end() -> None:
    assert seconds_to_reset(NOW, "minute") == 34
    minute_start = window_start_ms(NOW, "minute") // 1000
    assert seconds_to_reset(minute_start, "minute") == 60
    assert seconds_to_reset(minute_start + 59, "minute") == 1
    assert seconds_to_reset(NOW, "second") == 1


def headers(decision_headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return dict(decision_headers)


def test_requests_up_to_the_limit_pass_and_count_down() -> None:
    limits = (("minute", 100),)
    first = decide(limits, {"minute": 0}, NOW)
    assert not first.exceeded
    assert headers(first.headers) == {
        "X-RateLimit-Limit-Minute": "100",
        "X-RateLimit-Remaining-Minute": "99",
        "RateLimit-Limit": "100",
        "RateLimit-Remaining": "99",
        "RateLimit-Reset": "34",
    }
    hundredth = decide(limits, {"minute": 99}, NOW)
    assert not hundredth.exceeded
    assert headers(hundredth.headers)["X-RateLimit-Remaining-Minute"] == "0"


def test_the_101st_request_is_refused_with_retry_after() -> None:
    refused = decide((("minute", 100),), {"minute": 100}, NOW)
    assert refused.exceeded
    assert headers(refused.headers) == {
        "X-RateLimit-Limit-Minute": "100",
        "X-RateLimit-Remaining-Minute": "0",
        "RateLimit-Limit": "100",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": "34",
        "Retry-After": "34",
    }
    # rejected requests still count, and stay refused
    assert decide((("minute", 100),), {"minute": 250}, NOW).exceeded


def test_the_tightest_period_drives_the_ratelimit_headers() -> None:
    limits = (("second", 5), ("minute", 100))
    decision = decide(limits, {"second": 1, "minute": 97}, NOW)
    assert headers(decision.headers) == {
        "X-RateLimit-Limit-Second": "5",
        "X-RateLimit-Remaining-Second": "3",
        "X-RateLimit-Limit-Minute": "100",
        "X-RateLimit-Remaining-Minute": "2",
        "RateLimit-Limit": "100",
        "RateLimit-Remaining": "2",
        "RateLimit-Reset": "34",
    }
    # equal remaining: the longer window
    tie = decide(limits, {"second": 2, "minute": 97}, NOW)
    assert headers(tie.headers)["RateLimit-Limit"] == "100"
    # the second is used up: refused, and only that period's remaining drops
    refused = decide(limits, {"second": 5, "minute": 50}, NOW)
    assert refused.exceeded
    values = headers(refused.headers)
    assert values["X-RateLimit-Remaining-Second"] == "0"
    assert values["X-RateLimit-Remaining-Minute"] == "50"
    assert values["Retry-After"] == values["RateLimit-Reset"] == "1"


def test_hidden_client_headers() -> None:
    decision = decide((("minute", 1),), {"minute": 1}, NOW, hide_client_headers=True)
    assert decision.exceeded and decision.headers == ()
