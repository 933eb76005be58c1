"""Withdrawals that are not losses, and the time- and money-weighted returns: hand-computed cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from portfolio.domain.accounting import Ledger, replay
from portfolio.domain.performance import history_points, summarize_performance
from portfolio.domain.returns import money_weighted_percent, time_weighted_percent
from portfolio.domain.valuation import value_portfolio
from portfolio.domain.views import HistoryPoint, Period

from tests.unit.domain.builders import EVM_NATIVE, T0, quote, tx

ETH = f"ethereum:{EVM_NATIVE}"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def observed(hours_ago: float, value: str, before: str | None = None) -> HistoryPoint:
    """A point worth `value`, whose holdings were worth `before` at the previous point's prices (money
    came in or went out since); without `before`, no money moved."""
    return HistoryPoint(
        timestamp=NOW - timedelta(hours=hours_ago),
        value_usd=Decimal(value),
        invested_usd=Decimal(0),
        total_pnl_usd=Decimal(0),
        value_before_usd=None if before is None else Decimal(before),
    )


def withdrawal_history() -> list:
    """The issue's example: 2 ETH bought at 1000; when ETH is worth 3000, 1 ETH is sent out."""
    return [tx("buy", "2", price="1000", hour=0), tx("transfer_out", "1", price="3000", hour=2)]


def test_given_a_withdrawal_to_an_own_wallet_then_the_roi_stays_and_the_gain_that_left_is_reported() -> None:
    history = withdrawal_history()
    prices = {ETH: quote(ETH, "3000")}

    # Given the portfolio before the withdrawal: 2 ETH at 1000 worth 3000 each, ROI 200 %
    before = value_portfolio("alice", replay(history[:1]), prices).summary
    assert (before.total_pnl_usd, before.invested_usd, before.roi_percent) == (Decimal(4000), Decimal(2000), 200)

    # When 1 ETH is transferred out
    after = value_portfolio("alice", replay(history), prices).summary

    # Then invested is net of the cost that left, so the ROI is still 200 %
    assert after.invested_usd == Decimal(1000)
    assert after.total_pnl_usd == Decimal(2000)
    assert after.roi_percent == Decimal(200)
    # And the gain the coin left with is reported, not dropped
    assert after.withdrawn_gain_usd == Decimal(2000)
    assert after.withdrawn_cost_usd == Decimal(1000)


def test_given_a_withdrawal_during_the_period_then_its_pnl_change_is_zero_and_it_counts_at_value() -> None:
    # Given the example observed at hour 1 (before the withdrawal) and hour 3 (after), ETH at 3000 throughout
    series = {ETH: [(T0 + timedelta(hours=1), Decimal(3000)), (T0 + timedelta(hours=3), Decimal(3000))]}
    points = history_points(Ledger.empty(), withdrawal_history(), series)

    # When the period is summarized
    view = summarize_performance("alice", Period.ALL, points, T0 + timedelta(hours=4))

    # Then the value fell 3000, all of it the withdrawal at its value: no P&L change, no return lost
    assert view.value_change_usd == Decimal(-3000)
    assert view.net_deposits_usd == Decimal(-3000)
    assert view.pnl_change_usd == Decimal(0)
    assert view.withdrawn_gain_usd == Decimal(2000)
    assert view.twr_percent == Decimal(0)
    assert view.mwr_percent == Decimal(0)


def test_given_a_deposit_midway_then_twr_chains_the_halves_and_mwr_weights_the_money() -> None:
    # Given 1000 that grows 10 % in the first half of a day, 1000 more deposited at midday, and 20 % growth after
    points = [observed(24, "1000"), observed(12, "1100"), observed(0, "2520", before="2100")]

    # When the day is summarized
    view = summarize_performance("alice", Period.DAY, points, NOW)

    # Then TWR = 1.1 * 1.2 - 1 = 32 %, whatever the deposit
    assert view.twr_percent == Decimal("32.00")
    # And MWR solves 1000 (1 + r) + 1000 (1 + r)^0.5 = 2520: sqrt(1 + r) = (-1 + sqrt(11.08)) / 2, r = 35.5668 %
    assert view.mwr_percent == Decimal("35.57")


def test_given_a_withdrawal_midway_then_both_returns_see_ten_percent_per_half() -> None:
    # Given 2000 that grows 10 %, 1000 taken out at midday, then 10 % again: 2000 (1 + r) - 1000 (1 + r)^0.5 = 1320
    points = [observed(24, "2000"), observed(12, "2200"), observed(0, "1320", before="1200")]

    view = summarize_performance("alice", Period.DAY, points, NOW)

    # Then TWR = 1.1 * (1320 / 1200) - 1 = 21 %, and 1 + r = 1.1^2 balances the flows: MWR 21 %
    assert view.twr_percent == Decimal("21.00")
    assert view.mwr_percent == Decimal("21.00")


@pytest.mark.parametrize("values", [["1000", "900", "1250"], ["500", "500"], ["100", "180", "90", "99"]])
def test_given_no_flows_then_the_twr_is_the_value_change(values: list[str]) -> None:
    # Given a period in which no money came in or went out
    points = [observed(len(values) - index, value) for index, value in enumerate(values)]

    # When summarized, Then the TWR is the value change
    view = summarize_performance("alice", Period.DAY, points, NOW)
    assert view.twr_percent == view.value_change_percent


@pytest.mark.parametrize("values", [["1000", "1250"], ["800", "400", "1000"], ["100", "120", "150", "90"]])
def test_given_a_single_initial_deposit_then_mwr_equals_twr(values: list[str]) -> None:
    # Given the start value as the only money ever put in
    points = [observed(len(values) - index, value) for index, value in enumerate(values)]

    # When summarized, Then both returns are the same
    view = summarize_performance("alice", Period.DAY, points, NOW)
    assert view.mwr_percent == view.twr_percent


def test_given_one_observation_then_neither_return_exists() -> None:
    assert money_weighted_percent([(NOW, None, Decimal(100))]) is None
    assert time_weighted_percent([(None, Decimal(100))]) is None


def test_given_nothing_invested_through_an_interval_then_it_does_not_count() -> None:
    # Given an empty portfolio, then a deposit of 1000 that grows to 1100
    growth = time_weighted_percent([(None, Decimal(0)), (Decimal(1000), Decimal(1000)), (None, Decimal(1100))])

    # Then the return is the 10 % the money made, not an infinite one from nothing
    assert growth == Decimal("10.00")


def test_given_everything_lost_then_both_returns_are_minus_one_hundred() -> None:
    points = [observed(24, "100"), observed(0, "0")]

    view = summarize_performance("alice", Period.DAY, points, NOW)

    assert view.twr_percent == view.mwr_percent == Decimal("-100.00")


def test_given_a_sale_at_market_after_a_rise_then_the_returns_see_the_rise_not_the_sale() -> None:
    # Given 1000 that rose 10 %, then half sold at the market (550 out); the rest flat
    points = [observed(24, "1000"), observed(12, "1100"), observed(0, "550", before="550")]

    view = summarize_performance("alice", Period.DAY, points, NOW)

    # Then the TWR is the 10 % rise, whatever left. The MWR solves 1000 (1 + r) - 550 (1 + r)^0.5 = 550:
    # sqrt(1 + r) = (550 + sqrt(550^2 + 4 * 1000 * 550)) / 2000 = 1.065965, r = 13.628 %: one rate for the
    # whole day, earned by 1000 in its first half and 550 in its second
    assert view.twr_percent == Decimal("10.00")
    assert view.mwr_percent == Decimal("13.63")


def test_given_everything_sold_at_a_loss_then_the_twr_is_that_loss_not_minus_one_hundred() -> None:
    # Given 1000 flat, then worth 900 (-10 %), then all of it sold at the market
    points = [observed(48, "1000"), observed(24, "900"), observed(0, "0", before="0")]

    view = summarize_performance("alice", Period.ALL, points, NOW)

    assert view.twr_percent == Decimal("-10.00")


def test_given_a_deposit_every_hour_for_ninety_days_then_the_mwr_is_solved_quickly_and_matches_a_steady_twr() -> None:
    import time

    # Given 2160 hourly intervals, each starting with a deposit of 10 and growing 0.01 %
    points = [observed(2160, "1000")]
    value = Decimal(1000)
    for hour in range(1, 2161):
        before = value + 10
        value = (before * Decimal("1.0001")).quantize(Decimal("0.01"))
        points.append(observed(2160 - hour, str(value), before=str(before)))
    moments = [(p.timestamp, p.value_before_usd, p.value_usd) for p in points]

    # When the MWR is solved, Then it takes well under a second, and a steady growth makes it the TWR
    started = time.perf_counter()
    rate = money_weighted_percent(moments)
    assert time.perf_counter() - started < 2
    assert rate == time_weighted_percent([(before, value) for _, before, value in moments]) == Decimal("24.11")
