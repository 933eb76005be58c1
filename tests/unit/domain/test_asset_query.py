"""GET /assets filters and sorting, and the cache key each query maps to."""

from __future__ import annotations

from decimal import Decimal

import pytest
from portfolio.domain.asset_query import AssetQuery, AssetSort, SortOrder
from portfolio.domain.errors import InvalidInputError
from portfolio.domain.transactions import Category
from portfolio.domain.views import AssetHolding
from pydantic import ValidationError


def holding(
    symbol: str,
    value: str | None,
    *,
    chain: str = "ethereum",
    category: Category = Category.OTHER,
    unrealized: str | None = "0",
    realized: str = "0",
) -> AssetHolding:
    return AssetHolding(
        chain=chain,
        token_address=f"0x{symbol.lower():0>40}"[:42],
        asset=symbol.lower(),
        symbol=symbol,
        category=category,
        amount=Decimal(1),
        price_usd=None if value is None else Decimal(value),
        value_usd=None if value is None else Decimal(value),
        cost_basis_usd=Decimal(0),
        unrealized_pnl_usd=None if value is None else Decimal(unrealized or "0"),
        realized_pnl_usd=Decimal(realized),
        roi_percent=None,
        share_percent=None,
        price_timestamp=None,
        stale=False,
        unknown_cost_amount=Decimal(0),
    )


ASSETS = [
    holding("ETH", "3000", category=Category.NATIVE, unrealized="1000", realized="-200"),
    holding("UNI", "60", category=Category.DEFI, unrealized="10", realized="500"),
    holding("ARB", "120", chain="arbitrum", category=Category.DEFI, unrealized="-30"),
    holding("MYSTERY", None),
    holding("USDC", "100", chain="base", category=Category.STABLECOIN),
]


def symbols(assets: list[AssetHolding]) -> list[str]:
    return [a.symbol for a in assets]


def test_given_no_filters_then_assets_come_by_value_largest_first_with_unpriced_last() -> None:
    assert symbols(AssetQuery().apply(ASSETS)) == ["ETH", "ARB", "USDC", "UNI", "MYSTERY"]


def test_given_ascending_value_then_unpriced_assets_still_come_last() -> None:
    query = AssetQuery(order=SortOrder.ASC)
    assert symbols(query.apply(ASSETS)) == ["UNI", "USDC", "ARB", "ETH", "MYSTERY"]


def test_given_sort_by_pnl_then_realized_plus_unrealized_decides() -> None:
    # ETH 800, UNI 510, USDC 0, ARB -30; MYSTERY has no P&L to rank
    query = AssetQuery(sort=AssetSort.PNL)
    assert symbols(query.apply(ASSETS)) == ["ETH", "UNI", "USDC", "ARB", "MYSTERY"]


def test_given_sort_by_symbol_then_it_is_alphabetical_ignoring_case() -> None:
    assets = [*ASSETS, holding("aave", "5")]
    query = AssetQuery.model_validate({"sort": "symbol", "order": "asc"})
    assert symbols(query.apply(assets)) == ["aave", "ARB", "ETH", "MYSTERY", "UNI", "USDC"]


def test_given_chain_and_category_filters_then_only_matching_assets_remain() -> None:
    assert symbols(AssetQuery(chain="ethereum").apply(ASSETS)) == ["ETH", "UNI", "MYSTERY"]
    assert symbols(AssetQuery(category=Category.DEFI).apply(ASSETS)) == ["ARB", "UNI"]
    assert symbols(AssetQuery(chain="Arbitrum", category=Category.DEFI).apply(ASSETS)) == ["ARB"]


def test_given_a_minimum_value_then_smaller_and_unpriced_assets_are_dropped() -> None:
    query = AssetQuery.model_validate({"minValueUsd": "100"})
    assert symbols(query.apply(ASSETS)) == ["ETH", "ARB", "USDC"]


def test_given_equal_values_then_the_order_is_stable_by_symbol() -> None:
    tied = [holding("ZED", "10"), holding("ABC", "10"), holding("MID", "10")]
    assert symbols(AssetQuery().apply(tied)) == ["ABC", "MID", "ZED"]
    assert symbols(AssetQuery(order=SortOrder.ASC).apply(tied)) == ["ABC", "MID", "ZED"]


def test_given_default_query_then_the_filter_key_is_empty() -> None:
    assert AssetQuery().filter_key() == ""
    assert AssetQuery(sort=AssetSort.VALUE, order=SortOrder.DESC).filter_key() == ""


def test_given_filters_then_the_filter_key_is_canonical() -> None:
    query = AssetQuery.model_validate(
        {"chain": "Ethereum", "category": "defi", "minValueUsd": "100.00", "sort": "pnl", "order": "asc"}
    )
    assert query.filter_key() == "chain:ethereum|category:defi|min:100|sort:pnl|order:asc"
    assert AssetQuery.model_validate({"minValueUsd": "1E+2"}).filter_key() == "min:100"
    assert AssetQuery(category=Category.MEME).filter_key() != AssetQuery(chain="base").filter_key()


def test_given_an_unsupported_chain_or_sort_then_the_query_is_refused() -> None:
    with pytest.raises((ValidationError, InvalidInputError)):
        AssetQuery(chain="atlantis")
    with pytest.raises(ValidationError):
        AssetQuery.model_validate({"sort": "random"})
    with pytest.raises(ValidationError):
        AssetQuery.model_validate({"minValueUsd": 1.5})
