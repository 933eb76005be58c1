"""What the API answers: the computed portfolio, its assets, its performance. Built by valuation."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import Field

from portfolio.domain.models import CamelModel
from portfolio.domain.money import DecimalStr
from portfolio.domain.portfolio_record import CostBasisMethod
from portfolio.domain.transactions import Category, Transaction


class ChainAmount(CamelModel):
    chain: str
    token_address: str
    amount: DecimalStr
    value_usd: DecimalStr | None = Field(None, description="null when the token has no price")


class AssetShare(CamelModel):
    """One asset across chains: USDC on Ethereum, Arbitrum and Base is one line."""

    asset: str = Field(description="Canonical asset id from the token registry, or the symbol")
    symbol: str
    value_usd: DecimalStr
    share_percent: DecimalStr
    chains: list[ChainAmount]


class ChainShare(CamelModel):
    chain: str
    value_usd: DecimalStr
    share_percent: DecimalStr


class CategoryShare(CamelModel):
    category: Category
    value_usd: DecimalStr
    share_percent: DecimalStr


class Breakdown(CamelModel):
    by_asset: list[AssetShare]
    by_chain: list[ChainShare]
    by_category: list[CategoryShare]


class PortfolioSummary(CamelModel):
    """GET /portfolios/{userId}. Totals count priced holdings only; unpriced ones are counted apart."""

    user_id: str
    total_value_usd: DecimalStr
    cost_basis_usd: DecimalStr
    realized_pnl_usd: DecimalStr
    unrealized_pnl_usd: DecimalStr
    total_pnl_usd: DecimalStr
    invested_usd: DecimalStr
    roi_percent: DecimalStr | None = Field(description="null while nothing is invested")
    unknown_cost_basis_value_usd: DecimalStr = Field(
        description="Value of holdings received without a price: counted in totalValueUsd, not in P&L"
    )
    untracked_proceeds_usd: DecimalStr = Field(
        Decimal(0), description="Net proceeds of selling holdings received without a price: not counted as P&L"
    )
    withdrawn_cost_usd: DecimalStr = Field(
        Decimal(0), description="Cost basis of what was transferred out: it left the portfolio, it was not lost"
    )
    breakdown: Breakdown
    prices_as_of: datetime | None
    stale_price_count: int
    unpriced_count: int
    holding_count: int
    cost_basis_method: CostBasisMethod
    updated_at: datetime | None


class AssetHolding(CamelModel):
    """One token on one chain, as GET /portfolios/{userId}/assets lists it."""

    chain: str
    token_address: str
    asset: str
    symbol: str
    category: Category
    amount: DecimalStr
    price_usd: DecimalStr | None
    value_usd: DecimalStr | None
    cost_basis_usd: DecimalStr
    unrealized_pnl_usd: DecimalStr | None
    realized_pnl_usd: DecimalStr
    roi_percent: DecimalStr | None
    share_percent: DecimalStr | None
    price_timestamp: datetime | None
    stale: bool
    unknown_cost_amount: DecimalStr = Field(description="Part of the amount received without a price")


class AssetList(CamelModel):
    assets: list[AssetHolding]


class PortfolioView(CamelModel):
    """The whole computed portfolio; the API serves parts of it."""

    summary: PortfolioSummary
    assets: list[AssetHolding]


class Period(StrEnum):
    DAY = "24h"
    WEEK = "7d"
    MONTH = "30d"
    QUARTER = "90d"
    ALL = "all"


class Resolution(StrEnum):
    """History points are kept at three resolutions, each with its own retention."""

    FIVE_MINUTES = "5m"  # 48 hours
    HOURLY = "1h"  # 90 days
    DAILY = "1d"  # kept


class HistoryPoint(CamelModel):
    """The portfolio at one moment, written by the refresh. invested + P&L let a change ignore deposits."""

    timestamp: datetime
    value_usd: DecimalStr
    invested_usd: DecimalStr
    total_pnl_usd: DecimalStr


class ValuePoint(CamelModel):
    timestamp: datetime
    value_usd: DecimalStr


class PerformanceView(CamelModel):
    """GET /portfolios/{userId}/performance."""

    user_id: str
    period: Period
    start: datetime | None
    end: datetime | None
    start_value_usd: DecimalStr | None
    end_value_usd: DecimalStr | None
    value_change_usd: DecimalStr | None
    value_change_percent: DecimalStr | None
    pnl_change_usd: DecimalStr | None = Field(description="Change in total P&L: deposits and withdrawals do not count")
    net_deposits_usd: DecimalStr | None
    series: list[ValuePoint] = Field(description="At most about 300 points, oldest first")


class TransactionPage(CamelModel):
    """GET /portfolios/{userId}/transactions: newest first."""

    transactions: list[Transaction]
    next_cursor: str | None
