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

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal

from portfolio.domain.accounting import Ledger, Position, replay
from portfolio.domain.arithmetic import EXACT, cents, percent
from portfolio.domain.asset_query import AssetSort, SortOrder, sort_assets
from portfolio.domain.money import ZERO
from portfolio.domain.portfolio_record import CostBasisMethod
from portfolio.domain.prices import PriceQuote
from portfolio.domain.token_registry import TokenLabel, asset_symbol, labelled
from portfolio.domain.tokens import TokenId
from portfolio.domain.transactions import Category, Transaction
from portfolio.domain.valued_portfolio import (
    AssetShareLine,
    BreakdownLines,
    CategoryShareLine,
    ChainAmountLine,
    ChainShareLine,
    HoldingLine,
    MissingAcquisitionLine,
    SummaryFigures,
    ValuedPortfolio,
)

_add, _multiply, _subtract = EXACT.add, EXACT.multiply, EXACT.subtract


class _Holding:
    """An open position with its label and, when priced, its exact figures (computed once: totals,
    breakdowns and sorting read them many times), then its value and share as shown."""

    __slots__ = ("label", "position", "quote", "share", "unknown_cost_value", "unrealized_pnl", "value", "value_usd")
    position: Position
    label: TokenLabel
    quote: PriceQuote | None
    value: Decimal | None
    unknown_cost_value: Decimal | None
    unrealized_pnl: Decimal | None
    value_usd: Decimal | None
    share: Decimal | None

    def __init__(self, position: Position, label: TokenLabel, quote: PriceQuote | None) -> None:
        self.position, self.label, self.quote = position, label, quote
        if quote is None:
            self.value = self.unknown_cost_value = self.unrealized_pnl = None
        else:
            price = quote.price
            self.value = _multiply(position.amount, price)
            # Most holdings have no unknown-cost part: its value is zero at any price.
            self.unknown_cost_value = _multiply(position.unknown_amount, price) if position.unknown_amount else ZERO
            self.unrealized_pnl = _subtract(_multiply(position.known_amount, price), position.cost_basis)
        self.value_usd = self.share = None


def value_portfolio(
    user_id: str,
    source: Ledger | Iterable[Transaction],
    prices: Mapping[str, PriceQuote],
    *,
    method: CostBasisMethod = CostBasisMethod.FIFO,
    updated_at: datetime | None = None,
    contract_symbols: Mapping[TokenId, str] | None = None,
    with_assets: bool = True,
) -> ValuedPortfolio:
    """The whole view of one user's portfolio. A Ledger passed in keeps its own method.
    `contract_symbols`: what wallet sync read of tokens no registry or quote names. `with_assets`
    False leaves the asset list empty: the summary alone costs half as much."""
    ledger = source if isinstance(source, Ledger) else replay(source, method)
    symbols = contract_symbols or {}
    holdings: list[_Holding] = []
    prices_as_of: datetime | None = None
    priced = stale = 0
    total_value = unknown_cost_value = cost_basis = unrealized_pnl = ZERO
    for position in ledger.positions.values():
        if not position.amount > ZERO:  # closed: not listed (its realized P&L counts in the totals)
            continue
        quote = prices.get(position.token.key)
        holding = _Holding(position, _label(position, quote, symbols), quote)
        holdings.append(holding)
        value, unknown_value, unrealized = holding.value, holding.unknown_cost_value, holding.unrealized_pnl
        if quote is None or value is None or unknown_value is None or unrealized is None:
            continue
        priced += 1
        stale += quote.stale
        if prices_as_of is None or quote.timestamp < prices_as_of:
            prices_as_of = quote.timestamp
        total_value = _add(total_value, value)
        if unknown_value:  # mostly zero: every coin held has a known cost
            unknown_cost_value = _add(unknown_cost_value, unknown_value)
        cost_basis = _add(cost_basis, position.cost_basis)
        unrealized_pnl = _add(unrealized_pnl, unrealized)
    # The value and share of each holding as shown, now that the total is known.
    for holding in holdings:
        if holding.value is not None:
            holding.value_usd, holding.share = cents(holding.value), _share(holding.value, total_value)
    realized_pnl = ledger.realized_pnl
    total_pnl = _add(realized_pnl, unrealized_pnl)
    # More cost can leave than was put in (coins received as income, then sent out): nothing is
    # invested any more, and the ROI has no base.
    invested = max(ledger.net_invested, ZERO)
    summary = SummaryFigures(
        user_id=user_id,
        total_value_usd=cents(total_value),
        cost_basis_usd=cents(cost_basis),
        realized_pnl_usd=cents(realized_pnl),
        unrealized_pnl_usd=cents(unrealized_pnl),
        total_pnl_usd=cents(total_pnl),
        invested_usd=cents(invested),
        roi_percent=percent(total_pnl, invested),
        unknown_cost_basis_value_usd=cents(unknown_cost_value),
        income_usd=cents(ledger.income),
        untracked_proceeds_usd=cents(ledger.untracked_proceeds),
        withdrawn_cost_usd=cents(ledger.withdrawn_cost),
        withdrawn_gain_usd=cents(ledger.withdrawn_gain),
        missing_acquisitions=_missing_acquisitions(ledger, prices, symbols),
        missing_acquisition_pnl_usd=cents(ledger.missing_pnl),
        breakdown=breakdown(holdings, total_value),
        prices_as_of=prices_as_of,
        stale_price_count=stale,
        unpriced_count=len(holdings) - priced,
        holding_count=len(holdings),
        cost_basis_method=ledger.method,
        cost_basis_scope=ledger.scope,
        updated_at=updated_at,
    )
    lines = [_holding_line(holding) for holding in holdings] if with_assets else []
    assets = sort_assets(lines, AssetSort.VALUE, SortOrder.DESC)  # the list's default order
    return ValuedPortfolio(summary=summary, assets=assets)


def _missing_acquisitions(
    ledger: Ledger, prices: Mapping[str, PriceQuote], contract_symbols: Mapping[TokenId, str]
) -> list[MissingAcquisitionLine]:
    missing = []
    for position in ledger.positions.values():
        if not position.missing_amount:
            continue
        quote = prices.get(position.token.key)
        label = _label(position, quote, contract_symbols)
        missing.append(
            MissingAcquisitionLine(
                chain=position.token.chain,
                token_address=position.token.address,
                symbol=label.symbol,
                amount=position.missing_amount,
                value_usd=None if quote is None else cents(_multiply(position.missing_amount, quote.price)),
            )
        )
    return missing


def _label(position: Position, quote: PriceQuote | None, contract_symbols: Mapping[TokenId, str]) -> TokenLabel:
    return labelled(
        position.token,
        None if quote is None else quote.symbol,
        contract_symbols.get(position.token) if contract_symbols else None,
        position.category_override,
    )


def _share(value: Decimal, total_value: Decimal) -> Decimal:
    return percent(value, total_value) or ZERO


def _holding_line(holding: _Holding) -> HoldingLine:
    position, quote, unrealized = holding.position, holding.quote, holding.unrealized_pnl
    token, label, value_usd, share = position.token, holding.label, holding.value_usd, holding.share
    if quote is None or unrealized is None:
        price = unrealized_usd = roi = timestamp = None
        stale = False
    else:
        price, unrealized_usd = quote.price, cents(unrealized)
        roi = percent(_add(position.realized_pnl, unrealized), max(position.net_acquired_cost, ZERO))
        timestamp, stale = quote.timestamp, quote.stale
    return HoldingLine(
        token.chain,
        token.address,
        label.asset,
        label.symbol,
        label.category,
        position.amount,
        price,
        value_usd,
        cents(position.cost_basis),
        unrealized_usd,
        cents(position.realized_pnl),
        roi,
        share,
        timestamp,
        stale,
        position.unknown_amount,
        position.missing_amount,
    )


def breakdown(holdings: Iterable[_Holding], total_value: Decimal) -> BreakdownLines:
    """By asset, chain and category; `holdings` are settled (their value and share rounded)."""
    by_asset: dict[str, list[_Holding]] = {}
    by_chain: dict[str, Decimal] = {}
    by_category: dict[Category, Decimal] = {}
    for holding in holdings:
        label = holding.label
        group = by_asset.get(label.asset)
        if group is None:
            by_asset[label.asset] = [holding]
        else:
            group.append(holding)
        value = holding.value
        if value is not None:
            chain, category = holding.position.token.chain, label.category
            # Exact sums (the first value stands for itself): shown only once rounded.
            by_chain[chain] = _add(by_chain[chain], value) if chain in by_chain else value
            by_category[category] = _add(by_category[category], value) if category in by_category else value
    asset_lines = []
    for asset, group in by_asset.items():
        line = _asset_share(asset, group, total_value)
        if line is not None:
            asset_lines.append(line)
    asset_lines.sort(key=_largest_asset_first)
    chain_lines = [ChainShareLine(chain, cents(value), _share(value, total_value)) for chain, value in by_chain.items()]
    category_lines = [
        CategoryShareLine(category, cents(value), _share(value, total_value)) for category, value in by_category.items()
    ]
    return BreakdownLines(
        by_asset=asset_lines,
        by_chain=sorted(chain_lines, key=lambda line: (-line.value_usd, line.chain)),
        by_category=sorted(category_lines, key=lambda line: (-line.value_usd, line.category)),
    )


def _largest_asset_first(line: AssetShareLine) -> tuple[Decimal, str]:
    return (-line.value_usd, line.asset)


def _asset_share(asset: str, holdings: list[_Holding], total_value: Decimal) -> AssetShareLine | None:
    """The asset's line, None when none of its holdings is priced."""
    if len(holdings) == 1:  # most assets are held on one chain: the holding's figures are the asset's
        only = holdings[0]
        if only.value_usd is None or only.share is None:
            return None
        token = only.position.token
        chains = [ChainAmountLine(token.chain, token.address, only.position.amount, only.value_usd)]
        return AssetShareLine(asset, asset_symbol(asset) or only.label.symbol, only.value_usd, only.share, chains)
    if all(holding.value is None for holding in holdings):
        return None
    value = ZERO
    for holding in holdings:
        if holding.value is not None:
            value = _add(value, holding.value)
    largest = sorted(holdings, key=lambda holding: (holding.value is None, -(holding.value or ZERO)))
    chains = [
        ChainAmountLine(
            holding.position.token.chain, holding.position.token.address, holding.position.amount, holding.value_usd
        )
        for holding in largest
    ]
    return AssetShareLine(
        asset, asset_symbol(asset) or largest[0].label.symbol, cents(value), _share(value, total_value), chains
    )
