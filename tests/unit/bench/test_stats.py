"""Percentiles, latency summaries, rates and ratios of the benchmark reports."""

from __future__ import annotations

import pytest

from bench.stats import LatencySummary, percentile, rate, ratio, summarize_json


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == pytest.approx(2.5)
    # rank = 3 * 0.95 = 2.85 → 3 + 0.85 * (4 - 3)
    assert percentile(values, 95) == pytest.approx(3.85)


def test_percentile_does_not_depend_on_input_order() -> None:
    assert percentile([9.0, 1.0, 5.0], 50) == 5.0


def test_p99_of_a_hundred_samples_is_not_simply_the_largest() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile(values, 99) < max(values)


@pytest.mark.parametrize("q", [-1.0, 100.5])
def test_percentile_outside_0_100_is_refused(q: float) -> None:
    with pytest.raises(ValueError, match="outside"):
        percentile([1.0], q)


def test_percentile_of_nothing_is_refused_not_zero() -> None:
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)


def test_latency_summary_reports_milliseconds() -> None:
    summary = LatencySummary.of([0.010, 0.020, 0.030, 0.040, 0.100])
    assert summary is not None
    assert summary.count == 5
    assert summary.mean_ms == pytest.approx(40.0)
    assert summary.p50_ms == pytest.approx(30.0)
    assert summary.p95_ms == pytest.approx(88.0)  # 40 + 0.8 * 60
    assert summary.max_ms == pytest.approx(100.0)
    assert summarize_json(summary) == summary.to_json()
    assert set(summary.to_json()) == {"count", "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms"}


def test_latency_summary_of_no_samples_is_none() -> None:
    assert LatencySummary.of([]) is None
    assert summarize_json(None) is None


def test_rate_is_undefined_without_elapsed_time() -> None:
    assert rate(30, 2.0) == 15.0
    assert rate(30, 0.0) is None


def test_ratio_refuses_to_invent_numbers() -> None:
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(1.0, 3.0) == 0.333
    assert ratio(1.0, 0.0) is None
    assert ratio(None, 2.0) is None
    assert ratio(2.0, None) is None
