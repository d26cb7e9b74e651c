"""Kong 3.8's rate-limiting arithmetic: fixed windows, counter keys, headers.

From ``kong/plugins/rate-limiting/handler.lua``, ``policies/init.lua`` and
``kong/tools/timestamp.lua``: windows are UTC calendar periods (a minute starts at
second 0); the redis policy increments first and reads the count *before* this
request, so request N of a window sees usage N-1; the request is refused when the
remaining quota (limit - usage) is 0 or less. Rejected requests count too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

#: Seconds a counter lives (``expiration.lua``); also the nominal window length.
EXPIRATION: Mapping[str, int] = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "month": 2592000,
    "year": 31536000,
}

LIMIT_HEADER = "RateLimit-Limit"
REMAINING_HEADER = "RateLimit-Remaining"
RESET_HEADER = "RateLimit-Reset"
RETRY_AFTER_HEADER = "Retry-After"


def x_limit_header(period: str) -> str:
    return f"X-RateLimit-Limit-{period.capitalize()}"


def x_remaining_header(period: str) -> str:
    return f"X-RateLimit-Remaining-{period.capitalize()}"


def window_start_ms(now: int, period: str) -> int:
    """Start of ``period``'s window containing ``now`` (epoch seconds), in epoch ms."""
    moment = datetime.fromtimestamp(now, UTC)
    if period == "second":
        start = moment
    elif period == "minute":
        start = moment.replace(second=0)
    elif period == "hour":
        start = moment.replace(minute=0, second=0)
    elif period == "day":
        start = moment.replace(hour=0, minute=0, second=0)
    elif period == "month":
        start = moment.replace(day=1, hour=0, minute=0, second=0)
    elif period == "year":
        start = moment.replace(month=1, day=1, hour=0, minute=0, second=0)
    else:
        raise ValueError(f"unknown period {period!r}")
    return int(start.replace(microsecond=0).timestamp()) * 1000


def counter_key(route_id: str, service_id: str, identifier: str, now: int, period: str) -> str:
    """Kong's key: ``ratelimit:<route id>:<service id>:<identifier>:<window ms>:<period>``."""
    start = window_start_ms(now, period)
    return f"ratelimit:{route_id}:{service_id}:{identifier}:{start}:{period}"


def seconds_to_reset(now: int, period: str) -> int:
    """Kong's ``RateLimit-Reset`` (and ``Retry-After``): at least 1."""
    elapsed = now - window_start_ms(now, period) // 1000
    return max(1, EXPIRATION[period] - elapsed)


@dataclass(frozen=True)
class RateDecision:
    """Headers for the client and whether the request is refused."""

    headers: tuple[tuple[str, str], ...]
    exceeded: bool


def decide(
    limits: Sequence[tuple[str, int]],
    usage: Mapping[str, int],
    now: int,
    *,
    hide_client_headers: bool = False,
) -> RateDecision:
    """The handler's access logic, given each period's usage *before* this request.

    ``RateLimit-*`` describe the period with the least remaining quota (the longer
    window among equals); ``Retry-After`` is its reset when the request is refused.
    """
    remaining_by_period = {period: limit - usage.get(period, 0) for period, limit in limits}
    stop = None
    for period, _ in limits:
        if remaining_by_period[period] <= 0:
            stop = period
    headers: list[tuple[str, str]] = []
    chosen: tuple[int, int, int] | None = None  # (limit, remaining, window)
    reset = 0
    for period, limit in limits:
        remaining = remaining_by_period[period]
        if stop is None or stop == period:
            remaining -= 1
        remaining = max(0, remaining)
        window = EXPIRATION[period]
        if (
            chosen is None
            or remaining < chosen[1]
            or (remaining == chosen[1] and window > chosen[2])
        ):
            chosen = (limit, remaining, window)
            reset = seconds_to_reset(now, period)
        headers.append((x_limit_header(period), str(limit)))
        headers.append((x_remaining_header(period), str(remaining)))
    assert chosen is not None
    headers += [
        (LIMIT_HEADER, str(chosen[0])),
        (REMAINING_HEADER, str(chosen[1])),
        (RESET_HEADER, str(reset)),
    ]
    if stop is not None:
        headers.append((RETRY_AFTER_HEADER, str(reset)))
    return RateDecision(() if hide_client_headers else tuple(headers), stop is not None)
