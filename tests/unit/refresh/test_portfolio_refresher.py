"""The updater's per-user rules, with stand-in ports: who is warmed, who is skipped, who waits."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from portfolio.domain.accounting import replay
from portfolio.domain.portfolio_record import PortfolioRecord
from portfolio.domain.prices import PriceQuote, PriceSource
from portfolio.domain.stored_portfolio import StoredPortfolio
from portfolio.services.portfolio_refresher import PortfolioRefresher, UserRefreshError
from portfolio.services.refresh_message import RefreshMessage

from tests.unit.domain.builders import EVM_NATIVE, tx

WINDOW = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
ETH = f"ethereum:{EVM_NATIVE}"


class Portfolios:
    def __init__(self, **users: StoredPortfolio | Exception) -> None:
        self.users = users
        self.batch_loads: list[list[str]] = []

    def load_portfolios(self, user_ids):
        self.batch_loads.append(list(user_ids))
        return {user: self.users[user] for user in user_ids if user in self.users}

    def load_history(self, user_id, *, consistent_read=False):
        raise AssertionError("the refresh never reads a history of a user with stored positions")


class Prices:
    def get_prices(self, tokens, *, deadline=None):
        return {
            str(token): PriceQuote(token=str(token), price=Decimal("2000"), timestamp=WINDOW, source=PriceSource.REDIS)
            for token in tokens
        }


class Views:
    def __init__(self) -> None:
        self.warmed: dict[str, int] = {}

    def replace_views(self, user_id, version, bodies, kinds=()):
        self.warmed[user_id] = version
        return True


def holder(user_id: str, version: int = 3) -> StoredPortfolio:
    return StoredPortfolio(
        record=PortfolioRecord(user_id=user_id, version=version), ledger=replay([tx("buy", "1.5", price="1000")])
    )


def message(*user_ids: str, tier: str = "active") -> RefreshMessage:
    return RefreshMessage(window=WINDOW, user_ids=list(user_ids), tier=tier)


def test_given_active_and_idle_users_when_refreshed_then_only_the_active_are_warmed_at_the_version_read():
    store, views = Portfolios(alice=holder("alice", 7), bob=holder("bob")), Views()
    refresher = PortfolioRefresher(store, Prices(), views)
    batch = refresher.prefetch(["alice", "bob"])

    refresher.refresh_message(message("alice"), batch)
    refresher.refresh_message(message("bob", tier="idle"), batch)

    assert views.warmed == {"alice": 7}
    assert store.batch_loads == [["alice", "bob"]]
    assert (refresher.counts.users_valued, refresher.counts.users_idle) == (1, 1)


def test_given_a_user_with_nothing_stored_when_refreshed_then_it_is_skipped_without_failing_the_message():
    refresher = PortfolioRefresher(Portfolios(alice=holder("alice")), Prices(), Views())
    batch = refresher.prefetch(["alice", "ghost"])

    assert refresher.refresh_message(message("alice", "ghost"), batch) == 1
    assert refresher.counts.users_missing == 1


def test_given_an_unreadable_item_when_refreshed_then_only_its_user_fails():
    views = Views()
    refresher = PortfolioRefresher(
        Portfolios(alice=holder("alice"), broken=ValueError("damaged item")), Prices(), views
    )
    batch = refresher.prefetch(["alice", "broken"])

    with pytest.raises(UserRefreshError) as failed:
        refresher.refresh_message(message("broken", "alice"), batch)

    assert list(failed.value.failures) == ["broken"]
    assert views.warmed == {"alice": 3}


def test_given_too_little_time_left_when_refreshed_then_users_are_deferred_not_started():
    clock = iter([100.0, 100.3])  # when alice starts, when bob would
    refresher = PortfolioRefresher(
        Portfolios(alice=holder("alice"), bob=holder("bob")),
        Prices(),
        Views(),
        user_budget_s=0.5,
        monotonic=lambda: next(clock),
    )
    batch = refresher.prefetch(["alice", "bob"], deadline=100.7)

    with pytest.raises(UserRefreshError) as failed:
        refresher.refresh_message(message("alice", "bob"), batch)

    # alice started with 0.7 s left; bob would have had 0.4 s, under the 0.5 s budget
    assert list(failed.value.failures) == ["bob"]
    assert refresher.counts.users_deferred == 1
