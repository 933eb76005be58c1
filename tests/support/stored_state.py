"""Everything stored for one user, read consistently: what tests compare to say "nothing was written"."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from portfolio.domain.stored_portfolio import StoredPortfolio
from portfolio.domain.transactions import Transaction


@dataclass(frozen=True)
class StoredState:
    portfolio: StoredPortfolio
    transactions: tuple[Transaction, ...]

    @property
    def version(self) -> int:
        return self.portfolio.version


def stored_state(store: Any, user_id: str) -> StoredState:
    return StoredState(
        portfolio=store.load_portfolio(user_id, consistent_read=True),
        transactions=store.load_history(user_id, consistent_read=True),
    )
