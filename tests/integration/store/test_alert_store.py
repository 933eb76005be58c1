"""Alert rules in the table: one item per user under a version check, the listing of users with rules
kept in step with it, and the past prices an alert's window starts from."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from portfolio.adapters.dynamodb.alerts import AlertStore
from portfolio.adapters.past_prices import PastPriceStore
from portfolio.adapters.price_history import PriceHistoryStore
from portfolio.domain.alerts import AlertRule, AlertState, AlertStatus, PriceCondition
from portfolio.domain.errors import VersionConflict
from portfolio.domain.views import Resolution
from portfolio.services.ports import StoredAlerts

AT = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)


def rule(alert_id: str, above: str = "4000") -> AlertRule:
    return AlertRule(alert_id=alert_id, created_at=AT, condition=PriceCondition(kind="price", asset="ETH", above=above))


@pytest.fixture
def alerts(store_client, settings) -> AlertStore:
    return AlertStore(store_client, settings.table_name)


@pytest.fixture
def user() -> str:
    return f"user-{uuid.uuid4().hex[:10]}"


def listed(alerts: AlertStore, user: str) -> bool:
    return any(user in page for page in alerts.iter_alerting_users(page_size=2))


def test_given_rules_saved_then_they_read_back_with_their_state_and_the_user_is_listed(alerts, user):
    fired = rule("a1").model_copy(update={"state": AlertState(status=AlertStatus.FIRED, observed=Decimal("4100.5"))})

    saved = alerts.save(StoredAlerts(user), [fired, rule("a2", above="5000")])

    assert saved.version == 1
    assert alerts.load_rules(user) == saved
    assert alerts.load_many([user, "nobody"]) == {user: saved}
    assert listed(alerts, user)


def test_given_a_stale_version_when_saved_then_version_conflict_and_the_stored_rules_stay(alerts, user):
    first = alerts.save(StoredAlerts(user), [rule("a1")])
    alerts.save(first, [rule("a1"), rule("a2")])

    with pytest.raises(VersionConflict):
        alerts.save(first, [])

    assert [r.alert_id for r in alerts.load_rules(user).rules] == ["a1", "a2"]
    assert listed(alerts, user)


def test_given_the_last_rule_removed_then_the_user_leaves_the_listing_in_the_same_write(alerts, user):
    stored = alerts.save(StoredAlerts(user), [rule("a1")])

    emptied = alerts.save(stored, [])

    assert (emptied.rules, emptied.version) == ((), 2)
    assert not listed(alerts, user)


def test_given_a_first_rule_racing_another_then_one_wins_and_the_listing_follows_the_winner(alerts, user):
    alerts.save(StoredAlerts(user), [rule("a1")])

    with pytest.raises(VersionConflict):
        alerts.save(StoredAlerts(user), [rule("a2")])

    assert [r.alert_id for r in alerts.load_rules(user).rules] == ["a1"]


def test_given_past_prices_then_the_finest_bucket_wins_and_a_missing_one_falls_back_to_the_coarser(
    store_client, settings, call_log
):
    history = PriceHistoryStore(store_client, settings.table_name)
    both, hourly_only, none = (f"coingecko:coin-{uuid.uuid4().hex[:8]}" for _ in range(3))
    history.record({both: Decimal("10"), hourly_only: Decimal("20")}, AT)
    # A later sweep of the same hour: its price is the hourly bucket's, the 5-minute one of AT stays
    history.record({both: Decimal("11"), hourly_only: Decimal("21")}, AT + timedelta(minutes=30))
    history.record({both: Decimal("12")}, AT + timedelta(minutes=5))
    past = PastPriceStore(store_client, settings.table_name)
    # hourly_only has no 5-minute bucket at AT + 5 minutes: the hour's price stands in
    at = AT + timedelta(minutes=5)
    call_log.clear()

    found = past.prices_at([both, hourly_only, none], at, (Resolution.FIVE_MINUTES, Resolution.HOURLY))
    again = past.prices_at([both, hourly_only, none], at, (Resolution.FIVE_MINUTES, Resolution.HOURLY))

    assert found == {both: Decimal("12"), hourly_only: Decimal("21")}
    assert again == found
    assert call_log.operations() == ["BatchGetItem"]  # the second read came from memory
