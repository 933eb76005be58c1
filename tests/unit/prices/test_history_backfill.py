"""HistoryBackfill on its own: which coins it asks the chart for and how finely, what it keeps, and
how it behaves when the chart fails or has nothing (a chart source and a writer standing in)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from portfolio.domain.performance import MAX_SERIES_POINTS, PriceSeries, bucket_start
from portfolio.domain.views import Resolution
from portfolio.services.history_backfill import SWEEP_LAG, HistoryBackfill, chart_grid
from portfolio.services.ports import ChartResult, PriceTierUnavailableError

NOW = datetime(2025, 3, 1, 12, 7, 30, tzinfo=UTC)
ETH, BTC, NEW = "coingecko:ethereum", "coingecko:bitcoin", "ethereum:0x" + "1" * 40


@dataclass
class ChartCall:
    coin_ids: tuple[str, ...]
    start: datetime
    step: timedelta
    points: int


@dataclass
class Charts:
    """A chart source with a price per coin for every moment asked, until told to fail."""

    prices: dict[str, Decimal] = field(default_factory=dict)
    calls: list[ChartCall] = field(default_factory=list)
    error: str | None = None
    confidence: Decimal = Decimal("0.99")

    def fetch_chart(
        self, coin_ids: Sequence[str], *, start: datetime, step: timedelta, points: int, deadline: float | None = None
    ) -> ChartResult:
        self.calls.append(ChartCall(tuple(coin_ids), start, step, points))
        if self.error is not None:
            return ChartResult(tuple(coin_ids), attempts=1, error=self.error)
        moments = [start + index * step for index in range(points) if start + index * step <= NOW]
        return ChartResult(
            tuple(coin_ids),
            series={coin: [(at, self.prices[coin]) for at in moments] for coin in coin_ids if coin in self.prices},
            confidence={coin: self.confidence for coin in coin_ids if coin in self.prices},
            attempts=1,
        )


@dataclass
class Writer:
    stored: list[tuple[dict[str, list[tuple[datetime, Decimal]]], Resolution, datetime, datetime]] = field(
        default_factory=list
    )
    failing: bool = False

    def record_backfill(
        self, series: Mapping[str, PriceSeries], resolution: Resolution, *, empty_from: datetime, empty_until: datetime
    ) -> int:
        if self.failing:
            raise PriceTierUnavailableError("batch_write_item failed: ClientError")
        self.stored.append(
            ({coin: list(points) for coin, points in series.items()}, resolution, empty_from, empty_until)
        )
        return sum(len(points) for points in series.values())


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def charts() -> Charts:
    return Charts(prices={ETH: Decimal("3000.5"), BTC: Decimal("90000"), NEW: Decimal("0.25")})


@pytest.fixture
def writer() -> Writer:
    return Writer()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def backfill(charts: Charts, writer: Writer, clock: Clock) -> HistoryBackfill:
    return HistoryBackfill(charts, writer, budget_s=2.0, no_data_ttl_s=600, monotonic=clock)


def swept_hourly(since: datetime, until: datetime, price: str) -> list[tuple[datetime, Decimal]]:
    """What sweeps leave in the hourly buckets between two moments: the last window of each hour."""
    first = bucket_start(since, Resolution.HOURLY) + timedelta(minutes=55)
    count = int((until - first) / timedelta(hours=1)) + 1
    return [(first + timedelta(hours=n), Decimal(price)) for n in range(count)]


def test_given_a_coin_swept_since_the_series_start_when_completed_then_the_chart_is_not_asked(
    backfill: HistoryBackfill, charts: Charts
):
    # Given ETH swept hourly from the start of the 7-day window
    since = NOW - timedelta(days=7)
    stored = {ETH: swept_hourly(since, NOW, "3100")}

    # When
    completed = backfill.complete(stored, [ETH], Resolution.HOURLY, since, NOW)

    # Then
    assert charts.calls == []
    assert completed == stored


def test_given_a_first_buy_20_days_ago_and_no_price_stored_when_completed_then_the_chart_fills_it_from_the_buy(
    backfill: HistoryBackfill, charts: Charts, writer: Writer
):
    # Given a portfolio whose first transaction is 20 days old, read before any sweep priced its coins
    first_buy = NOW - timedelta(days=20, minutes=17)

    # When the 30-day (hourly) series is completed
    completed = backfill.complete({}, [ETH, BTC], Resolution.HOURLY, first_buy, NOW)

    # Then one call asks for both coins from the buy, two hours apart (480 hours fit in 241 points)
    assert charts.calls == [ChartCall((ETH, BTC), first_buy, timedelta(hours=2), 241)]
    assert completed[ETH][0] == (first_buy, Decimal("3000.5"))
    assert len(completed[ETH]) == 241 and len(completed[BTC]) == 241
    # And what came back is stored: the buckets read empty as they are, the last 15 minutes only where empty
    [(stored, resolution, empty_from, empty_until)] = writer.stored
    assert stored == completed and resolution is Resolution.HOURLY
    assert (empty_from, empty_until) == (first_buy, bucket_start(NOW - SWEEP_LAG, Resolution.HOURLY))


@pytest.mark.parametrize(
    ("resolution", "span", "step"),
    [
        (Resolution.FIVE_MINUTES, timedelta(hours=24), timedelta(minutes=5)),
        (Resolution.HOURLY, timedelta(days=7), timedelta(hours=1)),
        (Resolution.HOURLY, timedelta(days=30), timedelta(hours=3)),
        (Resolution.HOURLY, timedelta(days=90), timedelta(hours=8)),
        (Resolution.DAILY, timedelta(days=299), timedelta(days=1)),
        (Resolution.DAILY, timedelta(days=300), timedelta(days=2)),
        (Resolution.DAILY, timedelta(days=3 * 365), timedelta(days=4)),
    ],
)
def test_given_a_gap_of_any_length_when_completed_then_at_most_300_points_a_bucket_or_a_few_apart(
    backfill: HistoryBackfill, charts: Charts, resolution: Resolution, span: timedelta, step: timedelta
):
    backfill.complete({}, [ETH], resolution, NOW - span, NOW)

    [call] = charts.calls
    assert call.step == step
    assert call.points <= MAX_SERIES_POINTS
    # The points reach the end of the gap: one more step would pass it
    assert call.start + (call.points - 1) * call.step <= NOW < call.start + call.points * call.step


def test_given_a_coin_swept_lately_when_completed_then_only_the_buckets_before_the_first_sweep_are_added(
    backfill: HistoryBackfill, charts: Charts, writer: Writer
):
    # Given ETH swept hourly for the last 2 days only, its first sweep at 10:55 two days ago
    since = NOW - timedelta(days=7)
    swept = swept_hourly(NOW - timedelta(days=2), NOW, "3100")
    stored = {ETH: swept}

    # When the 7-day series is completed
    completed = backfill.complete(stored, [ETH], Resolution.HOURLY, since, NOW)

    # Then the chart is asked for the 5 days before the first sweep, hourly
    [call] = charts.calls
    assert (call.start, call.step) == (since, timedelta(hours=1))
    # And the series gains the chart's prices in the hours before the first swept one, not in it
    added = completed[ETH][: len(completed[ETH]) - len(swept)]
    assert completed[ETH][len(added) :] == swept
    first_swept_hour = bucket_start(swept[0][0], Resolution.HOURLY)
    assert added[-1][0] < first_swept_hour
    assert {price for _, price in added} == {Decimal("3000.5")}
    assert writer.stored[0][0] == {ETH: added}


def test_given_chart_points_in_one_bucket_when_completed_then_the_bucket_keeps_its_latest_as_a_sweep_would(
    writer: Writer, clock: Clock
):
    # Given a chart observed every 20 minutes, read at the hourly resolution
    class Dense(Charts):
        def fetch_chart(self, coin_ids, *, start, step, points, deadline=None):
            moments = [start + timedelta(minutes=20 * n) for n in range(3 * points)]
            series = {ETH: [(at, Decimal(n)) for n, at in enumerate(moments) if at <= NOW]}
            return ChartResult(tuple(coin_ids), series=series, attempts=1)

    backfill = HistoryBackfill(Dense(), writer, budget_s=2.0, monotonic=clock)
    since = NOW - timedelta(hours=5)

    # When
    completed = backfill.complete({}, [ETH], Resolution.HOURLY, since, NOW)

    # Then one price per hour, each the hour's last
    buckets = [bucket_start(at, Resolution.HOURLY) for at, _ in completed[ETH]]
    assert buckets == sorted(set(buckets))
    assert completed[ETH][0] == (since + timedelta(minutes=40), Decimal(2))


@pytest.mark.parametrize("error", ["HTTP 429 (gave up after 1 attempt(s))", "HTTP 500", "transport error ReadTimeout"])
def test_given_the_chart_fails_when_completed_then_the_stored_series_is_the_answer_and_nothing_is_stored(
    backfill: HistoryBackfill, charts: Charts, writer: Writer, clock: Clock, error: str
):
    # Given a chart that fails, and ETH swept for the last hours only
    charts.error = error
    stored = {ETH: swept_hourly(NOW - timedelta(hours=5), NOW, "3100")}
    since = NOW - timedelta(days=7)

    # When completed
    completed = backfill.complete(stored, [ETH, BTC], Resolution.HOURLY, since, NOW)

    # Then the view gets what is stored, nothing was written
    assert completed == stored
    assert writer.stored == []
    # And the next reads of this minute ask nothing; a minute later the chart is asked again
    asked = len(charts.calls)
    clock.now += 59
    backfill.complete(stored, [ETH, BTC], Resolution.HOURLY, since, NOW)
    assert len(charts.calls) == asked
    charts.error = None
    clock.now += 2
    assert len(backfill.complete(stored, [ETH, BTC], Resolution.HOURLY, since, NOW)[BTC]) == 169


def test_given_a_coin_the_chart_has_nothing_for_when_read_again_then_it_is_not_asked_until_the_ttl_passes(
    backfill: HistoryBackfill, charts: Charts, clock: Clock
):
    # Given a coin the chart leaves out
    unknown = "ethereum:0x" + "9" * 40
    since = NOW - timedelta(days=1)
    backfill.complete({}, [unknown, ETH], Resolution.FIVE_MINUTES, since, NOW)

    # When read again and again within the TTL
    for _ in range(5):
        clock.now += 60
        backfill.complete({}, [unknown], Resolution.FIVE_MINUTES, since, NOW)

    # Then it was asked once; at another resolution, or once the TTL passed, it is asked again
    assert [call.coin_ids for call in charts.calls] == [(unknown, ETH)]
    backfill.complete({}, [unknown], Resolution.HOURLY, since, NOW)
    clock.now += 600
    backfill.complete({}, [unknown], Resolution.FIVE_MINUTES, since, NOW)
    assert [call.coin_ids for call in charts.calls] == [(unknown, ETH), (unknown,), (unknown,)]


def test_given_a_chart_that_starts_after_the_gap_when_read_again_then_the_gap_is_not_asked_for_again(
    charts: Charts, writer: Writer, clock: Clock
):
    # Given a token the chart knows only from 3 days ago (it was launched then)
    launched = NOW - timedelta(days=3)

    class Young(Charts):
        def fetch_chart(self, coin_ids, *, start, step, points, deadline=None):
            result = super().fetch_chart(coin_ids, start=start, step=step, points=points, deadline=deadline)
            return ChartResult(
                result.requested,
                series={c: [p for p in s if p[0] >= launched] for c, s in result.series.items()},
                attempts=1,
            )

    young = Young(prices={NEW: Decimal("0.25")})
    backfill = HistoryBackfill(young, writer, budget_s=2.0, monotonic=clock)
    since = NOW - timedelta(days=7)

    # When read twice
    first = backfill.complete({}, [NEW], Resolution.HOURLY, since, NOW)
    stored = {NEW: first[NEW]}
    backfill.complete(stored, [NEW], Resolution.HOURLY, since, NOW)

    # Then the 3 days it has were kept, and the 4 before them were not asked for again
    assert first[NEW][0][0] >= launched
    assert len(young.calls) == 1


def test_given_a_chart_below_the_minimum_confidence_when_completed_then_it_is_not_used(
    backfill: HistoryBackfill, charts: Charts, writer: Writer
):
    charts.confidence = Decimal("0.2")

    completed = backfill.complete({}, [ETH], Resolution.HOURLY, NOW - timedelta(days=2), NOW)

    assert completed == {}
    assert writer.stored == []


def test_given_more_coins_than_a_call_holds_when_completed_then_they_are_asked_in_chunks(writer: Writer, clock: Clock):
    coins = [f"ethereum:0x{n:040x}" for n in range(7)]
    charts = Charts(prices=dict.fromkeys(coins, Decimal(1)))
    backfill = HistoryBackfill(charts, writer, budget_s=2.0, batch_size=3, monotonic=clock)

    completed = backfill.complete({}, coins, Resolution.DAILY, NOW - timedelta(days=10), NOW)

    assert sorted(len(call.coin_ids) for call in charts.calls) == [1, 3, 3]
    assert set(completed) == set(coins)


def test_given_the_store_refuses_when_completed_then_the_view_still_gets_the_chart(charts: Charts, clock: Clock):
    backfill = HistoryBackfill(charts, Writer(failing=True), budget_s=2.0, monotonic=clock)

    completed = backfill.complete({}, [ETH], Resolution.DAILY, NOW - timedelta(days=10), NOW)

    assert len(completed[ETH]) == 11


def test_given_no_budget_when_completed_then_the_chart_is_never_asked(charts: Charts, writer: Writer, clock: Clock):
    backfill = HistoryBackfill(charts, writer, budget_s=0, monotonic=clock)

    assert backfill.complete({}, [ETH], Resolution.DAILY, NOW - timedelta(days=10), NOW) == {}
    assert charts.calls == []


def test_given_the_chart_grid_when_the_span_is_an_exact_number_of_buckets_then_it_never_passes_300_points():
    for buckets in (1, 299, 300, 301, 599, 600, 601, 2160):
        step, points = chart_grid(Resolution.HOURLY, NOW - timedelta(hours=buckets), NOW)
        assert points <= MAX_SERIES_POINTS, buckets
        assert step % timedelta(hours=1) == timedelta(0)
