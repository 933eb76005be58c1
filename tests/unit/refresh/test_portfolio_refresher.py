"""The updater's per-user rules, with stand-in ports: who is warmed, who is skipped, who waits."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from portfolio.domain.accounting import replay
from portfolio.domain.portfolio_record import PortfolioRecord
from portfolio.domain.prices import PriceQuote, PriceSource
from portfolio.domain.stored_portfolio import StoredPortfolio
from portfolio.services.portfolio_refresher import PortfolioRefresher, UserRefreshError
from portfolio.services.ports import CacheKind
from portfolio.services.refresh_message import RefreshMessage
from pydantic import ValidationError

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
        self.bodies: dict[str, dict] = {}
        self.retired: dict[str, set] = {}

    def replace_views_of_many(self, replacements, kinds=()):
        for user_id, version, bodies in replacements:
            self.warmed[user_id] = version
            self.bodies[user_id] = dict(bodies)
            self.retired[user_id] = set(kinds)
        return [True] * len(replacements)


def holder(user_id: str, version: int = 3) -> StoredPortfolio:
    return StoredPortfolio(
        record=PortfolioRecord(user_id=user_id, version=version), ledger=replay([tx("buy", "1.5", price="1000")])
    )


def message(*user_ids: str, tier: str = "active", asset_readers: list[str] | None = None) -> RefreshMessage:
    return RefreshMessage(window=WINDOW, user_ids=list(user_ids), tier=tier, asset_user_ids=asset_readers)


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


def test_given_one_user_who_reads_the_asset_list_when_refreshed_then_only_theirs_is_warmed_with_the_summaries():
    # Given alice and bob read lately, and only bob read his asset list
    views = Views()
    refresher = PortfolioRefresher(Portfolios(alice=holder("alice"), bob=holder("bob")), Prices(), views)
    batch = refresher.prefetch(["alice", "bob"])

    # When their message is refreshed
    refresher.refresh_message(message("alice", "bob", asset_readers=["bob"]), batch)

    # Then both summaries are warmed, and bob's asset list, valued at the same prices
    assert set(views.bodies["alice"]) == {(CacheKind.PORTFOLIO, "")}
    assert set(views.bodies["bob"]) == {(CacheKind.PORTFOLIO, ""), (CacheKind.ASSETS, "")}
    listed = json.loads(views.bodies["bob"][(CacheKind.ASSETS, "")])["assets"]
    assert [(line["amount"], line["valueUsd"]) for line in listed] == [("1.5", "3000")]
    assert json.loads(views.bodies["alice"][(CacheKind.PORTFOLIO, "")])["totalValueUsd"] == "3000"
    # And alice's asset list of the last prices is retired all the same: valued on her next read of it
    assert CacheKind.ASSETS in views.retired["alice"]


@pytest.mark.parametrize(("tier", "asset_readers"), [("active", ["carol"]), ("idle", ["alice"]), ("alerts", ["alice"])])
def test_given_asset_readers_outside_an_active_message_then_the_message_is_refused(tier, asset_readers):
    with pytest.raises(ValidationError, match="assetUserIds"):
        message("alice", "bob", tier=tier, asset_readers=asset_readers)


def test_given_a_user_named_by_two_messages_of_a_batch_then_its_portfolio_is_kept_until_the_second_is_done():
    # Given alice is named by two messages of one batch (two windows delivered together), bob by one
    views = Views()
    refresher = PortfolioRefresher(Portfolios(alice=holder("alice", 4), bob=holder("bob")), Prices(), views)
    batch = refresher.prefetch(["alice", "bob", "alice"])

    # When the first message is done
    refresher.refresh_message(message("alice", "bob"), batch)

    # Then bob's portfolio is let go after his only message, alice's is kept for her second
    assert set(batch.portfolios) == {"alice"}
    views.warmed.clear()
    refresher.refresh_message(RefreshMessage(window=WINDOW.replace(minute=5), user_ids=["alice"]), batch)
    assert views.warmed == {"alice": 4}
    assert batch.portfolios == {}


def test_given_a_message_run_again_in_its_batch_then_only_the_users_it_failed_are_refreshed_again():
    # Given a message whose outcome could not be recorded after bob ran out of time
    clock = iter([100.0, 100.3, 100.0, 100.0])  # alice, bob (too late), then the second run's bob
    views = Views()
    refresher = PortfolioRefresher(
        Portfolios(alice=holder("alice"), bob=holder("bob")),
        Prices(),
        views,
        user_budget_s=0.5,
        monotonic=lambda: next(clock),
    )
    batch = refresher.prefetch(["alice", "bob"], deadline=100.7)
    with pytest.raises(UserRefreshError):
        refresher.refresh_message(message("alice", "bob"), batch)

    # When it runs again in the same batch
    views.warmed.clear()
    refreshed = refresher.refresh_message(message("alice", "bob"), batch)

    # Then bob is refreshed now, and alice is neither valued again nor taken for a user with nothing stored
    assert refreshed == 2
    assert set(views.warmed) == {"bob"}
    assert (refresher.counts.users_valued, refresher.counts.users_missing) == (2, 0)
