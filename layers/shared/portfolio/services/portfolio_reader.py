"""Read use cases, cache-aside: a hit answers the cached bytes as stored; a miss is ONE store.load
(one DynamoDB Query), a pure computation and a fill of the cache.

Concurrent misses on one key load once (PortfolioCache.get_or_load); when Redis is down every
read is a miss and still answers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from portfolio.adapters.portfolio_cache import CacheKind
from portfolio.domain.asset_query import AssetQuery
from portfolio.domain.performance import resolution_for, summarize_performance, window_for
from portfolio.domain.portfolio_record import PortfolioSnapshot
from portfolio.domain.transactions import Transaction, TransactionType
from portfolio.domain.valuation import compute_portfolio
from portfolio.domain.views import HistoryPoint, Period, PortfolioView, Resolution, TransactionPage
from portfolio.services.portfolio_rendering import assets_body, summary_body

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class ReadStore(Protocol):
    def load(self, user_id: str, *, consistent_read: bool = False) -> PortfolioSnapshot: ...

    def list_transactions(
        self,
        user_id: str,
        *,
        limit: int,
        cursor: str | None = None,
        chain: str | None = None,
        type: str | None = None,
        token: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> tuple[list[Transaction], str | None]: ...

    def query_history(
        self, user_id: str, resolution: Resolution, start: datetime, end: datetime
    ) -> list[HistoryPoint]: ...


class ReadCache(Protocol):
    def get_or_load(
        self, kind: CacheKind, user_id: str, loader: Callable[[], bytes], filter_key: str = ""
    ) -> bytes: ...


@dataclass(frozen=True, slots=True)
class TransactionListing:
    """The filters and page of GET /transactions, already validated and normalized."""

    limit: int = DEFAULT_PAGE_SIZE
    cursor: str | None = None
    chain: str | None = None
    type: TransactionType | None = None
    token: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    def filter_key(self) -> str:
        """"" for the first page with no filters; otherwise a short digest of the canonical listing."""
        parts: dict[str, Any] = {
            "limit": self.limit if self.limit != DEFAULT_PAGE_SIZE else None,
            "cursor": self.cursor,
            "chain": self.chain,
            "type": self.type.value if self.type else None,
            "token": self.token,
            "from": self.start.astimezone(UTC).isoformat() if self.start else None,
            "to": self.end.astimezone(UTC).isoformat() if self.end else None,
        }
        canonical = "&".join(f"{name}={value}" for name, value in parts.items() if value is not None)
        return hashlib.sha256(canonical.encode()).hexdigest()[:32] if canonical else ""


class PortfolioReader:
    def __init__(
        self, store: ReadStore, cache: ReadCache, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._store = store
        self._cache = cache
        self._clock = clock

    def summary(self, user_id: str) -> bytes:
        """GET /portfolios/{userId}: the PortfolioSummary body."""
        return self._cache.get_or_load(CacheKind.PORTFOLIO, user_id, lambda: summary_body(self._view(user_id)))

    def assets(self, user_id: str, query: AssetQuery) -> bytes:
        """GET /portfolios/{userId}/assets: the AssetList body, filtered and sorted."""
        return self._cache.get_or_load(
            CacheKind.ASSETS, user_id, lambda: assets_body(self._view(user_id), query), filter_key=query.filter_key()
        )

    def performance(self, user_id: str, period: Period) -> bytes:
        """GET /portfolios/{userId}/performance: the PerformanceView body of one period."""

        def load() -> bytes:
            now = self._clock()
            start, end = window_for(period, now)
            points = self._store.query_history(user_id, resolution_for(period), start, end)
            view = summarize_performance(user_id, period, points, now)
            return view.model_dump_json(by_alias=True).encode()

        return self._cache.get_or_load(CacheKind.PERFORMANCE, user_id, load, filter_key=period.value)

    def transactions(self, user_id: str, listing: TransactionListing) -> bytes:
        """GET /portfolios/{userId}/transactions: one TransactionPage body, newest first."""

        def load() -> bytes:
            transactions, next_cursor = self._store.list_transactions(
                user_id,
                limit=listing.limit,
                cursor=listing.cursor,
                chain=listing.chain,
                type=listing.type.value if listing.type else None,
                token=listing.token,
                start=listing.start,
                end=listing.end,
            )
            page = TransactionPage(transactions=transactions, next_cursor=next_cursor)
            return page.model_dump_json(by_alias=True).encode()

        return self._cache.get_or_load(CacheKind.TRANSACTIONS, user_id, load, filter_key=listing.filter_key())

    def _view(self, user_id: str) -> PortfolioView:
        # Consistent: the body fills the cache, and a lagging replica could put a write's
        # predecessor back in it right after the writer warmed it.
        return compute_portfolio(self._store.load(user_id, consistent_read=True), now=self._clock())
