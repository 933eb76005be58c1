"""Performance history from before the first refresh: the prices a performance view lacks, taken
from the coins API's chart and kept in the price history for every later read.

The sweep records a token's price from its first refresh on, so a new or imported portfolio whose
transactions go back further would show a series only from then. Before a performance view is
valued, every token whose stored prices at the period's resolution do not reach back to where the
series starts (the period's start, or the first transaction when that is later) gets the missing
span from `/chart`: one point per bucket of the resolution, or per few buckets when the span holds
more than MAX_SERIES_POINTS of them, many coins a call. What comes back goes into the buckets no
sweep wrote, with the resolution's expiry, and into the series of this read.

A read answers quickly whatever the coins API does: the calls share one deadline, and a call that
fails (429, 5xx, a timeout, a malformed answer) leaves the view with what is stored; this container
then asks for no chart for a minute. A coin the chart has no earlier prices for, at a resolution,
is not asked for again by this container for a while (`no_data_ttl_s`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import batched

from portfolio.domain.performance import MAX_SERIES_POINTS, PriceSeries, bucket_length, bucket_start
from portfolio.domain.views import Resolution
from portfolio.observability import logger
from portfolio.services.ports import (
    ChartResult,
    PriceChartSource,
    PriceHistoryBackfillWriter,
    PriceTierUnavailableError,
)

# Stored prices that begin within this many chart steps of where the series starts are complete: a
# chart point is observed up to a step from its moment, and a gap this small is not worth a call.
COVERED_WITHIN_STEPS = 2
PAUSE_AFTER_FAILURE_S = 60.0
# A sweep writes the buckets of its own window, which starts at most this long before now (its
# 5-minute window, then up to the scheduler's 280 s): from there on a bucket is filled only if empty.
SWEEP_LAG = timedelta(minutes=15)
_MAX_REMEMBERED_COINS = 10_000

Point = tuple[datetime, Decimal]


def chart_grid(resolution: Resolution, since: datetime, until: datetime) -> tuple[timedelta, int]:
    """(step, points) of a chart from `since` to `until`: one point per bucket, or per the fewest
    whole buckets that keep the points at MAX_SERIES_POINTS or fewer."""
    bucket = bucket_length(resolution)
    per_bucket = (until - since) // bucket + 1
    step = bucket * -(-per_bucket // MAX_SERIES_POINTS)
    return step, (until - since) // step + 1


class HistoryBackfill:
    """One per container: what it learnt about the chart (coins without one, a failing API) lasts
    as long as the instance."""

    def __init__(
        self,
        charts: PriceChartSource,
        history: PriceHistoryBackfillWriter,
        *,
        budget_s: float,
        batch_size: int = 50,
        max_concurrency: int = 4,
        min_confidence: Decimal = Decimal("0.5"),
        no_data_ttl_s: float = 3600.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._charts = charts
        self._history = history
        self._budget_s = budget_s
        self._batch_size = batch_size
        self._max_concurrency = max_concurrency
        self._min_confidence = min_confidence
        self._no_data_ttl_s = no_data_ttl_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._without_chart: dict[tuple[str, Resolution], float] = {}  # -> monotonic time it is asked again
        self._paused_until = 0.0

    def complete(
        self,
        series: Mapping[str, PriceSeries],
        coin_ids: Iterable[str],
        resolution: Resolution,
        since: datetime,
        until: datetime,
    ) -> dict[str, PriceSeries]:
        """`series` (stored prices by coin id, oldest first) with the prices each coin lacks between
        `since` and its first stored one filled in, as far as the chart gives them within the budget.
        Never raises: whatever goes wrong, the stored series is the answer."""
        completed = dict(series)
        try:
            gaps = self._gaps(series, dict.fromkeys(coin_ids), resolution, since, until)
            if not gaps:
                return completed
            found = self._fetch(gaps, series, resolution, since, until)
            if not found:
                return completed
            self._store(found, resolution, since, until)
        except Exception as error:  # the view must answer even if the backfill is broken
            logger.warning("price history backfill failed", extra={"error": type(error).__name__})
            return completed
        for coin_id, points in found.items():
            completed[coin_id] = [*points, *series.get(coin_id, ())]
        return completed

    def _gaps(
        self,
        series: Mapping[str, PriceSeries],
        coin_ids: Iterable[str],
        resolution: Resolution,
        since: datetime,
        until: datetime,
    ) -> dict[tuple[timedelta, int], list[str]]:
        """Coins to ask the chart for, grouped by the (step, points) of their missing span."""
        if self._budget_s <= 0 or until <= since:
            return {}
        now = self._monotonic()
        full_step, _ = chart_grid(resolution, since, until)
        gaps: dict[tuple[timedelta, int], list[str]] = {}
        with self._lock:
            if now < self._paused_until:
                return {}
            for coin_id in coin_ids:
                stored = series.get(coin_id)
                first = stored[0][0] if stored else None
                if first is not None and first <= since + COVERED_WITHIN_STEPS * full_step:
                    continue
                if self._without_chart.get((coin_id, resolution), 0.0) > now:
                    continue
                gaps.setdefault(chart_grid(resolution, since, first or until), []).append(coin_id)
        return gaps

    def _fetch(
        self,
        gaps: Mapping[tuple[timedelta, int], list[str]],
        series: Mapping[str, PriceSeries],
        resolution: Resolution,
        since: datetime,
        until: datetime,
    ) -> dict[str, list[Point]]:
        started = self._monotonic()
        deadline = started + self._budget_s
        calls = [
            (step, points, chunk)
            for (step, points), coins in gaps.items()
            for chunk in batched(coins, self._batch_size)
        ]

        def fetch(call: tuple[timedelta, int, tuple[str, ...]]) -> ChartResult:
            step, points, chunk = call
            return self._charts.fetch_chart(chunk, start=since, step=step, points=points, deadline=deadline)

        with ThreadPoolExecutor(max_workers=min(self._max_concurrency, len(calls)), thread_name_prefix="chart") as pool:
            results = list(pool.map(fetch, calls))
        found: dict[str, list[Point]] = {}
        without_chart: list[str] = []
        errors: list[str] = []
        for (step, _points, chunk), result in zip(calls, results, strict=True):
            if not result.ok:
                errors.append(result.error or "failed")
                continue
            for coin_id in chunk:
                confidence = result.confidence.get(coin_id)
                trusted = confidence is None or confidence >= self._min_confidence
                points = _missing_buckets(
                    result.series.get(coin_id, []) if trusted else [],
                    series.get(coin_id),
                    resolution,
                    since - step,
                    until,
                )
                if points:
                    found[coin_id] = points
                if not points or points[0][0] > since + COVERED_WITHIN_STEPS * step:
                    without_chart.append(coin_id)
        self._remember(without_chart, resolution, failed=bool(errors))
        duration_ms = round((self._monotonic() - started) * 1000)
        if errors:
            logger.warning(
                "price history backfill incomplete; the view shows the stored prices",
                extra={"resolution": resolution.value, "failedCalls": len(errors), "error": errors[0]},
            )
        if not found and not without_chart:
            return found
        logger.info(
            "price history backfilled",
            extra={
                "resolution": resolution.value,
                "coins": len(found),
                "points": sum(len(points) for points in found.values()),
                "calls": sum(result.attempts for result in results),
                "withoutChart": len(without_chart),
                "durationMs": duration_ms,
            },
        )
        return found

    def _store(
        self, found: Mapping[str, list[Point]], resolution: Resolution, since: datetime, until: datetime
    ) -> None:
        # Every bucket from `since` to the first stored one was read empty; the one `since` falls in
        # (it starts before what was read) and the few a running sweep may be writing are not known to be.
        try:
            self._history.record_backfill(
                found,
                resolution,
                empty_from=since,
                empty_until=bucket_start(until - SWEEP_LAG, resolution),
            )
        except PriceTierUnavailableError as error:
            logger.warning("backfilled prices not stored; the next read asks again", extra={"error": str(error)})

    def _remember(self, without_chart: list[str], resolution: Resolution, *, failed: bool) -> None:
        now = self._monotonic()
        with self._lock:
            if failed:
                self._paused_until = now + PAUSE_AFTER_FAILURE_S
            if len(self._without_chart) + len(without_chart) > _MAX_REMEMBERED_COINS:
                self._without_chart = {key: at for key, at in self._without_chart.items() if at > now}
                if len(self._without_chart) + len(without_chart) > _MAX_REMEMBERED_COINS:
                    self._without_chart.clear()
            for coin_id in without_chart:
                self._without_chart[(coin_id, resolution)] = now + self._no_data_ttl_s


def _missing_buckets(
    points: Iterable[Point],
    stored: PriceSeries | None,
    resolution: Resolution,
    earliest: datetime,
    latest: datetime,
) -> list[Point]:
    """The chart's points within [earliest, latest] in buckets before the first stored one, one per
    bucket (the bucket's latest, as a sweep leaves it), oldest first."""
    first_stored_bucket = bucket_start(stored[0][0], resolution) if stored else None
    by_bucket: dict[datetime, Point] = {}
    for at, price in sorted(points):
        if not earliest <= at <= latest:
            continue
        bucket = bucket_start(at, resolution)
        if first_stored_bucket is None or bucket < first_stored_bucket:
            by_bucket[bucket] = (at, price)
    return [by_bucket[bucket] for bucket in sorted(by_bucket)]
