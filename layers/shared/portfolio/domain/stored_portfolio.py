"""A user's portfolio as stored: the record and the positions, read as one item."""

from __future__ import annotations

from dataclasses import dataclass

from portfolio.domain.accounting import Ledger
from portfolio.domain.portfolio_record import PortfolioRecord


@dataclass(frozen=True, slots=True)
class StoredPortfolio:
    """`ledger` is None only for a portfolio stored before positions were kept: replay rebuilds it."""

    record: PortfolioRecord
    ledger: Ledger | None

    @property
    def user_id(self) -> str:
        return self.record.user_id

    @property
    def version(self) -> int:
        return self.record.version

    @classmethod
    def new(cls, user_id: str) -> StoredPortfolio:
        record = PortfolioRecord(user_id=user_id)
        return cls(record=record, ledger=Ledger.empty(record.cost_basis_method))
