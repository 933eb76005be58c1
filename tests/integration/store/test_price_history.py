"""Token price history: one item per coin and resolution per sweep, read by range, expiring per
resolution, UnprocessedItems retried."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import boto3
import pytest
from portfolio.adapters.price_history import PriceHistoryStore
from portfolio.domain.views import Resolution

from tests.integration.store.unprocessed_proxy import unprocessed_items_proxy

WINDOW_0 = datetime(2024, 5, 1, 0, 0, tzinfo=UTC)


@pytest.fixture
def coin() -> str:
    return f"ethereum:0x{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}"


@pytest.fixture
def history(store_client, settings) -> PriceHistoryStore:
    return PriceHistoryStore(store_client, settings.table_name)


def hourly(history: PriceHistoryStore, coin: str, hours: int) -> None:
    for n in range(hours):
        history.record({coin: Decimal(f"{1000 + n}.5")}, WINDOW_0 + timedelta(hours=n))


def test_given_a_sweep_of_20_coins_when_recorded_then_60_items_go_25_a_call(history, call_log, settings):
    # Given 20 coins priced by one sweep
    prices = {f"coingecko:coin-{uuid.uuid4().hex[:8]}": Decimal(n + 1) for n in range(20)}

    # When recorded
    written = history.record(prices, WINDOW_0)

    # Then each coin has a 5-minute, an hourly and a daily item, written in calls of at most 25
    batch_sizes = [
        len(params["RequestItems"][settings.table_name]) for name, params in call_log.calls if name == "BatchWriteItem"
    ]
    assert written == 60
    assert batch_sizes == [25, 25, 10]


def test_given_60_hourly_prices_when_a_range_is_read_then_it_is_inclusive_ordered_and_exact(history, coin):
    hourly(history, coin, 60)

    series = history.series([coin], Resolution.HOURLY, WINDOW_0 + timedelta(hours=10), WINDOW_0 + timedelta(hours=20))

    assert [at for at, _ in series[coin]] == [WINDOW_0 + timedelta(hours=n) for n in range(10, 21)]
    assert series[coin][0][1] == Decimal("1010.5")


def test_given_prices_of_every_resolution_then_expiry_is_48h_for_5m_90d_for_1h_and_none_for_1d(
    history, coin, dynamodb_client, settings
):
    history.record({coin: Decimal("1")}, WINDOW_0)

    def expires(resolution: Resolution):
        key = {"pk": {"S": f"PRICE#{coin}"}, "sk": {"S": f"HIST#{resolution.value}#2024-05-01T00:00:00Z"}}
        item = dynamodb_client.get_item(TableName=settings.table_name, Key=key)["Item"]
        return int(item["expiresAt"]["N"]) if "expiresAt" in item else None

    assert expires(Resolution.FIVE_MINUTES) == int((WINDOW_0 + timedelta(hours=48)).timestamp())
    assert expires(Resolution.HOURLY) == int((WINDOW_0 + timedelta(days=90)).timestamp())
    assert expires(Resolution.DAILY) is None


def test_given_two_sweeps_in_one_hour_when_read_hourly_then_the_bucket_holds_the_later_one(history, coin):
    # Given sweeps at 10:00 and 10:05
    history.record({coin: Decimal("1")}, WINDOW_0.replace(hour=10))
    history.record({coin: Decimal("2")}, WINDOW_0.replace(hour=10, minute=5))

    # When the hourly and 5-minute series are read
    day = (WINDOW_0, WINDOW_0 + timedelta(days=1))
    hourly_series = history.series([coin], Resolution.HOURLY, *day)[coin]
    five_minute_series = history.series([coin], Resolution.FIVE_MINUTES, *day)[coin]

    # Then the hour has one price, the last, dated by its sweep; the 5-minute buckets keep both
    assert hourly_series == [(WINDOW_0.replace(hour=10, minute=5), Decimal("2"))]
    assert [price for _, price in five_minute_series] == [Decimal("1"), Decimal("2")]


def test_given_a_coin_never_priced_when_read_then_it_has_no_series(history, coin):
    assert history.series([coin], Resolution.DAILY, WINDOW_0, WINDOW_0 + timedelta(days=3)) == {}


@pytest.mark.faults
def test_given_dynamodb_leaves_items_unprocessed_once_when_recording_then_they_are_retried_and_all_are_stored(
    moto_endpoint, settings, coin
):
    # Given a proxy in front of moto that holds back 7 items of the first BatchWriteItem call
    with unprocessed_items_proxy(moto_endpoint, hold_back=7, times=1) as proxy:
        client = boto3.client("dynamodb", endpoint_url=proxy.url, region_name="us-east-1")
        sleeps: list[float] = []
        history = PriceHistoryStore(client, settings.table_name, sleep=sleeps.append)

        # When one sweep of 6 coins is recorded (18 items)
        coins = [coin, *(f"coingecko:c-{uuid.uuid4().hex[:8]}" for _ in range(5))]
        history.record(dict.fromkeys(coins, Decimal("3")), WINDOW_0)

    # Then exactly the 7 held-back items were sent again, after one backoff, and every coin has its day
    assert proxy.batch_sizes == [18, 7]
    assert len(sleeps) == 1
    reader = PriceHistoryStore(
        boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1"), settings.table_name
    )
    assert set(reader.series(coins, Resolution.DAILY, WINDOW_0, WINDOW_0)) == set(coins)


def test_given_a_range_whose_end_is_before_its_start_when_read_then_nothing_and_no_query(history, coin, call_log):
    call_log.clear()

    assert history.series([coin], Resolution.HOURLY, WINDOW_0 + timedelta(hours=2), WINDOW_0) == {}
    # DynamoDB answers a reversed BETWEEN with a ValidationException (moto does not), so none may be sent
    assert call_log.operations() == []
