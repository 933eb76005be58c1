"""Filtering and sorting the asset list (GET /portfolios/{userId}/assets) and its cache key.

- chain, category: exact matches.
- minValueUsd: keeps priced holdings worth at least that much; unpriced holdings are dropped,
  since an unknown value cannot be shown to reach the minimum.
- sort=value | pnl | symbol, order=asc | desc. `pnl` is the holding's total P&L (realized +
  unrealized). Unpriced holdings have no value and no unrealized P&L: they come last for value
  and pnl whatever the order. Ties break by symbol, chain and address, so the order is stable.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from enum import StrEnum

from pydantic import field_validator

from portfolio.domain.money import DecimalStr, to_decimal_string
from portfolio.domain.tokens import normalize_chain
from portfolio.domain.transactions import Category
from portfolio.domain.valued_portfolio import HoldingLine
from portfolio.wire_format import CamelModel


class AssetSort(StrEnum):
    VALUE = "value"
    PNL = "pnl"
    SYMBOL = "symbol"


class SortOrder(StrEnum):
    ASC = "asc"
    DESC = "desc"


class AssetQuery(CamelModel):
    chain: str | None = None
    category: Category | None = None
    min_value_usd: DecimalStr | None = None
    sort: AssetSort = AssetSort.VALUE
    order: SortOrder = SortOrder.DESC

    @field_validator("chain")
    @classmethod
    def _known_chain(cls, value: str | None) -> str | None:
        return None if value is None else normalize_chain(value)

    def filter_key(self) -> str:
        """A canonical string for cache keys: only what differs from the defaults, "" for none.

        e.g. "chain:ethereum|category:defi|min:100|sort:pnl|order:asc". Equal queries give equal
        keys ("100", "100.00" and "1E+2" are one minimum).
        """
        parts = []
        if self.chain is not None:
            parts.append(f"chain:{self.chain}")
        if self.category is not None:
            parts.append(f"category:{self.category}")
        if self.min_value_usd is not None:
            parts.append(f"min:{to_decimal_string(self.min_value_usd)}")
        if self.sort is not AssetSort.VALUE:
            parts.append(f"sort:{self.sort}")
        if self.order is not SortOrder.DESC:
            parts.append(f"order:{self.order}")
        return "|".join(parts)

    def apply(self, assets: Iterable[HoldingLine]) -> list[HoldingLine]:
        kept = [asset for asset in assets if self._keeps(asset)]
        return sort_assets(kept, self.sort, self.order)

    def _keeps(self, asset: HoldingLine) -> bool:
        if self.chain is not None and asset.chain != self.chain:
            return False
        if self.category is not None and asset.category is not self.category:
            return False
        if self.min_value_usd is not None:
            return asset.value_usd is not None and asset.value_usd >= self.min_value_usd
        return True


def _tie_break(asset: HoldingLine) -> tuple[str, str, str]:
    return (asset.symbol.casefold(), asset.chain, asset.token_address)


def _sort_figure(asset: HoldingLine, sort: AssetSort) -> Decimal | None:
    if sort is AssetSort.VALUE:
        return asset.value_usd
    if asset.unrealized_pnl_usd is None:
        return None
    return asset.unrealized_pnl_usd + asset.realized_pnl_usd


def sort_assets(assets: Iterable[HoldingLine], sort: AssetSort, order: SortOrder) -> list[HoldingLine]:
    descending = order is SortOrder.DESC
    ordered = sorted(assets, key=_tie_break)
    if sort is AssetSort.SYMBOL:
        return sorted(ordered, key=lambda asset: asset.symbol.casefold(), reverse=descending)
    with_figure = [asset for asset in ordered if _sort_figure(asset, sort) is not None]
    without_figure = [asset for asset in ordered if _sort_figure(asset, sort) is None]
    # sorted() is stable, so equal figures keep the tie-break order in both directions.
    ranked = sorted(with_figure, key=lambda asset: _sort_figure(asset, sort) or Decimal(0), reverse=descending)
    return ranked + without_figure
