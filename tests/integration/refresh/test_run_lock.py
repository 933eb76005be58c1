"""The run lock in the PortfolioTable: one run per window, released only by its owner after a failure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from portfolio.adapters.run_lock import RunLock

WINDOW = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
NOW = datetime(2025, 1, 15, 10, 0, 3, tzinfo=UTC)


def test_given_a_claimed_window_when_another_run_asks_then_it_is_refused_and_the_next_window_is_free(
    dynamodb_client, table_names
):
    lock = RunLock(dynamodb_client, table_names["PortfolioTable"], clock=lambda: NOW)

    assert lock.acquire(WINDOW, owner="event-a") is True
    assert lock.acquire(WINDOW, owner="event-b") is False
    assert lock.acquire(WINDOW + timedelta(minutes=5), owner="event-c") is True
    assert lock.owner(WINDOW) == "event-a"


def test_given_a_lock_when_written_then_it_expires_through_the_table_ttl_a_day_later(dynamodb_client, table_names):
    RunLock(dynamodb_client, table_names["PortfolioTable"], clock=lambda: NOW).acquire(WINDOW, owner="event-a")

    item = dynamodb_client.get_item(
        TableName=table_names["PortfolioTable"], Key={"pk": {"S": "RUN#2025-01-15T10:00:00Z"}, "sk": {"S": "LOCK"}}
    )["Item"]
    assert int(item["expiresAt"]["N"]) == int((NOW + timedelta(days=1)).timestamp())


def test_given_a_failed_run_when_its_owner_releases_then_a_retry_can_claim_but_others_cannot_release(
    dynamodb_client, table_names
):
    lock = RunLock(dynamodb_client, table_names["PortfolioTable"])
    lock.acquire(WINDOW, owner="event-a")

    lock.release(WINDOW, owner="someone-else")
    assert lock.acquire(WINDOW, owner="event-a-retry") is False

    lock.release(WINDOW, owner="event-a")
    assert lock.acquire(WINDOW, owner="event-a-retry") is True
