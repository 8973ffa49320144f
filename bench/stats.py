"""Percentiles and medians, without numpy (the figures are few; clarity beats speed here)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of unsorted values; NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p99 and max of durations given in seconds, in milliseconds."""
    if not seconds:
        return {"p50": math.nan, "p99": math.nan, "max": math.nan, "n": 0}
    ordered = sorted(seconds)
    return {
        "p50": percentile(ordered, 50) * 1000,
        "p99": percentile(ordered, 99) * 1000,
        "max": ordered[-1] * 1000,
        "n": len(ordered),
    }


def median(values: Iterable[float]) -> float:
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(kept) if kept else math.nan
