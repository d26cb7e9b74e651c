"""Percentiles, latency summaries, rates and ratios (pure: no I/O, no clocks).

Latencies are taken in seconds and reported in milliseconds. Percentiles use linear
interpolation between closest ranks (numpy's default, "type 7"), so a p99 of 100
samples is not simply the largest one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

#: The percentiles every latency summary reports.
PERCENTILES = (50.0, 95.0, 99.0)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``, interpolated linearly.

    Raises ``ValueError`` on an empty sequence or a ``q`` outside 0..100: a
    percentile of nothing is not zero, and a silent zero would read as "fast".
    """
    if not values:
        raise ValueError("percentile of an empty sample")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class LatencySummary:
    """Latency distribution of one measurement, in milliseconds."""

    count: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Iterable[float]) -> LatencySummary | None:
        """Summary of latencies given in seconds; ``None`` when there are none."""
        values = sorted(seconds)
        if not values:
            return None
        p50, p95, p99 = (percentile(values, q) for q in PERCENTILES)
        return cls(
            count=len(values),
            mean_ms=_ms(sum(values) / len(values)),
            p50_ms=_ms(p50),
            p95_ms=_ms(p95),
            p99_ms=_ms(p99),
            max_ms=_ms(values[-1]),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def rate(count: int, seconds: float) -> float | None:
    """Events per second, ``None`` when no time elapsed (a rate is then undefined)."""
    if seconds <= 0:
        return None
    return round(count / seconds, 3)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """``numerator / denominator`` rounded to 3 places; ``None`` if either is missing or
    the denominator is zero (no infinite or made-up ratios in a report)."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return round(numerator / denominator, 3)


def summarize_json(summary: LatencySummary | None) -> dict[str, Any] | None:
    """JSON form of an optional summary."""
    return None if summary is None else summary.to_json()


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 3)
