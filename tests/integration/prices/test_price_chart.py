"""DeFiLlama's `/chart` through the project's client against the local coins API (real HTTP, the real
answer format), and the history backfill storing what it got into the price history (moto's server)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from portfolio.adapters.coins_api import CoinsApi, make_coins_api
from portfolio.adapters.price_history import PriceHistoryStore, history_sort_key
from portfolio.domain.performance import bucket_start
from portfolio.domain.views import Resolution
from portfolio.services.history_backfill import HistoryBackfill
from portfolio.settings import Settings

from local_stack.coins_api import CoinsApiServer, chart_moments
from tests.integration.prices.conftest import unique_evm_tokens

ETH = "coingecko:ethereum"


@pytest.fixture
def coins_api(price_settings: Settings) -> Iterator[CoinsApi]:
    api = make_coins_api(price_settings)
    yield api
    api.close()


@pytest.fixture
def history(dynamodb_client: Any, table_names: dict[str, str]) -> PriceHistoryStore:
    return PriceHistoryStore(dynamodb_client, table_names["PortfolioTable"])


def now_to_the_second() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def stored_item(dynamodb_client: Any, table: str, coin: str, resolution: Resolution, bucket: datetime) -> dict:
    key = {"pk": {"S": f"PRICE#{coin}"}, "sk": {"S": history_sort_key(resolution, bucket)}}
    return dynamodb_client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item", {})


def test_given_the_stand_in_when_a_chart_is_asked_over_http_then_it_answers_in_defillamas_format(
    coins_api_server: CoinsApiServer,
):
    # Given a native coin (no decimals) and an ERC-20 in the book
    [token] = unique_evm_tokens(1)
    coins_api_server.set_price(ETH, "3000", symbol="ETH", decimals=None)
    coins_api_server.set_price(token, "1.25", symbol="TKN", decimals=6)
    start = int(now_to_the_second().timestamp()) - 3 * 3600

    # When asked for 4 hourly points of both
    answer = httpx.get(
        f"{coins_api_server.url}/chart/{ETH},{token}", params={"start": start, "span": 4, "period": "1h"}
    )

    # Then each coin has symbol, confidence, decimals only when known, and its prices at the moments asked
    body = answer.json()
    assert answer.status_code == 200
    assert list(body["coins"][ETH]) == ["symbol", "confidence", "prices"]
    assert list(body["coins"][token]) == ["symbol", "confidence", "decimals", "prices"]
    assert body["coins"][token]["prices"] == [{"timestamp": start + n * 3600, "price": 1.25} for n in range(4)]


@pytest.mark.parametrize(
    ("params", "moments"),
    [
        ({"start": "1000", "span": "3", "period": "1h"}, [1000, 4600, 8200]),
        ({"start": "1000", "end": "8000", "period": "1h"}, [1000, 4600]),
        ({"start": "1000", "end": "100000", "span": "2", "period": "1H"}, [1000, 4600]),
        ({"end": "10000", "span": "3", "period": "2h"}, [2800, 10000]),  # the first would precede 1970
        ({"start": "1000", "span": "3", "period": "1d"}, [1000, 87400]),  # the third is still to come
        ({"start": "1000.9", "span": "1"}, [1000]),
    ],
)
def test_given_start_end_span_and_period_when_the_stand_in_lays_out_a_chart_then_as_defillama_does(
    params: dict[str, str], moments: list[int]
):
    assert chart_moments(params, now=100_000) == moments


@pytest.mark.parametrize("params", [{"period": "soon"}, {"period": "0h"}, {"start": "yesterday"}, {"span": "-1"}])
def test_given_a_chart_parameter_defillama_refuses_when_asked_then_the_stand_in_answers_400(
    coins_api_server: CoinsApiServer, params: dict[str, str]
):
    assert httpx.get(f"{coins_api_server.url}/chart/{ETH}", params=params).status_code == 400


def test_given_several_coins_when_the_client_fetches_a_chart_then_one_call_brings_each_coins_past_exactly(
    coins_api_server: CoinsApiServer, coins_api: CoinsApi
):
    # Given ETH at 1800 until ten days ago, then 2200, and a token the book does not price
    now = now_to_the_second()
    coins_api_server.set_price(ETH, "3000", symbol="ETH", decimals=None)
    coins_api_server.set_price_history(
        ETH, {now - timedelta(days=30): "1800.123456789012345", now - timedelta(days=10): "2200"}
    )
    coins_api_server.price_every_coin = False
    [unknown] = unique_evm_tokens(1)

    # When 20 days are asked for, two hours apart
    result = coins_api.fetch_chart([ETH, unknown], start=now - timedelta(days=20), step=timedelta(hours=2), points=241)

    # Then one request answered both; ETH's prices are exact Decimals, oldest first; the unknown coin has none
    assert result.ok and result.attempts == 1
    [request] = coins_api_server.requests
    assert request.coins == (ETH, unknown) and request.params["period"] == "2h" and request.params["span"] == "241"
    series = result.series[ETH]
    assert len(series) == 241 and series == sorted(series)
    assert series[0] == (now - timedelta(days=20), Decimal("1800.123456789012345"))
    assert series[-1] == (now, Decimal("2200"))
    assert unknown not in result.series


def test_given_the_chart_answers_429_then_500_when_fetched_then_it_is_retried_within_the_policy(
    coins_api_server: CoinsApiServer, coins_api: CoinsApi
):
    coins_api_server.fail_next(1, status=429, retry_after="0")
    coins_api_server.fail_next(1, status=500)

    result = coins_api.fetch_chart(
        [ETH], start=now_to_the_second() - timedelta(hours=2), step=timedelta(hours=1), points=3
    )

    assert result.ok and result.attempts == 3
    assert len(result.series[ETH]) == 3


def test_given_sweeps_wrote_the_last_two_days_when_backfilled_then_they_keep_their_prices_and_the_days_before_are_added(
    coins_api_server: CoinsApiServer, coins_api: CoinsApi, history: PriceHistoryStore, dynamodb_client: Any, table_names
):
    # Given a coin swept hourly for the last 2 days at 4.5, and a chart that has it at 4 before
    [coin] = unique_evm_tokens(1)
    coins_api_server.set_price(coin, "4")
    now = now_to_the_second()
    first_sweep = bucket_start(now - timedelta(days=2), Resolution.FIVE_MINUTES)
    window = first_sweep
    while window <= now:
        history.record({coin: Decimal("4.5")}, window)
        window += timedelta(hours=1)
    since = now - timedelta(days=7)
    stored = history.series([coin], Resolution.HOURLY, since, now)
    backfill = HistoryBackfill(coins_api, history, budget_s=5)

    # When the 7-day series is completed
    completed = backfill.complete(stored, [coin], Resolution.HOURLY, since, now)

    # Then the 5 days before the first sweep come from the chart, and the swept hours are untouched
    from_the_chart = [price for at, price in completed[coin] if at < first_sweep]
    assert len(from_the_chart) >= 5 * 24 and set(from_the_chart) == {Decimal(4)}
    assert completed[coin][len(from_the_chart) :] == stored[coin]
    # And what was added is stored: the next read of the period finds it (the hour `since` falls in
    # starts before the period, so it is not part of the read)
    within_the_period = [point for point in completed[coin] if bucket_start(point[0], Resolution.HOURLY) >= since]
    assert history.series([coin], Resolution.HOURLY, since, now)[coin] == within_the_period
    first_swept_hour = bucket_start(first_sweep, Resolution.HOURLY)
    swept_hour = stored_item(dynamodb_client, table_names["PortfolioTable"], coin, Resolution.HOURLY, first_swept_hour)
    assert (swept_hour["price"]["S"], swept_hour["at"]["S"]) == ("4.5", first_sweep.isoformat())
    # And stored with the hourly expiry, 90 days after each bucket
    backfilled_bucket = bucket_start(since, Resolution.HOURLY) + timedelta(hours=1)
    item = stored_item(dynamodb_client, table_names["PortfolioTable"], coin, Resolution.HOURLY, backfilled_bucket)
    assert int(item["expiresAt"]["N"]) == int((backfilled_bucket + timedelta(days=90)).timestamp())


def test_given_a_sweep_writes_while_the_backfill_runs_when_stored_then_the_sweeps_bucket_is_not_overwritten(
    coins_api_server: CoinsApiServer, coins_api: CoinsApi, history: PriceHistoryStore, dynamodb_client: Any, table_names
):
    # Given a coin with nothing stored when the series was read, and a chart pricing it at 4
    [coin] = unique_evm_tokens(1)
    coins_api_server.set_price(coin, "4")
    now = bucket_start(now_to_the_second() - timedelta(minutes=5), Resolution.FIVE_MINUTES) + timedelta(minutes=2)
    since = now - timedelta(hours=6)
    read_before_the_sweep = history.series([coin], Resolution.FIVE_MINUTES, since, now)
    # And a sweep that records the current window at 4.5 meanwhile, and one in the bucket `since` falls in
    current_window = bucket_start(now, Resolution.FIVE_MINUTES)
    history.record({coin: Decimal("4.5")}, current_window)
    history.record({coin: Decimal("4.25")}, bucket_start(since, Resolution.FIVE_MINUTES))

    # When the backfill stores the chart it got
    HistoryBackfill(coins_api, history, budget_s=5).complete(
        read_before_the_sweep, [coin], Resolution.FIVE_MINUTES, since, now
    )

    # Then the buckets the sweeps wrote keep the sweeps' prices; the others hold the chart's
    table = table_names["PortfolioTable"]
    for bucket, price in ((current_window, "4.5"), (bucket_start(since, Resolution.FIVE_MINUTES), "4.25")):
        assert stored_item(dynamodb_client, table, coin, Resolution.FIVE_MINUTES, bucket)["price"]["S"] == price
    an_hour_ago = bucket_start(now - timedelta(hours=1), Resolution.FIVE_MINUTES)
    assert stored_item(dynamodb_client, table, coin, Resolution.FIVE_MINUTES, an_hour_ago)["price"]["S"] == "4"


def test_given_a_backfilled_coin_when_read_again_then_the_chart_is_not_asked_again(
    coins_api_server: CoinsApiServer, coins_api: CoinsApi, history: PriceHistoryStore
):
    # Given a coin backfilled over 30 days
    [coin] = unique_evm_tokens(1)
    now = now_to_the_second()
    since = now - timedelta(days=30)
    backfill = HistoryBackfill(coins_api, history, budget_s=5)
    backfill.complete({}, [coin], Resolution.HOURLY, since, now)
    asked = coins_api_server.request_count

    # When a later read (another container: nothing remembered) completes what is now stored
    later = now + timedelta(minutes=7)
    stored = history.series([coin], Resolution.HOURLY, since + timedelta(minutes=7), later)
    completed = HistoryBackfill(coins_api, history, budget_s=5).complete(
        stored, [coin], Resolution.HOURLY, since + timedelta(minutes=7), later
    )

    # Then the stored prices reach back far enough: nothing more is asked
    assert coins_api_server.request_count == asked == 1
    assert completed == stored and len(stored[coin]) >= 239
