"""Performance over a period: windows, resolutions, downsampling and deposit-proof P&L change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from itertools import pairwise

import pytest
from portfolio.domain.accounting import Ledger, replay
from portfolio.domain.performance import (
    MAX_SERIES_POINTS,
    downsample,
    history_keys,
    history_points,
    resolution_for,
    summarize_performance,
    window_for,
)
from portfolio.domain.views import HistoryPoint, Period, Resolution

from tests.unit.domain.builders import EVM_NATIVE, T0, USDC_ETHEREUM, tx

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def point(at: datetime, value: str, invested: str, pnl: str) -> HistoryPoint:
    return HistoryPoint(
        timestamp=at, value_usd=Decimal(value), invested_usd=Decimal(invested), total_pnl_usd=Decimal(pnl)
    )


@pytest.mark.parametrize(
    ("period", "resolution", "length"),
    [
        (Period.DAY, Resolution.FIVE_MINUTES, timedelta(hours=24)),
        (Period.WEEK, Resolution.HOURLY, timedelta(days=7)),
        (Period.MONTH, Resolution.HOURLY, timedelta(days=30)),
        (Period.QUARTER, Resolution.HOURLY, timedelta(days=90)),
    ],
)
def test_given_a_period_then_it_reads_its_resolution_over_its_window(
    period: Period, resolution: Resolution, length: timedelta
) -> None:
    assert resolution_for(period) is resolution
    assert window_for(period, NOW) == (NOW - length, NOW)


def test_given_all_time_then_daily_points_from_the_beginning() -> None:
    start, end = window_for(Period.ALL, NOW)
    assert resolution_for(Period.ALL) is Resolution.DAILY
    assert start < datetime(2009, 1, 3, tzinfo=UTC)
    assert end == NOW


def test_given_a_deposit_during_the_period_then_the_pnl_change_ignores_it_and_net_deposits_show_it() -> None:
    # Given 1000 invested worth 1100, then 500 more deposited, then worth 1700 with 2000 - 1500 = 200 P&L
    points = [
        point(NOW - timedelta(hours=20), "1100", "1000", "100"),
        point(NOW - timedelta(hours=10), "1600", "1500", "100"),
        point(NOW - timedelta(hours=1), "1700", "1500", "200"),
    ]

    # When the day's performance is summarized
    view = summarize_performance("alice", Period.DAY, points, NOW)

    # Then the value rose 600, of which 500 was deposited: the market made 100
    assert view.value_change_usd == Decimal("600")
    assert view.value_change_percent == Decimal("54.55")  # 600 / 1100
    assert view.pnl_change_usd == Decimal("100")
    assert view.net_deposits_usd == Decimal("500")
    assert (view.start, view.end) == (points[0].timestamp, points[-1].timestamp)
    assert (view.start_value_usd, view.end_value_usd) == (Decimal("1100"), Decimal("1700"))


def test_given_a_withdrawal_then_the_value_falls_but_the_pnl_change_does_not() -> None:
    points = [
        point(NOW - timedelta(days=6), "5000", "4000", "1000"),
        point(NOW - timedelta(days=1), "3000", "2000", "1000"),  # 2000 at cost withdrawn
    ]
    view = summarize_performance("alice", Period.WEEK, points, NOW)
    assert view.value_change_usd == Decimal("-2000")
    assert view.pnl_change_usd == Decimal("0")
    assert view.net_deposits_usd == Decimal("-2000")


def test_given_points_outside_the_window_then_they_are_ignored_and_the_series_is_oldest_first() -> None:
    points = [
        point(NOW - timedelta(minutes=5), "120", "100", "20"),
        point(NOW - timedelta(hours=30), "50", "100", "-50"),  # before the 24h window
        point(NOW - timedelta(hours=2), "110", "100", "10"),
    ]
    view = summarize_performance("alice", Period.DAY, points, NOW)
    assert [p.value_usd for p in view.series] == [Decimal("110"), Decimal("120")]
    assert view.pnl_change_usd == Decimal("10")


def test_given_no_points_then_figures_are_null_and_the_series_empty() -> None:
    view = summarize_performance("alice", Period.MONTH, [], NOW)
    assert view.series == []
    assert view.start is None and view.end is None
    assert view.start_value_usd is None and view.value_change_usd is None
    assert view.pnl_change_usd is None and view.net_deposits_usd is None


def test_given_a_start_value_of_zero_then_the_percent_change_is_null() -> None:
    points = [point(NOW - timedelta(hours=3), "0", "0", "0"), point(NOW, "100", "100", "0")]
    view = summarize_performance("alice", Period.DAY, points, NOW)
    assert view.value_change_usd == Decimal("100")
    assert view.value_change_percent is None


def test_given_a_long_series_then_it_is_thinned_to_the_limit_keeping_first_and_last() -> None:
    # Given 90 days of hourly points (2160)
    points = [point(NOW - timedelta(hours=h), str(h), "0", "0") for h in range(2160)]

    # When the quarter is summarized
    view = summarize_performance("alice", Period.QUARTER, points, NOW)

    # Then at most 300 points remain, evenly spread, oldest and newest kept
    assert len(view.series) == MAX_SERIES_POINTS
    assert view.series[0].timestamp == NOW - timedelta(hours=2159)
    assert view.series[-1].timestamp == NOW
    stamps = [p.timestamp for p in view.series]
    assert stamps == sorted(set(stamps))
    gaps = {later - earlier for earlier, later in pairwise(stamps)}
    assert max(gaps) - min(gaps) <= timedelta(hours=1)


def test_given_a_short_series_then_downsampling_keeps_it_whole() -> None:
    assert downsample([1, 2, 3], 300) == [1, 2, 3]
    assert downsample(list(range(10)), 4) == [0, 3, 6, 9]


def test_given_a_refresh_time_then_one_point_per_resolution_is_bucketed_with_its_retention() -> None:
    at = datetime(2024, 5, 1, 13, 47, 12, tzinfo=UTC)

    keys = history_keys(at)

    assert keys == [
        (Resolution.FIVE_MINUTES, datetime(2024, 5, 1, 13, 45, tzinfo=UTC), datetime(2024, 5, 3, 13, 45, tzinfo=UTC)),
        (Resolution.HOURLY, datetime(2024, 5, 1, 13, 0, tzinfo=UTC), datetime(2024, 7, 30, 13, 0, tzinfo=UTC)),
        (Resolution.DAILY, datetime(2024, 5, 1, tzinfo=UTC), None),
    ]


def test_given_two_refreshes_in_one_bucket_then_they_share_its_key() -> None:
    first = history_keys(datetime(2024, 5, 1, 13, 45, 0, tzinfo=UTC))
    second = history_keys(datetime(2024, 5, 1, 13, 49, 59, tzinfo=UTC))
    assert first == second


def test_given_a_time_in_another_zone_then_buckets_are_in_utc() -> None:
    local = datetime(2024, 5, 1, 23, 30, tzinfo=timezone(timedelta(hours=2)))  # 21:30 UTC
    daily = history_keys(local)[2][1]
    assert daily == datetime(2024, 5, 1, tzinfo=UTC)
    assert daily.utcoffset() == timedelta(0)


def test_given_positions_and_token_prices_over_time_then_each_point_values_the_positions_as_they_stood() -> None:
    # Given 1 ETH bought at 1000 at hour 1 and half of it sold at 3000 at hour 3
    eth = f"ethereum:{EVM_NATIVE}"
    history = [tx("buy", "1", price="1000", hour=1), tx("sell", "0.5", price="3000", hour=3)]
    # And ETH priced by the sweeps at hours 0, 2 and 4
    prices = {
        eth: [
            (T0, Decimal("900")),
            (T0 + timedelta(hours=2), Decimal("2000")),
            (T0 + timedelta(hours=4), Decimal("4000")),
        ]
    }

    # When the history points are taken
    points = history_points(Ledger.empty(), history, prices)

    # Then none before the first transaction; then 1 ETH at 2000, then 0.5 ETH at 4000 with the sale realized
    assert [(p.timestamp, p.value_usd, p.invested_usd, p.total_pnl_usd) for p in points] == [
        (T0 + timedelta(hours=2), Decimal("2000.00"), Decimal("1000.00"), Decimal("1000.00")),
        (T0 + timedelta(hours=4), Decimal("2000.00"), Decimal("1000.00"), Decimal("2500.00")),
    ]


def test_given_a_token_not_yet_priced_at_a_moment_then_it_is_left_out_of_that_point() -> None:
    eth, usdc = f"ethereum:{EVM_NATIVE}", f"ethereum:{USDC_ETHEREUM}"
    history = [tx("buy", "1", price="1000", hour=0), tx("buy", "10", price="1", token=USDC_ETHEREUM, hour=0)]
    prices = {
        eth: [(T0 + timedelta(hours=1), Decimal("1000")), (T0 + timedelta(hours=2), Decimal("1100"))],
        usdc: [(T0 + timedelta(hours=2), Decimal("1"))],
    }

    points = history_points(Ledger.empty(), history, prices)

    assert [p.value_usd for p in points] == [Decimal("1000.00"), Decimal("1110.00")]


def test_given_stored_positions_and_no_later_transaction_then_the_points_value_them_throughout() -> None:
    stored = replay([tx("buy", "2", price="10", hour=0)])
    eth = f"ethereum:{EVM_NATIVE}"

    points = history_points(stored, (), {eth: [(T0 + timedelta(days=1), Decimal("15"))]})

    assert [(p.value_usd, p.total_pnl_usd) for p in points] == [(Decimal("30.00"), Decimal("10.00"))]
