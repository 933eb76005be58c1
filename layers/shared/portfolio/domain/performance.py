"""Performance over a period, from the history points the refresh writes.

Each refresh writes one point per resolution, keyed by the start of its bucket (the 5-minute,
hour or day the point falls in), so a repeated refresh overwrites rather than adds, and each
resolution keeps its points for its own retention: 5m for 48 hours, 1h for 90 days, 1d forever.

A period reads the coarsest resolution that still shows it well: 24h from 5m points, 7d / 30d /
90d from hourly ones, all from daily ones; the series is thinned to at most MAX_SERIES_POINTS.

The P&L change (end total P&L - start total P&L) is what the market did: deposits and
withdrawals move the value and the invested amount, not the P&L. The value change includes them;
net deposits (end invested - start invested) tell them apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from portfolio.domain.arithmetic import cents, exact, percent
from portfolio.domain.views import HistoryPoint, PerformanceView, Period, Resolution, ValuePoint

MAX_SERIES_POINTS = 300
# Start of the "all" window: before any point can exist.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_RESOLUTION_OF_PERIOD = {
    Period.DAY: Resolution.FIVE_MINUTES,
    Period.WEEK: Resolution.HOURLY,
    Period.MONTH: Resolution.HOURLY,
    Period.QUARTER: Resolution.HOURLY,
    Period.ALL: Resolution.DAILY,
}
_PERIOD_LENGTH = {
    Period.DAY: timedelta(hours=24),
    Period.WEEK: timedelta(days=7),
    Period.MONTH: timedelta(days=30),
    Period.QUARTER: timedelta(days=90),
}
_BUCKET = {
    Resolution.FIVE_MINUTES: timedelta(minutes=5),
    Resolution.HOURLY: timedelta(hours=1),
    Resolution.DAILY: timedelta(days=1),
}
RETENTION: dict[Resolution, timedelta | None] = {
    Resolution.FIVE_MINUTES: timedelta(hours=48),
    Resolution.HOURLY: timedelta(days=90),
    Resolution.DAILY: None,
}


def resolution_for(period: Period) -> Resolution:
    return _RESOLUTION_OF_PERIOD[period]


def window_for(period: Period, now: datetime) -> tuple[datetime, datetime]:
    """(start, end) of the period ending now; `all` starts at the Unix epoch."""
    length = _PERIOD_LENGTH.get(period)
    return (EPOCH if length is None else now - length, now)


def bucket_start(timestamp: datetime, resolution: Resolution) -> datetime:
    """The start (UTC) of the bucket of `resolution` that `timestamp` falls in."""
    utc = timestamp.astimezone(UTC)
    since_epoch = utc - EPOCH
    return EPOCH + (since_epoch // _BUCKET[resolution]) * _BUCKET[resolution]


def history_keys(timestamp: datetime) -> list[tuple[Resolution, datetime, datetime | None]]:
    """Where a point taken at `timestamp` is written: (resolution, bucket start, expires at or None)."""
    keys = []
    for resolution in Resolution:
        bucket = bucket_start(timestamp, resolution)
        retention = RETENTION[resolution]
        keys.append((resolution, bucket, None if retention is None else bucket + retention))
    return keys


def downsample[T](points: Sequence[T], limit: int = MAX_SERIES_POINTS) -> list[T]:
    """At most `limit` points, evenly spread, always keeping the first and the last."""
    if len(points) <= limit:
        return list(points)
    if limit < 2:
        return [points[-1]] if limit == 1 else []
    last = len(points) - 1
    return [points[index * last // (limit - 1)] for index in range(limit)]


def summarize_performance(
    user_id: str, period: Period, points: Sequence[HistoryPoint], now: datetime
) -> PerformanceView:
    """Change over the period from the points inside its window; nulls and no series without points."""
    start, end = window_for(period, now)
    inside = sorted((point for point in points if start <= point.timestamp <= end), key=lambda point: point.timestamp)
    if not inside:
        return PerformanceView(
            user_id=user_id,
            period=period,
            start=None,
            end=None,
            start_value_usd=None,
            end_value_usd=None,
            value_change_usd=None,
            value_change_percent=None,
            pnl_change_usd=None,
            net_deposits_usd=None,
            series=[],
        )
    first, last = inside[0], inside[-1]
    with exact():
        value_change = last.value_usd - first.value_usd
        pnl_change = last.total_pnl_usd - first.total_pnl_usd
        net_deposits = last.invested_usd - first.invested_usd
    return PerformanceView(
        user_id=user_id,
        period=period,
        start=first.timestamp,
        end=last.timestamp,
        start_value_usd=cents(first.value_usd),
        end_value_usd=cents(last.value_usd),
        value_change_usd=cents(value_change),
        value_change_percent=percent(value_change, first.value_usd),
        pnl_change_usd=cents(pnl_change),
        net_deposits_usd=cents(net_deposits),
        series=[
            ValuePoint(timestamp=point.timestamp, value_usd=cents(point.value_usd)) for point in downsample(inside)
        ],
    )
