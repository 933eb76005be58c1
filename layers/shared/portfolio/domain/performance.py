"""Performance over a period: the user's positions over time valued at each token's price history.

Every sweep records each held token's price once per resolution, keyed by the start of its bucket
(the 5-minute, hour or day it falls in), so a repeated sweep overwrites rather than adds, and each
resolution keeps its prices for its own retention: 5m for 48 hours, 1h for 90 days, 1d forever.
A point of the user's history is taken at each moment a bucket was priced: the positions as they
stood then (the transactions up to that moment), each token at its latest price so far.

A period reads the coarsest resolution that still shows it well: 24h from 5m points, 7d / 30d /
90d from hourly ones, all from daily ones; the series is thinned to at most MAX_SERIES_POINTS.

The P&L change is what the market did: a buy or a priced transfer in moves the value and the
invested amount, not the P&L. Coins transferred out take their gain out of the total P&L; that gain
is counted as it left (withdrawn gain), so a withdrawal changes neither the P&L change nor the ROI.
Net deposits are the money put in at cost less what was transferred out at its value when it left:
invested (net of the cost transferred out) less the withdrawn gain. The returns (returns.py) compare
each point's value with the same holdings at the previous point's prices: what changed between
the two is the market's doing, what changed before is money that came in or went out (README,
"How the numbers are computed").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from portfolio.domain.accounting import Ledger, extend
from portfolio.domain.arithmetic import EXACT, cents, exact, percent
from portfolio.domain.money import ZERO
from portfolio.domain.returns import money_weighted_percent, time_weighted_percent
from portfolio.domain.transactions import Transaction
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


def bucket_length(resolution: Resolution) -> timedelta:
    """How long one bucket of the resolution lasts."""
    return _BUCKET[resolution]


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
        withdrawn_gain = last.withdrawn_gain_usd - first.withdrawn_gain_usd
        pnl_change = last.total_pnl_usd - first.total_pnl_usd + withdrawn_gain
        net_deposits = last.invested_usd - first.invested_usd - withdrawn_gain
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
        withdrawn_gain_usd=cents(withdrawn_gain),
        twr_percent=time_weighted_percent([(point.value_before_usd, point.value_usd) for point in inside]),
        mwr_percent=money_weighted_percent(
            [(point.timestamp, point.value_before_usd, point.value_usd) for point in inside]
        ),
        series=[
            ValuePoint(timestamp=point.timestamp, value_usd=cents(point.value_usd)) for point in downsample(inside)
        ],
    )


PriceSeries = Sequence[tuple[datetime, Decimal]]  # (observed at, price), oldest first


def history_points(
    start: Ledger,
    later: Sequence[Transaction],
    prices: Mapping[str, PriceSeries],
) -> list[HistoryPoint]:
    """The portfolio at every moment a price was observed, oldest first.

    `start` holds the positions before the first moment of interest and `later` the transactions
    after it (in any order); `prices` is keyed by token (chain:address). No point is taken before
    the first transaction. A token not yet observed at a moment is left out of that point's value,
    as an unpriced holding is.
    """
    moments = sorted({moment for series in prices.values() for moment, _ in series})
    pending = sorted(later, key=lambda transaction: transaction.sort_key)
    cursors = dict.fromkeys(prices, 0)
    latest: dict[str, Decimal] = {}
    ledger = start
    points: list[HistoryPoint] = []
    applied = 0
    for moment in moments:
        due = applied
        while due < len(pending) and pending[due].timestamp <= moment:
            due += 1
        if due > applied:
            ledger = extend(ledger, pending[applied:due])
            applied = due
        before = dict(latest)
        for token_key, series in prices.items():
            index = cursors[token_key]
            while index < len(series) and series[index][0] <= moment:
                latest[token_key] = series[index][1]
                index += 1
            cursors[token_key] = index
        if ledger.transaction_count:
            points.append(_point(moment, ledger, latest, before))
    return points


def _value(ledger: Ledger, prices: Mapping[str, Decimal], fallback: Mapping[str, Decimal]) -> Decimal:
    value = ZERO
    for position in ledger.open_positions():
        price = prices.get(position.token.key, fallback.get(position.token.key))
        if price is not None:
            value = EXACT.add(value, EXACT.multiply(position.amount, price))
    return value


def _point(
    moment: datetime, ledger: Ledger, latest: Mapping[str, Decimal], before: Mapping[str, Decimal]
) -> HistoryPoint:
    value = unrealized = ZERO
    for position in ledger.open_positions():
        price = latest.get(position.token.key)
        if price is None:
            continue
        value = EXACT.add(value, EXACT.multiply(position.amount, price))
        unrealized = EXACT.add(unrealized, position.unrealized_pnl(price))
    return HistoryPoint(
        timestamp=moment,
        value_usd=cents(value),
        invested_usd=cents(ledger.net_invested),
        total_pnl_usd=cents(EXACT.add(ledger.realized_pnl, unrealized)),
        withdrawn_gain_usd=cents(ledger.withdrawn_gain),
        # Today's holdings at the previous moment's prices (a token first priced now at today's):
        # what the interval since then started with, after the money that came in or went out.
        value_before_usd=cents(_value(ledger, before, latest)),
    )
