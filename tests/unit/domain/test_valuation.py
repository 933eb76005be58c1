"""Valuing a portfolio: totals, unpriced and stale holdings, cross-chain breakdowns."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from portfolio.adapters.positions_codec import decode_positions, encode_positions
from portfolio.domain.accounting import replay
from portfolio.domain.portfolio_record import CostBasisMethod
from portfolio.domain.valuation import value_portfolio
from portfolio.domain.valued_portfolio import HoldingLine, ValuedPortfolio
from portfolio.services.portfolio_rendering import assets_body, summary_body

from tests.unit.domain.builders import (
    EVM_NATIVE,
    PEPE_ETHEREUM,
    T0,
    UNI_ETHEREUM,
    UNLISTED_TOKEN,
    USDC_ARBITRUM,
    USDC_BASE,
    USDC_ETHEREUM,
    key,
    quote,
    tx,
)

STALE_AT = T0 - timedelta(hours=1)


def cross_chain_transactions() -> list:
    return [
        # ETH on Ethereum: 2 bought at 1000, 1 sold at 1500 -> 500 realized, 1 left costing 1000
        tx("buy", "2", price="1000", hour=0),
        tx("sell", "1", price="1500", hour=1),
        # ETH on Arbitrum: received at 2000
        tx("transfer_in", "1", price="2000", chain="arbitrum", hour=2),
        # USDC on three chains; the Base one received without a price
        tx("buy", "100", price="1", token=USDC_ETHEREUM, hour=0),
        tx("buy", "50", price="1", chain="arbitrum", token=USDC_ARBITRUM, hour=0),
        tx("transfer_in", "25", chain="base", token=USDC_BASE, hour=0),
        # UNI bought at 5
        tx("buy", "10", price="5", token=UNI_ETHEREUM, hour=0),
        # A token no price source knows: bought for 10
        tx("buy", "1000", price="0.01", token=UNLISTED_TOKEN, hour=0),
        # PEPE bought for 10 and sold for 20: closed
        tx("buy", "1000000", price="0.00001", token=PEPE_ETHEREUM, hour=0),
        tx("sell", "1000000", price="0.00002", token=PEPE_ETHEREUM, hour=1),
    ]


def cross_chain_prices() -> dict:
    return {
        key("ethereum", EVM_NATIVE): quote(key("ethereum", EVM_NATIVE), "3000"),
        key("arbitrum", EVM_NATIVE): quote(key("arbitrum", EVM_NATIVE), "3000", stale=True, at=STALE_AT),
        key("ethereum", USDC_ETHEREUM): quote(key("ethereum", USDC_ETHEREUM), "1"),
        key("arbitrum", USDC_ARBITRUM): quote(key("arbitrum", USDC_ARBITRUM), "1"),
        key("base", USDC_BASE): quote(key("base", USDC_BASE), "1"),
        key("ethereum", UNI_ETHEREUM): quote(key("ethereum", UNI_ETHEREUM), "6"),
        key("ethereum", PEPE_ETHEREUM): quote(key("ethereum", PEPE_ETHEREUM), "0.00003"),
    }


def cross_chain_view() -> ValuedPortfolio:
    return value_portfolio("alice", cross_chain_transactions(), cross_chain_prices(), updated_at=T0)


def asset(view: ValuedPortfolio, chain: str, token: str) -> HoldingLine:
    return next(a for a in view.assets if a.chain == chain and a.token_address == token)


def test_given_a_cross_chain_portfolio_then_the_totals_count_priced_holdings_and_all_realized_pnl() -> None:
    summary = cross_chain_view().summary

    # Value: ETH 3000 + 3000, USDC 100 + 50 + 25, UNI 60; the unlisted token has no price
    assert summary.total_value_usd == Decimal("6235")
    # Cost basis of priced known-cost holdings: ETH 1000 + 2000, USDC 100 + 50, UNI 50
    assert summary.cost_basis_usd == Decimal("3200")
    # Unrealized: ETH 2000 + 1000, UNI 10; the Base USDC has no known cost
    assert summary.unrealized_pnl_usd == Decimal("3010")
    # Realized: ETH 500 and the closed PEPE position's 10
    assert summary.realized_pnl_usd == Decimal("510")
    assert summary.total_pnl_usd == Decimal("3520")
    # Invested: 2000 + 2000 + 100 + 50 + 50 + 10 (unlisted) + 10 (PEPE)
    assert summary.invested_usd == Decimal("4220")
    assert summary.roi_percent == Decimal("83.41")  # 3520 / 4220
    assert summary.unknown_cost_basis_value_usd == Decimal("25")
    assert summary.unrealized_pnl_usd == (
        summary.total_value_usd - summary.unknown_cost_basis_value_usd - summary.cost_basis_usd
    )


def test_given_an_unpriced_holding_then_it_is_listed_without_value_and_counted_apart_never_as_zero() -> None:
    view = cross_chain_view()

    unlisted = asset(view, "ethereum", UNLISTED_TOKEN)
    assert unlisted.value_usd is None
    assert unlisted.price_usd is None
    assert unlisted.unrealized_pnl_usd is None
    assert unlisted.share_percent is None
    assert unlisted.roi_percent is None
    assert unlisted.cost_basis_usd == Decimal("10")
    assert unlisted.symbol == "0x1111...1111"
    assert view.summary.unpriced_count == 1
    assert view.summary.holding_count == 7
    assert view.assets[-1] == unlisted  # unpriced holdings come last
    assert all(line.asset != unlisted.asset for line in view.summary.breakdown.by_asset)
    body = json.loads(assets_body(view))
    listed = next(a for a in body["assets"] if a["tokenAddress"] == UNLISTED_TOKEN)
    assert listed["valueUsd"] is None


def test_given_a_stale_quote_then_it_is_used_counted_and_dates_the_prices() -> None:
    view = cross_chain_view()

    on_arbitrum = asset(view, "arbitrum", EVM_NATIVE)
    assert on_arbitrum.value_usd == Decimal("3000")
    assert on_arbitrum.stale is True
    assert view.summary.stale_price_count == 1
    assert view.summary.prices_as_of == STALE_AT


def test_given_a_fully_sold_position_then_it_is_not_listed_but_its_pnl_counts() -> None:
    view = cross_chain_view()

    assert all(a.token_address != PEPE_ETHEREUM for a in view.assets)
    assert view.summary.realized_pnl_usd == Decimal("510")


def test_given_usdc_on_three_chains_and_eth_on_two_then_each_is_one_asset_line_with_chain_detail() -> None:
    by_asset = cross_chain_view().summary.breakdown.by_asset

    assert [(line.asset, line.symbol, line.value_usd, line.share_percent) for line in by_asset] == [
        ("eth", "ETH", Decimal("6000"), Decimal("96.23")),
        ("usdc", "USDC", Decimal("175"), Decimal("2.81")),
        ("uni", "UNI", Decimal("60"), Decimal("0.96")),
    ]
    usdc = by_asset[1]
    assert [(c.chain, c.amount, c.value_usd) for c in usdc.chains] == [
        ("ethereum", Decimal("100"), Decimal("100")),
        ("arbitrum", Decimal("50"), Decimal("50")),
        ("base", Decimal("25"), Decimal("25")),
    ]
    assert {c.chain for c in by_asset[0].chains} == {"ethereum", "arbitrum"}


def test_given_a_cross_chain_portfolio_then_chain_and_category_breakdowns_share_the_value() -> None:
    breakdown = cross_chain_view().summary.breakdown

    assert [(line.chain, line.value_usd, line.share_percent) for line in breakdown.by_chain] == [
        ("ethereum", Decimal("3160"), Decimal("50.68")),
        ("arbitrum", Decimal("3050"), Decimal("48.92")),
        ("base", Decimal("25"), Decimal("0.40")),
    ]
    assert [(line.category, line.value_usd) for line in breakdown.by_category] == [
        ("native", Decimal("6000")),
        ("stablecoin", Decimal("175")),
        ("defi", Decimal("60")),
    ]


def test_given_holdings_then_each_shows_its_own_pnl_roi_and_share() -> None:
    view = cross_chain_view()

    eth = asset(view, "ethereum", EVM_NATIVE)
    assert (eth.amount, eth.price_usd, eth.value_usd) == (Decimal("1"), Decimal("3000"), Decimal("3000"))
    assert (eth.cost_basis_usd, eth.unrealized_pnl_usd, eth.realized_pnl_usd) == (
        Decimal("1000"),
        Decimal("2000"),
        Decimal("500"),
    )
    assert eth.roi_percent == Decimal("125.00")  # (500 + 2000) / 2000 bought
    assert eth.share_percent == Decimal("48.12")  # 3000 / 6235
    assert (eth.symbol, eth.asset, eth.category) == ("ETH", "eth", "native")
    usdc_on_base = asset(view, "base", USDC_BASE)
    assert usdc_on_base.unknown_cost_amount == Decimal("25")
    assert usdc_on_base.unrealized_pnl_usd == Decimal("0")
    assert usdc_on_base.roi_percent is None  # nothing of known cost ever entered it


def test_given_assets_then_they_are_listed_by_value_largest_first() -> None:
    values = [a.value_usd for a in cross_chain_view().assets]
    assert values == [*(Decimal(v) for v in ("3000", "3000", "100", "60", "50", "25")), None]


def test_given_only_holdings_received_without_price_then_roi_is_null_not_a_division_by_zero() -> None:
    view = value_portfolio(
        "bob", [tx("transfer_in", "2")], {key("ethereum", EVM_NATIVE): quote(key("ethereum", EVM_NATIVE), "3000")}
    )

    assert view.summary.invested_usd == Decimal("0")
    assert view.summary.roi_percent is None
    assert view.summary.total_value_usd == Decimal("6000")
    assert view.summary.unknown_cost_basis_value_usd == Decimal("6000")
    assert view.summary.total_pnl_usd == Decimal("0")


def test_given_unknown_cost_holdings_sold_then_their_proceeds_show_apart_from_pnl() -> None:
    view = value_portfolio(
        "bob",
        [
            tx("transfer_in", "2", hour=0),
            tx("sell", "1", price="3000", hour=1),
            tx("transfer_in", "1", price="10", hour=2),
        ],
        {},
    )
    assert view.summary.untracked_proceeds_usd == Decimal("3000")
    assert view.summary.realized_pnl_usd == Decimal("0")


def test_given_category_overrides_then_the_latest_wins_over_the_registry() -> None:
    transactions = [
        tx("buy", "10", price="5", token=UNI_ETHEREUM, category="meme", hour=0),
        tx("buy", "10", price="5", token=UNI_ETHEREUM, category="other", hour=1),
        tx("buy", "10", price="5", token=UNI_ETHEREUM, hour=2),  # no override: keeps the last one
        tx("buy", "1", price="1", token=UNLISTED_TOKEN, category="defi", hour=0),
    ]
    view = value_portfolio("carol", transactions, {})

    assert asset(view, "ethereum", UNI_ETHEREUM).category == "other"
    assert asset(view, "ethereum", UNLISTED_TOKEN).category == "defi"


def test_given_an_unlisted_token_with_a_quote_then_it_takes_the_quote_symbol() -> None:
    token_key = key("ethereum", UNLISTED_TOKEN)
    view = value_portfolio(
        "carol", [tx("buy", "4", price="1", token=UNLISTED_TOKEN)], {token_key: quote(token_key, "2", symbol="FOO")}
    )

    holding = view.assets[0]
    assert (holding.symbol, holding.asset, holding.category) == ("FOO", "foo", "other")
    assert view.summary.breakdown.by_asset[0].symbol == "FOO"


def test_given_a_ledger_then_it_is_valued_with_its_own_method() -> None:
    transactions = [
        tx("buy", "1", price="100", hour=0),
        tx("buy", "1", price="300", hour=1),
        tx("sell", "1", price="300", hour=2),
    ]
    ledger = replay(transactions, CostBasisMethod.AVERAGE)

    view = value_portfolio("dave", ledger, {}, method=CostBasisMethod.FIFO)

    assert view.summary.cost_basis_method is CostBasisMethod.AVERAGE
    assert view.summary.realized_pnl_usd == Decimal("100")  # 300 - average 200


@pytest.mark.parametrize("with_lots", [True, False], ids=["whole", "valuation-only"])
def test_given_stored_positions_then_they_are_valued_as_the_history_they_came_from(with_lots: bool) -> None:
    # Given positions stored after a history, then read back from their stored form
    holdings, lots = encode_positions(replay(cross_chain_transactions()))
    stored = decode_positions(holdings, lots if with_lots else None)

    # When both are valued at the same prices
    from_positions = value_portfolio("alice", stored, cross_chain_prices(), updated_at=T0)

    # Then the views are the same, to the cent and the digit
    assert from_positions == cross_chain_view()


def test_given_a_view_then_its_json_is_camel_case_with_decimal_strings() -> None:
    body = json.loads(summary_body(cross_chain_view()))

    assert body["totalValueUsd"] == "6235"
    assert body["roiPercent"] == "83.41"
    assert body["breakdown"]["byAsset"][0]["sharePercent"] == "96.23"
    assert body["stalePriceCount"] == 1


def test_given_dust_values_then_usd_figures_are_rounded_to_cents_and_amounts_are_not() -> None:
    token_key = key("ethereum", PEPE_ETHEREUM)
    view = value_portfolio(
        "frank",
        [tx("buy", "123.456789012345678901", price="0.0000123", token=PEPE_ETHEREUM)],
        {token_key: quote(token_key, "0.0000456")},
    )

    holding = view.assets[0]
    assert holding.amount == Decimal("123.456789012345678901")
    assert holding.price_usd == Decimal("0.0000456")
    assert holding.value_usd == Decimal("0.01")  # 0.00562962...
    assert holding.cost_basis_usd == Decimal("0.00")  # 0.00151851...
