"""What the services need from the outside world, declared once; adapters (or test fakes) provide them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from portfolio.adapters.portfolio_cache import CacheKind
from portfolio.domain.prices import PriceQuote
from portfolio.domain.stored_portfolio import StoredPortfolio
from portfolio.domain.tokens import TokenId
from portfolio.domain.transactions import Transaction


class PriceLookup(Protocol):
    def get_prices(
        self, tokens: Iterable[TokenId | str], *, deadline: float | None = None
    ) -> dict[str, PriceQuote]: ...


class WarmableCache(Protocol):
    def replace_views(self, user_id: str, version: int, bodies: Mapping[tuple[CacheKind, str], bytes]) -> Any: ...


class ReadCache(Protocol):
    def get_or_load(
        self, kind: CacheKind, user_id: str, loader: Callable[[], bytes], filter_key: str = ""
    ) -> bytes: ...


class ActivityLog(Protocol):
    """Who read their portfolio lately: the refresh warms only their views."""

    def touch(self, user_id: str) -> None: ...

    def active_since(self, since: datetime) -> Iterable[list[str]]: ...


class HistorySource(Protocol):
    def load_history(self, user_id: str, *, consistent_read: bool = False) -> tuple[Transaction, ...]: ...


class PortfolioSource(HistorySource, Protocol):
    def load_portfolio(self, user_id: str, *, consistent_read: bool = False) -> StoredPortfolio: ...


class PortfolioBatchSource(HistorySource, Protocol):
    def load_portfolios(self, user_ids: Iterable[str]) -> Mapping[str, StoredPortfolio | Exception]:
        """Portfolios by user; absent users are left out, an unreadable one stands as its error."""


class PortfolioWriter(PortfolioSource, Protocol):
    def get_transactions(self, user_id: str, transaction_ids: Iterable[str]) -> dict[str, Transaction]: ...

    def commit(
        self,
        portfolio: StoredPortfolio,
        *,
        expected_version: int,
        put_transactions: Sequence[Transaction] = (),
        delete_transaction_ids: Sequence[str] = (),
        holder_changes: Mapping[str, int] | None = None,
    ) -> StoredPortfolio: ...
