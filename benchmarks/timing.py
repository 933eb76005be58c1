"""Timing helpers shared by the benchmarks: nanosecond samples and their percentiles."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


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


@dataclass(frozen=True)
class Comparison:
    """A subject timed against its baseline in alternating rounds of one run."""

    subject: list[int]
    baseline: list[int]
    ratios: list[float]

    @property
    def ratio(self) -> float:
        """The median of the rounds' median ratios: robust to a noisy round."""
        return round(statistics.median(self.ratios), 3)


def compare(
    subject: Callable[[], object], baseline: Callable[[], object], *, repetitions: int, calls: int, warmup: int
) -> Comparison:
    """Time both in alternating order round by round, so drift on a busy machine hits both alike."""
    time_calls(subject, warmup)
    time_calls(baseline, warmup)
    subject_samples: list[int] = []
    baseline_samples: list[int] = []
    ratios: list[float] = []
    for round_number in range(repetitions):
        if round_number % 2:
            subject_round = time_calls(subject, calls)
            baseline_round = time_calls(baseline, calls)
        else:
            baseline_round = time_calls(baseline, calls)
            subject_round = time_calls(subject, calls)
        ratios.append(statistics.median(subject_round) / statistics.median(baseline_round))
        subject_samples += subject_round
        baseline_samples += baseline_round
    return Comparison(subject_samples, baseline_samples, ratios)
