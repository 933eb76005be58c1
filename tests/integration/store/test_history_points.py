"""History points: written in batches, read by range, expiring per resolution, UnprocessedItems retried."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import boto3
import pytest
from portfolio.adapters.portfolio_store import HistoryWrite, UnprocessedWritesError
from portfolio.domain.views import HistoryPoint, Resolution

from tests.integration.store.builders import expiry
from tests.integration.store.unprocessed_proxy import unprocessed_items_proxy

BUCKET_0 = datetime(2024, 5, 1, 0, 0, tzinfo=UTC)


def a_point(at: datetime, value: str = "1000.123456789012345678") -> HistoryPoint:
    return HistoryPoint(
        timestamp=at,
        value_usd=Decimal(value),
        invested_usd=Decimal("900"),
        total_pnl_usd=Decimal(value) - Decimal("900"),
    )


def hourly_writes(user_id: str, hours: int) -> list[HistoryWrite]:
    return [
        HistoryWrite(
            user_id,
            Resolution.HOURLY,
            BUCKET_0 + timedelta(hours=n),
            a_point(BUCKET_0 + timedelta(hours=n), f"{1000 + n}.5"),
            expiry(Resolution.HOURLY, BUCKET_0 + timedelta(hours=n)),
        )
        for n in range(hours)
    ]


def stored_item(dynamodb_client, table_name: str, user_id: str, sort_key: str) -> dict:
    return dynamodb_client.get_item(TableName=table_name, Key={"pk": {"S": f"USER#{user_id}"}, "sk": {"S": sort_key}})[
        "Item"
    ]


def test_given_60_hourly_points_when_written_then_they_go_25_a_call_and_a_range_reads_back_oldest_first(
    store, user_id, call_log, settings
):
    # Given 60 hourly points
    store.put_history_points(hourly_writes(user_id, 60))

    # When hours 10..20 are read
    points = store.query_history(
        user_id, Resolution.HOURLY, BUCKET_0 + timedelta(hours=10), BUCKET_0 + timedelta(hours=20)
    )

    # Then writes went in calls of at most 25, and the range is inclusive, ordered and exact
    batch_sizes = [
        len(params["RequestItems"][settings.table_name]) for name, params in call_log.calls if name == "BatchWriteItem"
    ]
    assert batch_sizes == [25, 25, 10]
    assert [point.timestamp for point in points] == [BUCKET_0 + timedelta(hours=n) for n in range(10, 21)]
    assert points[0].value_usd == Decimal("1010.5")
    assert points[0] == a_point(BUCKET_0 + timedelta(hours=10), "1010.5")


def test_given_points_of_every_resolution_when_written_then_expiry_is_48h_for_5m_90d_for_1h_and_none_for_1d(
    store, user_id, dynamodb_client, settings
):
    writes = [
        HistoryWrite(user_id, resolution, BUCKET_0, a_point(BUCKET_0), expiry(resolution, BUCKET_0))
        for resolution in Resolution
    ]

    store.put_history_points(writes)

    def expires(resolution: Resolution):
        item = stored_item(
            dynamodb_client, settings.table_name, user_id, f"HIST#{resolution.value}#2024-05-01T00:00:00Z"
        )
        return int(item["expiresAt"]["N"]) if "expiresAt" in item else None

    assert expires(Resolution.FIVE_MINUTES) == int((BUCKET_0 + timedelta(hours=48)).timestamp())
    assert expires(Resolution.HOURLY) == int((BUCKET_0 + timedelta(days=90)).timestamp())
    assert expires(Resolution.DAILY) is None


def test_given_a_point_written_twice_when_read_then_the_last_write_wins_and_there_is_one_point(store, user_id):
    first = HistoryWrite(user_id, Resolution.DAILY, BUCKET_0, a_point(BUCKET_0, "1"), None)
    second = first._replace(point=a_point(BUCKET_0, "2"))

    store.put_history_points([first, second])
    store.put_history_points([second])

    assert store.query_history(user_id, Resolution.DAILY, BUCKET_0, BUCKET_0) == [a_point(BUCKET_0, "2")]


def test_given_points_at_several_resolutions_when_one_is_read_then_the_others_stay_out(store, user_id):
    store.put_history_points(
        [(user_id, resolution, BUCKET_0, a_point(BUCKET_0, str(n)), None) for n, resolution in enumerate(Resolution)]
    )

    points = store.query_history(
        user_id, Resolution.FIVE_MINUTES, BUCKET_0 - timedelta(days=1), BUCKET_0 + timedelta(days=1)
    )

    assert points == [a_point(BUCKET_0, "0")]


@pytest.mark.faults
def test_given_dynamodb_leaves_items_unprocessed_once_when_writing_then_they_are_retried_and_all_are_stored(
    make_store, moto_endpoint, user_id
):
    # Given a proxy in front of moto that holds back 7 items of the first BatchWriteItem call
    with unprocessed_items_proxy(moto_endpoint, hold_back=7, times=1) as proxy:
        client = boto3.client("dynamodb", endpoint_url=proxy.url, region_name="us-east-1")
        sleeps: list[float] = []
        store = make_store(client, sleep=sleeps.append)

        # When 20 points are written
        store.put_history_points(hourly_writes(user_id, 20))

    # Then exactly the 7 held-back items were sent again, after one backoff, and all 20 are stored
    assert proxy.batch_sizes == [20, 7]
    assert len(sleeps) == 1
    stored = make_store().query_history(user_id, Resolution.HOURLY, BUCKET_0, BUCKET_0 + timedelta(hours=19))
    assert [point.timestamp for point in stored] == [BUCKET_0 + timedelta(hours=n) for n in range(20)]


@pytest.mark.faults
def test_given_dynamodb_keeps_items_unprocessed_when_writing_then_it_gives_up_after_the_attempt_limit(
    make_store, moto_endpoint, user_id
):
    with unprocessed_items_proxy(moto_endpoint, hold_back=2, times=-1) as proxy:
        client = boto3.client("dynamodb", endpoint_url=proxy.url, region_name="us-east-1")
        store = make_store(client, sleep=lambda _: None, batch_max_attempts=3)

        with pytest.raises(UnprocessedWritesError) as raised:
            store.put_history_points(hourly_writes(user_id, 5))

    assert proxy.batch_sizes == [5, 2, 2]
    assert raised.value.count == 2


def test_given_a_range_whose_end_is_before_its_start_when_read_then_no_points_and_no_query(store, user_id, call_log):
    store.put_history_points(hourly_writes(user_id, 3))
    call_log.clear()

    points = store.query_history(user_id, Resolution.HOURLY, BUCKET_0 + timedelta(hours=2), BUCKET_0)

    # DynamoDB answers a reversed BETWEEN with a ValidationException (moto does not), so none may be sent
    assert points == []
    assert call_log.operations() == []
