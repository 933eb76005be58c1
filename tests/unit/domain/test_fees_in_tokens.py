"""A fee paid in a token (gas in ETH on a UNI buy): its value is the trade's cost, its coins leave at cost."""

from __future__ import annotations

from decimal import Decimal

import pytest
from portfolio.domain.accounting import replay
from portfolio.domain.errors import OverdraftError
from portfolio.domain.portfolio_record import CostBasisMethod
from portfolio.domain.tokens import TokenId
from portfolio.domain.valuation import value_portfolio

from tests.unit.domain.builders import EVM_NATIVE, UNI_ETHEREUM, USDC_ETHEREUM, quote, tx

ETH = TokenId("ethereum", EVM_NATIVE)
UNI = TokenId("ethereum", UNI_ETHEREUM)


def uni_bought_with_eth_gas(fee_usd: str | None = "20") -> list:
    """1 ETH bought at 1000; later 100 UNI bought at 5 paying 0.01 ETH of gas (then worth 2000 an ETH: 20 USD)."""
    return [
        tx("buy", "1", price="1000", hour=0),
        tx("buy", "100", price="5", token=UNI_ETHEREUM, fee=fee_usd, fee_token=EVM_NATIVE, fee_amount="0.01", hour=1),
    ]


def test_given_gas_paid_in_eth_then_its_value_is_part_of_the_uni_cost() -> None:
    # When the UNI buy is replayed
    ledger = replay(uni_bought_with_eth_gas())

    # Then the UNI cost 500 + the gas' 20
    assert ledger.positions[UNI].cost_basis == Decimal(520)
    assert ledger.positions[UNI].invested == Decimal(520)


def test_given_gas_paid_in_eth_then_the_coins_leave_their_lots_at_cost_without_pnl() -> None:
    ledger = replay(uni_bought_with_eth_gas())

    # Then 0.01 ETH left the ETH lots at their cost (10), and nothing was realized on ETH
    eth = ledger.positions[ETH]
    assert eth.amount == Decimal("0.99")
    assert eth.cost_basis == Decimal(990)
    assert eth.cost_paid_as_fees == Decimal(10)
    assert eth.realized_pnl == 0


def test_given_gas_paid_in_eth_then_invested_counts_the_money_once() -> None:
    # Given ETH worth 2000 and UNI worth 5
    view = value_portfolio(
        "alice", replay(uni_bought_with_eth_gas()), {ETH.key: quote(ETH.key, "2000"), UNI.key: quote(UNI.key, "5")}
    )

    # Then invested is 1000 + 520 - the 10 of cost the gas coins carried over into the UNI cost
    assert view.summary.invested_usd == Decimal(1510)
    # And value = invested + total P&L: 1980 + 500 = 1510 + 970
    assert view.summary.total_value_usd == Decimal(2480)
    assert view.summary.total_pnl_usd == Decimal(970)


def test_given_no_fee_value_then_the_gas_is_valued_at_its_coins_cost() -> None:
    # Given the fee's value unknown (no feeUsd, no market price)
    ledger = replay(uni_bought_with_eth_gas(fee_usd=None))

    # Then the UNI cost carries the gas coins' cost: 500 + 10
    assert ledger.positions[UNI].cost_basis == Decimal(510)


def test_given_a_sale_with_gas_in_eth_then_the_fee_lowers_the_proceeds() -> None:
    # Given 100 UNI at 5 and 1 ETH at 1000, When the UNI are sold at 6 paying 0.01 ETH (worth 20) of gas
    history = [
        tx("buy", "1", price="1000", hour=0),
        tx("buy", "100", price="5", token=UNI_ETHEREUM, hour=0),
        tx("sell", "100", price="6", token=UNI_ETHEREUM, fee="20", fee_token=EVM_NATIVE, fee_amount="0.01", hour=1),
    ]
    ledger = replay(history)

    # Then the sale realizes 600 - 20 - 500, and the ETH lots lose 0.01 ETH at cost
    assert ledger.positions[UNI].realized_pnl == Decimal(80)
    assert ledger.positions[ETH].cost_basis == Decimal(990)


@pytest.mark.parametrize("method", list(CostBasisMethod))
def test_given_more_gas_than_eth_held_then_it_is_refused_naming_the_fee(method: CostBasisMethod) -> None:
    history = [tx("buy", "100", price="5", token=UNI_ETHEREUM, fee_token=EVM_NATIVE, fee_amount="0.01", hour=1)]
    with pytest.raises(OverdraftError) as refused:
        replay(history, method)
    assert refused.value.field == "feeAmount"


def test_given_a_history_that_accepts_missing_acquisitions_then_unheld_gas_is_a_missing_acquisition() -> None:
    history = [tx("buy", "100", price="5", token=UNI_ETHEREUM, fee="20", fee_token=EVM_NATIVE, fee_amount="0.01")]
    ledger = replay(history, accept_missing=True)
    assert ledger.positions[ETH].missing_amount == Decimal("0.01")
    assert ledger.positions[UNI].cost_basis == Decimal(520)


def test_given_a_fee_kept_out_of_the_coins_bought_then_fewer_arrive_at_the_same_cost() -> None:
    # Given 1 ETH bought at 3000, the exchange keeping 0.01 ETH of it as its fee
    history = [tx("buy", "1", price="3000", fee="30", fee_token=EVM_NATIVE, fee_amount="0.01")]

    # When replayed, Then 0.99 ETH is held at the 3000 paid: the fee is inside that cost already
    eth = replay(history).positions[ETH]
    assert (eth.amount, eth.cost_basis, eth.invested) == (Decimal("0.99"), 3000, 3000)


def test_given_a_kept_back_fee_of_all_the_coins_then_the_transaction_is_refused() -> None:
    with pytest.raises(ValueError, match="less than their amount"):
        tx("buy", "1", price="3000", fee_token=EVM_NATIVE, fee_amount="1")


def test_given_gas_in_eth_on_a_transfer_out_then_the_coins_are_spent_at_their_cost() -> None:
    # Given 1 ETH bought at 1000 and 100 USDC at 1; 50 USDC sent out paying 0.01 ETH of gas (worth 20)
    history = [
        tx("buy", "1", price="1000", hour=0),
        tx("buy", "100", price="1", token=USDC_ETHEREUM, hour=0),
        tx("transfer_out", "50", price="1", token=USDC_ETHEREUM, fee="20", fee_token=EVM_NATIVE, fee_amount="0.01"),
    ]
    ledger = replay(history)

    # Then the gas coins' cost (10) is the expense, realized on ETH, and counted once
    eth = ledger.positions[ETH]
    assert (eth.realized_pnl, eth.cost_paid_as_fees) == (-10, 0)
    assert ledger.positions[TokenId("ethereum", USDC_ETHEREUM)].fees_expensed == 0
    # And with ETH at 2000 the P&L is what the value says: 1980 + 50 held + 50 sent out - 1100 put in = 980
    view = value_portfolio(
        "alice", ledger, {ETH.key: quote(ETH.key, "2000"), f"ethereum:{USDC_ETHEREUM}": quote("x", "1")}
    )
    assert view.summary.total_pnl_usd == Decimal(980)


def test_given_a_tagged_sale_paying_gas_in_the_coin_sold_that_is_not_held_then_the_wallet_is_not_short() -> None:
    # Given a portfolio accepting missing acquisitions, and a wallet-tagged sale of 1 ETH paying 0.01 ETH of gas
    sale = tx("sell", "1", price="2000", fee="20", fee_token=EVM_NATIVE, fee_amount="0.01")
    tagged = sale.model_copy(update={"wallet_id": "w0000000000000001"})

    # When replayed, Then both were missing, and the wallet accounts for nothing either way
    ledger = replay([tagged], accept_missing=True)
    assert ledger.positions[ETH].missing_amount == Decimal("1.01")
    assert ledger.wallet_amount("w0000000000000001", ETH) == 0
