"""What is stored per user besides the transactions: settings, version and the prices last used."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from portfolio.domain.models import CamelModel
from portfolio.domain.prices import PriceQuote
from portfolio.domain.transactions import Transaction


class CostBasisMethod(StrEnum):
    FIFO = "fifo"
    AVERAGE = "average"


class PortfolioRecord(CamelModel):
    """The user's portfolio item. `version` guards every write that can race (optimistic locking)."""

    user_id: str
    version: int = Field(0, description="0 until the first write")
    cost_basis_method: CostBasisMethod = CostBasisMethod.FIFO
    prices: dict[str, PriceQuote] = Field(default_factory=dict, description="keyed by chain:address")
    prices_as_of: datetime | None = None
    updated_at: datetime | None = None


class PortfolioSnapshot(CamelModel):
    """Everything a portfolio computation needs, as loaded by one Query."""

    record: PortfolioRecord
    transactions: tuple[Transaction, ...] = ()
