"""The refresh tells live connections of the users it values, and of no one else."""

from __future__ import annotations

from decimal import Decimal

import pytest
from portfolio.services.portfolio_refresher import PortfolioRefresher, UserRefreshError

from tests.unit.refresh.test_portfolio_refresher import Portfolios, Prices, Views, holder, message


class Live:
    def __init__(self) -> None:
        self.updated: dict[str, tuple[Decimal, int]] = {}

    def portfolio_updated(self, user_id, summary, *, version):
        self.updated[user_id] = (summary.total_value_usd, version)

    def send(self, user_id, message):
        raise AssertionError("the refresh sends portfolio updates only")

    def drain(self, timeout_s=None):
        raise AssertionError("the handler drains, once per invocation")


def test_given_valued_idle_missing_and_broken_users_then_only_the_valued_are_announced_with_the_version_read():
    live = Live()
    store = Portfolios(alice=holder("alice", 7), idle=holder("idle"), broken=ValueError("damaged item"))
    refresher = PortfolioRefresher(store, Prices(), Views(), live=live)
    batch = refresher.prefetch(["alice", "ghost", "broken"], idle_user_ids=["idle"])

    with pytest.raises(UserRefreshError):
        refresher.refresh_message(message("alice", "ghost", "broken"), batch)
    refresher.refresh_message(message("idle", tier="idle"), batch)

    assert live.updated == {"alice": (Decimal("3000"), 7)}  # 1.5 ETH at the stand-in's 2000
