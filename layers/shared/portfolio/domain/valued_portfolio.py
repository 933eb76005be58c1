"""A valued portfolio, figure by figure, rounded for display: what valuation computes and the views
of views.py show.

Named tuples rather than pydantic models: a refresh values thousands of portfolios of dozens of
holdings every cycle, and building and serializing a model per holding cost more than the
valuation itself. The response bodies are written from these directly
(services/portfolio_rendering.py). Each tuple has the field names of its view model, in the same
order, so `model()` builds the model where one is needed, and a test holds the written bodies to
the models' own JSON.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from portfolio.domain.portfolio_record import CostBasisMethod, CostBasisScope
from portfolio.domain.transactions import Category
from portfolio.domain.views import AssetHolding, PortfolioSummary, PortfolioView


class ChainAmountLine(NamedTuple):
    chain: str
    token_address: str
    amount: Decimal
    value_usd: Decimal | None


class AssetShareLine(NamedTuple):
    asset: str
    symbol: str
    value_usd: Decimal
    share_percent: Decimal
    chains: list[ChainAmountLine]


class ChainShareLine(NamedTuple):
    chain: str
    value_usd: Decimal
    share_percent: Decimal


class CategoryShareLine(NamedTuple):
    category: Category
    value_usd: Decimal
    share_percent: Decimal


class BreakdownLines(NamedTuple):
    by_asset: list[AssetShareLine]
    by_chain: list[ChainShareLine]
    by_category: list[CategoryShareLine]


class MissingAcquisitionLine(NamedTuple):
    chain: str
    token_address: str
    symbol: str
    amount: Decimal
    value_usd: Decimal | None


class HoldingLine(NamedTuple):
    """One line of the asset list (AssetHolding)."""

    chain: str
    token_address: str
    asset: str
    symbol: str
    category: Category
    amount: Decimal
    price_usd: Decimal | None
    value_usd: Decimal | None
    cost_basis_usd: Decimal
    unrealized_pnl_usd: Decimal | None
    realized_pnl_usd: Decimal
    roi_percent: Decimal | None
    share_percent: Decimal | None
    price_timestamp: datetime | None
    stale: bool
    unknown_cost_amount: Decimal
    missing_acquisition_amount: Decimal

    def model(self) -> AssetHolding:
        return AssetHolding.model_validate(self._asdict())


class SummaryFigures(NamedTuple):
    """The portfolio summary (PortfolioSummary)."""

    user_id: str
    total_value_usd: Decimal
    cost_basis_usd: Decimal
    realized_pnl_usd: Decimal
    unrealized_pnl_usd: Decimal
    total_pnl_usd: Decimal
    invested_usd: Decimal
    roi_percent: Decimal | None
    unknown_cost_basis_value_usd: Decimal
    income_usd: Decimal
    untracked_proceeds_usd: Decimal
    withdrawn_cost_usd: Decimal
    withdrawn_gain_usd: Decimal
    missing_acquisitions: list[MissingAcquisitionLine]
    missing_acquisition_pnl_usd: Decimal
    breakdown: BreakdownLines
    prices_as_of: datetime | None
    stale_price_count: int
    unpriced_count: int
    holding_count: int
    cost_basis_method: CostBasisMethod
    cost_basis_scope: CostBasisScope
    updated_at: datetime | None

    def model(self) -> PortfolioSummary:
        return PortfolioSummary.model_validate(_plain(self))


class ValuedPortfolio(NamedTuple):
    """The summary and the asset list, largest value first."""

    summary: SummaryFigures
    assets: list[HoldingLine]

    def model(self) -> PortfolioView:
        return PortfolioView(summary=self.summary.model(), assets=[line.model() for line in self.assets])


def _plain(figures: object) -> object:
    """Nested tuples as dicts and lists, for a model to validate."""
    if isinstance(figures, tuple) and hasattr(figures, "_asdict"):
        return {name: _plain(value) for name, value in figures._asdict().items()}
    if isinstance(figures, list):
        return [_plain(value) for value in figures]
    return figures
