"""What the API answers: the computed portfolio, its assets, its performance. Built by valuation."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import Field

from portfolio.domain.money import DecimalValue
from portfolio.domain.portfolio_record import CostBasisMethod, CostBasisScope
from portfolio.domain.transactions import Category, Transaction
from portfolio.wire_format import CamelModel


class ChainAmount(CamelModel):
    chain: str
    token_address: str
    amount: DecimalValue
    value_usd: DecimalValue | None = Field(None, description="null when the token has no price")


class AssetShare(CamelModel):
    """One asset across chains: USDC on Ethereum, Arbitrum and Base is one line."""

    asset: str = Field(description="Canonical asset id from the token registry, or the symbol")
    symbol: str
    value_usd: DecimalValue
    share_percent: DecimalValue
    chains: list[ChainAmount]


class ChainShare(CamelModel):
    chain: str
    value_usd: DecimalValue
    share_percent: DecimalValue


class CategoryShare(CamelModel):
    category: Category
    value_usd: DecimalValue
    share_percent: DecimalValue


class Breakdown(CamelModel):
    by_asset: list[AssetShare]
    by_chain: list[ChainShare]
    by_category: list[CategoryShare]


class MissingAcquisition(CamelModel):
    """Coins removed without being held (the setting missingAcquisitions "accept"): acquired at cost zero."""

    chain: str
    token_address: str
    symbol: str
    amount: DecimalValue
    value_usd: DecimalValue | None = Field(description="At the current price; null when the token has none")


class PortfolioSummary(CamelModel):
    """GET /portfolios/{userId}. Totals count priced holdings only; unpriced ones are counted apart."""

    user_id: str
    total_value_usd: DecimalValue
    cost_basis_usd: DecimalValue
    realized_pnl_usd: DecimalValue
    unrealized_pnl_usd: DecimalValue
    total_pnl_usd: DecimalValue
    invested_usd: DecimalValue = Field(
        description=(
            "What was put in (buys and priced transfers in, fees included), less the cost of what was "
            "transferred out: a withdrawal to an own wallet leaves the ROI as it was"
        )
    )
    roi_percent: DecimalValue | None = Field(description="totalPnlUsd / investedUsd; null while nothing is invested")
    unknown_cost_basis_value_usd: DecimalValue = Field(
        description="Value of holdings received without a price: counted in totalValueUsd, not in P&L"
    )
    income_usd: DecimalValue = Field(
        Decimal(0),
        description="Value of what came in as income (staking, airdrops, interest) when it came; in realizedPnlUsd",
    )
    untracked_proceeds_usd: DecimalValue = Field(
        Decimal(0), description="Net proceeds of selling holdings received without a price: not counted as P&L"
    )
    withdrawn_cost_usd: DecimalValue = Field(
        Decimal(0), description="Cost basis of what was transferred out: it left the portfolio, it was not lost"
    )
    withdrawn_gain_usd: DecimalValue = Field(
        Decimal(0),
        description=(
            "What the coins transferred out had gained while held (their value when they left less their "
            "cost): it left with them, so it is no longer in totalPnlUsd, and it was not lost"
        ),
    )
    missing_acquisitions: list[MissingAcquisition] = Field(
        default_factory=list, description="Per token, what was sold or sent without being held, at cost zero"
    )
    missing_acquisition_pnl_usd: DecimalValue = Field(
        Decimal(0), description="The part of realizedPnlUsd that sales of missing acquisitions made (all gain)"
    )
    breakdown: Breakdown
    prices_as_of: datetime | None
    stale_price_count: int
    unpriced_count: int
    holding_count: int
    cost_basis_method: CostBasisMethod
    cost_basis_scope: CostBasisScope = CostBasisScope.CHAIN
    updated_at: datetime | None = Field(description="When the transactions or settings last changed")


class AssetHolding(CamelModel):
    """One token on one chain, as GET /portfolios/{userId}/assets lists it."""

    chain: str
    token_address: str
    asset: str
    symbol: str
    category: Category
    amount: DecimalValue
    price_usd: DecimalValue | None
    value_usd: DecimalValue | None
    cost_basis_usd: DecimalValue
    unrealized_pnl_usd: DecimalValue | None
    realized_pnl_usd: DecimalValue
    roi_percent: DecimalValue | None
    share_percent: DecimalValue | None
    price_timestamp: datetime | None
    stale: bool
    unknown_cost_amount: DecimalValue = Field(description="Part of the amount received without a price")
    missing_acquisition_amount: DecimalValue = Field(
        Decimal(0), description="Removed from this holding without being held: acquired at cost zero"
    )


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
    """Token prices are recorded at three resolutions, each with its own retention."""

    FIVE_MINUTES = "5m"  # 48 hours
    HOURLY = "1h"  # 90 days
    DAILY = "1d"  # kept


class HistoryPoint(CamelModel):
    """The portfolio at one moment, computed when read from the positions then and the prices recorded
    then. invested + P&L let a change ignore deposits; the value before (these holdings at the
    previous point's prices) lets a return ignore them."""

    timestamp: datetime
    value_usd: DecimalValue
    invested_usd: DecimalValue  # net of the cost of what was transferred out
    total_pnl_usd: DecimalValue
    withdrawn_gain_usd: DecimalValue = Decimal(0)
    value_before_usd: DecimalValue | None = None  # None: no money moved since the previous point


class ValuePoint(CamelModel):
    timestamp: datetime
    value_usd: DecimalValue


class PerformanceView(CamelModel):
    """GET /portfolios/{userId}/performance."""

    user_id: str
    period: Period
    start: datetime | None
    end: datetime | None
    start_value_usd: DecimalValue | None
    end_value_usd: DecimalValue | None
    value_change_usd: DecimalValue | None
    value_change_percent: DecimalValue | None
    pnl_change_usd: DecimalValue | None = Field(
        description=(
            "Change in total P&L, counting the gain of coins transferred out as they left (withdrawnGainUsd): "
            "money put in is not a gain, coins taken out are not a loss"
        )
    )
    net_deposits_usd: DecimalValue | None = Field(
        description="Money put in (at cost) less coins transferred out (at their value when they left)"
    )
    withdrawn_gain_usd: DecimalValue | None = Field(
        None, description="The gain that coins transferred out during the period took with them"
    )
    twr_percent: DecimalValue | None = Field(
        None,
        description=(
            "Time-weighted return: the returns between observations chained, each measured on the holdings "
            "as they stood after the money that came in or went out (buys, sales, transfers): what the "
            "holdings did, whatever the deposits"
        ),
    )
    mwr_percent: DecimalValue | None = Field(
        None,
        description=(
            "Money-weighted return over the period (its internal rate of return, not annualized): the start "
            "value and each deposit or withdrawal weighted by how long it was invested; null when none exists"
        ),
    )
    series: list[ValuePoint] = Field(description="At most about 300 points, oldest first")


class TransactionPage(CamelModel):
    """GET /portfolios/{userId}/transactions: newest first."""

    transactions: list[Transaction]
    next_cursor: str | None
