"""Timing helpers shared by the benchmarks: nanosecond samples and their percentiles."""

from __future__ import annotations

import time
from collections.abc import Callable


def time_calls(call: Callable[[], object], count: int) -> list[int]:
    """The duration of each of `count` calls, in nanoseconds."""
    samples = []
    clock = time.perf_counter_ns
    for _ in range(count):
        started = clock()
        call()
        samples.append(clock() - started)
    return samples


def percentile_us(samples: list[int], share: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] / 1000, 1)
