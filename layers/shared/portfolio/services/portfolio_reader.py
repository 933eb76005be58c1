"""Read use cases, cache-aside: a hit answers the cached bytes as stored; a miss of the summary or
the assets is ONE read of the portfolio item (record and positions, one GetItem, whatever the
number of transactions), the quotes of the held tokens (memory, then Redis where the sweep put
them), a pure valuation and a fill of the cache.

Performance values the positions over time at each token's price history: one Query per token,
plus the history only when a transaction falls inside the period. Prices from before a token's
first sweep are taken from the coins API's chart once, within a budget (HistoryBackfill).

Concurrent misses on one key load once (PortfolioCache.get_or_load); when Redis is down every
read is a miss and still answers. Every read marks the user active, so the refresh keeps their
views warm.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from portfolio.domain.asset_query import AssetQuery
from portfolio.domain.performance import (
    history_points,
    resolution_for,
    summarize_performance,
    window_for,
)
from portfolio.domain.transactions import Transaction
from portfolio.domain.valuation import value_portfolio
from portfolio.domain.valued_portfolio import ValuedPortfolio
from portfolio.domain.views import HistoryPoint, Period, TransactionPage
from portfolio.services.portfolio_rendering import assets_body, summary_body
from portfolio.services.ports import (
    ActivityLog,
    CacheKind,
    PriceHistory,
    PriceHistoryBackfill,
    PriceLookup,
    ReadCache,
    TransactionListing,
    TransactionPages,
)
from portfolio.services.positions import positions_of, stored_or_replayed

# A read waits this long at most for a token no tier had (the API, then last-known); usually none.
READ_PRICING_BUDGET_S = 1.5


class PortfolioReader:
    def __init__(
        self,
        store: TransactionPages,
        prices: PriceLookup,
        cache: ReadCache,
        price_history: PriceHistory,
        *,
        activity: ActivityLog | None = None,
        backfill: PriceHistoryBackfill | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._prices = prices
        self._cache = cache
        self._price_history = price_history
        self._activity = activity
        self._backfill = backfill
        self._clock = clock

    def summary(self, user_id: str) -> bytes:
        """GET /portfolios/{userId}: the PortfolioSummary body."""
        self._touch(user_id)
        return self._cache.get_or_load(CacheKind.PORTFOLIO, user_id, lambda: summary_body(self._view(user_id)))

    def assets(self, user_id: str, query: AssetQuery) -> bytes:
        """GET /portfolios/{userId}/assets: the AssetList body, filtered and sorted."""
        self._touch(user_id, asset_list=True)
        return self._cache.get_or_load(
            CacheKind.ASSETS, user_id, lambda: assets_body(self._view(user_id), query), filter_key=query.filter_key()
        )

    def performance(self, user_id: str, period: Period) -> bytes:
        """GET /portfolios/{userId}/performance: the PerformanceView body of one period."""
        self._touch(user_id)

        def load() -> bytes:
            now = self._clock()
            view = summarize_performance(user_id, period, self._history_points(user_id, period, now), now)
            return view.model_dump_json(by_alias=True).encode()

        return self._cache.get_or_load(CacheKind.PERFORMANCE, user_id, load, filter_key=period.value)

    def transactions(self, user_id: str, listing: TransactionListing) -> bytes:
        """GET /portfolios/{userId}/transactions: one TransactionPage body, newest first."""
        self._touch(user_id)

        def load() -> bytes:
            transactions, next_cursor = self._store.list_transactions(user_id, listing)
            page = TransactionPage(transactions=transactions, next_cursor=next_cursor)
            return page.model_dump_json(by_alias=True).encode()

        return self._cache.get_or_load(CacheKind.TRANSACTIONS, user_id, load, filter_key=listing.filter_key())

    def _view(self, user_id: str) -> ValuedPortfolio:
        # Consistent: the body fills the cache, and a lagging replica could put a write's
        # predecessor back in it right after the writer warmed it.
        portfolio = self._store.load_portfolio(user_id, consistent_read=True, lots=False)
        ledger = positions_of(portfolio, self._store, consistent_read=True)
        quotes = self._prices.get_prices(ledger.valued_tokens(), deadline=time.monotonic() + READ_PRICING_BUDGET_S)
        return value_portfolio(
            user_id,
            ledger,
            quotes,
            updated_at=portfolio.record.updated_at,
            contract_symbols=portfolio.contract_symbols,
        )

    def _history_points(self, user_id: str, period: Period, now: datetime) -> list[HistoryPoint]:
        start, end = window_for(period, now)
        portfolio = self._store.load_portfolio(user_id, lots=False)
        # Read once, and only when needed: to rebuild positions not stored, or for a period with changes.
        history = None if portfolio.ledger is not None else self._store.load_history(user_id)
        ledger = stored_or_replayed(portfolio, history or ())
        if ledger.last_applied is None:
            return []
        later: tuple[Transaction, ...] = ()
        if ledger.last_applied[0] <= start:
            # Nothing changed within the period: today's positions held throughout.
            before, tokens = ledger, ledger.held_tokens()
        else:
            before = ledger.restarted()
            later = history if history is not None else self._store.load_history(user_id)
            tokens = [position.token for position in ledger.positions.values()]
        coin_of = {token.key: token.price_coin_id for token in tokens}
        series = self._price_history.series(coin_of.values(), resolution_for(period), start, end)
        if self._backfill is not None and ledger.first_applied_at is not None:
            since = max(start, ledger.first_applied_at)
            series = self._backfill.complete(series, coin_of.values(), resolution_for(period), since, end)
        by_token = {key: series[coin] for key, coin in coin_of.items() if coin in series}
        return history_points(before, later, by_token)

    def _touch(self, user_id: str, *, asset_list: bool = False) -> None:
        if self._activity is not None:
            self._activity.touch(user_id, asset_list=asset_list)
