"""Valuing a ledger at a set of prices: the summary, the asset list and the breakdowns.

- A holding whose token has no quote is unpriced: no value, no unrealized P&L, left out of
  every total and breakdown, counted in unpricedCount. It is never valued at zero.
- Stale quotes are used and counted in stalePriceCount; pricesAsOf is the oldest quote used.
- Closed positions (amount 0) are not listed, but their realized P&L counts in the totals.
- totalValueUsd counts every priced holding, unknown-cost amounts included (their part is
  unknownCostBasisValueUsd). costBasisUsd and unrealizedPnlUsd count the priced holdings' known-
  cost amounts only, so unrealized == total value - unknown-cost value - cost basis.
- realizedPnlUsd counts every position, priced or not. ROI % = total P&L / invested * 100, invested
  being net of the cost of what was transferred out (and of coins spent on fees whose value went
  into another trade's cost), and never below zero (coins received as income and sent out can take
  more cost out than was put in: the ROI is then null): sending coins to an own wallet leaves the
  ROI where it was, and the gain they left with is withdrawnGainUsd.
- A holding's own ROI is its total P&L over the known cost that entered it (bought, received with
  a price, bridged or pooled in) and did not leave it without P&L.
- Breakdowns by asset (one line per canonical asset, with a line per chain), chain and category
  share the priced value; sorted by value, largest first.
- Arithmetic is exact; USD figures are rounded to the cent and percentages to 0.01 only here,
  when the view is built. Token amounts and prices are never rounded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from portfolio.domain.accounting import Ledger, Position, replay
from portfolio.domain.arithmetic import EXACT, cents, exact, percent
from portfolio.domain.asset_query import AssetSort, SortOrder, sort_assets
from portfolio.domain.money import ZERO
from portfolio.domain.portfolio_record import CostBasisMethod
from portfolio.domain.prices import PriceQuote
from portfolio.domain.token_registry import TokenLabel, asset_symbol, describe
from portfolio.domain.tokens import TokenId
from portfolio.domain.transactions import Transaction
from portfolio.domain.views import (
    AssetHolding,
    AssetShare,
    Breakdown,
    CategoryShare,
    ChainAmount,
    ChainShare,
    MissingAcquisition,
    PortfolioSummary,
    PortfolioView,
)


@dataclass(frozen=True, slots=True)
class ValuedPosition:
    """An open position with its label and, when priced, its exact value (computed once: breakdowns
    and sorting read it many times)."""

    position: Position
    label: TokenLabel
    quote: PriceQuote | None
    value: Decimal | None = field(init=False)
    unknown_cost_value: Decimal | None = field(init=False)
    unrealized_pnl: Decimal | None = field(init=False)

    def __post_init__(self) -> None:
        figures: tuple[Decimal | None, Decimal | None, Decimal | None] = (None, None, None)
        if self.quote is not None:
            price, position = self.quote.price, self.position
            figures = (
                EXACT.multiply(position.amount, price),
                EXACT.multiply(position.unknown_amount, price),
                EXACT.subtract(EXACT.multiply(position.known_amount, price), position.cost_basis),
            )
        for name, figure in zip(("value", "unknown_cost_value", "unrealized_pnl"), figures, strict=True):
            object.__setattr__(self, name, figure)

    @property
    def priced(self) -> bool:
        return self.quote is not None


@dataclass(frozen=True, slots=True)
class Totals:
    """Exact portfolio figures, before any rounding."""

    total_value: Decimal
    unknown_cost_value: Decimal
    cost_basis: Decimal
    unrealized_pnl: Decimal
    realized_pnl: Decimal
    invested: Decimal
    untracked_proceeds: Decimal
    withdrawn_cost: Decimal

    @property
    def total_pnl(self) -> Decimal:
        with exact():
            return self.realized_pnl + self.unrealized_pnl


def value_positions(
    ledger: Ledger, prices: Mapping[str, PriceQuote], contract_symbols: Mapping[TokenId, str] | None = None
) -> list[ValuedPosition]:
    """The open positions with their quotes (looked up by `chain:address`) and labels."""
    valued = []
    symbols = contract_symbols or {}
    for position in ledger.open_positions():
        quote = prices.get(position.token.key)
        valued.append(ValuedPosition(position=position, label=_label(position, quote, symbols), quote=quote))
    return valued


def totals(ledger: Ledger, valued: Iterable[ValuedPosition]) -> Totals:
    priced = [holding for holding in valued if holding.priced]
    with exact():
        return Totals(
            total_value=sum((holding.value or ZERO for holding in priced), ZERO),
            unknown_cost_value=sum((holding.unknown_cost_value or ZERO for holding in priced), ZERO),
            cost_basis=sum((holding.position.cost_basis for holding in priced), ZERO),
            unrealized_pnl=sum((holding.unrealized_pnl or ZERO for holding in priced), ZERO),
            realized_pnl=ledger.realized_pnl,
            # More cost can leave than was put in (coins received as income, then sent out): nothing is
            # invested any more, and the ROI has no base.
            invested=max(ledger.net_invested, ZERO),
            untracked_proceeds=ledger.untracked_proceeds,
            withdrawn_cost=ledger.withdrawn_cost,
        )


def value_portfolio(
    user_id: str,
    source: Ledger | Iterable[Transaction],
    prices: Mapping[str, PriceQuote],
    *,
    method: CostBasisMethod = CostBasisMethod.FIFO,
    updated_at: datetime | None = None,
    contract_symbols: Mapping[TokenId, str] | None = None,
) -> PortfolioView:
    """The whole view of one user's portfolio. A Ledger passed in keeps its own method.
    `contract_symbols`: what wallet sync read of tokens no registry or quote names."""
    ledger = source if isinstance(source, Ledger) else replay(source, method)
    valued = value_positions(ledger, prices, contract_symbols)
    figures = totals(ledger, valued)
    assets = sort_assets(
        (_asset_holding(holding, figures.total_value) for holding in valued), AssetSort.VALUE, SortOrder.DESC
    )
    used_quotes = [holding.quote for holding in valued if holding.quote is not None]
    summary = PortfolioSummary(
        user_id=user_id,
        total_value_usd=cents(figures.total_value),
        cost_basis_usd=cents(figures.cost_basis),
        realized_pnl_usd=cents(figures.realized_pnl),
        unrealized_pnl_usd=cents(figures.unrealized_pnl),
        total_pnl_usd=cents(figures.total_pnl),
        invested_usd=cents(figures.invested),
        roi_percent=percent(figures.total_pnl, figures.invested),
        unknown_cost_basis_value_usd=cents(figures.unknown_cost_value),
        income_usd=cents(ledger.income),
        untracked_proceeds_usd=cents(figures.untracked_proceeds),
        withdrawn_cost_usd=cents(figures.withdrawn_cost),
        withdrawn_gain_usd=cents(ledger.withdrawn_gain),
        missing_acquisitions=_missing_acquisitions(ledger, prices, contract_symbols or {}),
        missing_acquisition_pnl_usd=cents(ledger.missing_pnl),
        breakdown=breakdown(valued, figures.total_value),
        prices_as_of=min((quote.timestamp for quote in used_quotes), default=None),
        stale_price_count=sum(1 for quote in used_quotes if quote.stale),
        unpriced_count=sum(1 for holding in valued if not holding.priced),
        holding_count=len(valued),
        cost_basis_method=ledger.method,
        cost_basis_scope=ledger.scope,
        updated_at=updated_at,
    )
    return PortfolioView(summary=summary, assets=assets)


def _missing_acquisitions(
    ledger: Ledger, prices: Mapping[str, PriceQuote], contract_symbols: Mapping[TokenId, str]
) -> list[MissingAcquisition]:
    missing = []
    for position in ledger.positions.values():
        if not position.missing_amount:
            continue
        quote = prices.get(position.token.key)
        label = _label(position, quote, contract_symbols)
        missing.append(
            MissingAcquisition(
                chain=position.token.chain,
                token_address=position.token.address,
                symbol=label.symbol,
                amount=position.missing_amount,
                value_usd=None if quote is None else cents(EXACT.multiply(position.missing_amount, quote.price)),
            )
        )
    return missing


def _label(position: Position, quote: PriceQuote | None, contract_symbols: Mapping[TokenId, str]) -> TokenLabel:
    return describe(
        position.token,
        quote_symbol=quote.symbol if quote else None,
        contract_symbol=contract_symbols.get(position.token),
        category_override=position.category_override,
    )


def _share(value: Decimal, total_value: Decimal) -> Decimal:
    return percent(value, total_value) or ZERO


def _asset_holding(holding: ValuedPosition, total_value: Decimal) -> AssetHolding:
    position, quote, value = holding.position, holding.quote, holding.value
    unrealized = holding.unrealized_pnl
    roi = None
    if unrealized is not None:
        roi = percent(EXACT.add(position.realized_pnl, unrealized), max(position.net_acquired_cost, ZERO))
    return AssetHolding(
        chain=position.token.chain,
        token_address=position.token.address,
        asset=holding.label.asset,
        symbol=holding.label.symbol,
        category=holding.label.category,
        amount=position.amount,
        price_usd=None if quote is None else quote.price,
        value_usd=None if value is None else cents(value),
        cost_basis_usd=cents(position.cost_basis),
        unrealized_pnl_usd=None if unrealized is None else cents(unrealized),
        realized_pnl_usd=cents(position.realized_pnl),
        roi_percent=roi,
        share_percent=None if value is None else _share(value, total_value),
        price_timestamp=None if quote is None else quote.timestamp,
        stale=quote is not None and quote.stale,
        unknown_cost_amount=position.unknown_amount,
        missing_acquisition_amount=position.missing_amount,
    )


def breakdown(valued: Iterable[ValuedPosition], total_value: Decimal) -> Breakdown:
    by_asset: dict[str, list[ValuedPosition]] = defaultdict(list)
    by_chain: dict[str, Decimal] = defaultdict(lambda: ZERO)
    by_category: dict[str, Decimal] = defaultdict(lambda: ZERO)
    with exact():
        for holding in valued:
            by_asset[holding.label.asset].append(holding)
            if holding.value is not None:
                by_chain[holding.position.token.chain] += holding.value
                by_category[holding.label.category] += holding.value
        asset_lines = [
            _asset_share(asset, holdings, total_value)
            for asset, holdings in by_asset.items()
            if any(holding.priced for holding in holdings)
        ]
    return Breakdown(
        by_asset=sorted(asset_lines, key=lambda line: (-line.value_usd, line.asset)),
        by_chain=sorted(
            (
                ChainShare(chain=chain, value_usd=cents(value), share_percent=_share(value, total_value))
                for chain, value in by_chain.items()
            ),
            key=lambda line: (-line.value_usd, line.chain),
        ),
        by_category=sorted(
            (
                CategoryShare(category=category, value_usd=cents(value), share_percent=_share(value, total_value))
                for category, value in by_category.items()
            ),
            key=lambda line: (-line.value_usd, line.category),
        ),
    )


def _asset_share(asset: str, holdings: list[ValuedPosition], total_value: Decimal) -> AssetShare:
    value = sum((holding.value or ZERO for holding in holdings), ZERO)
    largest_first = sorted(holdings, key=lambda holding: (holding.value is None, -(holding.value or ZERO)))
    chains = [
        ChainAmount(
            chain=holding.position.token.chain,
            token_address=holding.position.token.address,
            amount=holding.position.amount,
            value_usd=None if holding.value is None else cents(holding.value),
        )
        for holding in largest_first
    ]
    return AssetShare(
        asset=asset,
        symbol=asset_symbol(asset) or largest_first[0].label.symbol,
        value_usd=cents(value),
        share_percent=_share(value, total_value),
        chains=chains,
    )
