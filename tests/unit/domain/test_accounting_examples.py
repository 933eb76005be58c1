"""Replaying transactions: hand-computed examples for every transaction type and both methods."""

from __future__ import annotations

from decimal import Decimal

import pytest
from portfolio.domain.accounting import Ledger, Position, replay
from portfolio.domain.errors import OverdraftError
from portfolio.domain.portfolio_record import CostBasisMethod
from portfolio.domain.tokens import TokenId

from tests.unit.domain.builders import EVM_NATIVE, UNI_ETHEREUM, UNLISTED_TOKEN, USDC_ETHEREUM, tx

FIFO = CostBasisMethod.FIFO
AVERAGE = CostBasisMethod.AVERAGE
ETH_ON_ETHEREUM = TokenId("ethereum", EVM_NATIVE)
ETH_ON_ARBITRUM = TokenId("arbitrum", EVM_NATIVE)


def position(ledger: Ledger, token: TokenId) -> Position:
    return ledger.positions[token]


def two_buys_and_a_partial_sale() -> list:
    return [
        tx("buy", "2", price="1000", fee="10", hour=0),
        tx("buy", "1", price="1600", hour=1),
        tx("sell", "1.5", price="2000", fee="5", hour=2),
    ]


def test_given_two_buys_when_selling_part_with_fifo_then_the_oldest_lot_is_sold_first() -> None:
    # Given 2 ETH at 1000 (+10 fee: 1005 each) and 1 ETH at 1600
    # When 1.5 ETH are sold at 2000 with a fee of 5, first in first out
    ledger = replay(two_buys_and_a_partial_sale(), FIFO)

    # Then the 1.5 sold cost 1.5 * 1005 = 1507.5 and brought 3000 - 5 = 2995
    eth = position(ledger, ETH_ON_ETHEREUM)
    assert eth.realized_pnl == Decimal("1487.5")
    assert eth.amount == Decimal("1.5")
    assert eth.cost_basis == Decimal("2102.5")  # 0.5 * 1005 left of the first lot + 1600
    assert ledger.invested == Decimal("3610")


def test_given_two_buys_when_selling_part_at_average_cost_then_the_sale_costs_the_average() -> None:
    # Given the same buys, 3 ETH costing 3610 in all (1203.33... each)
    # When 1.5 ETH are sold at average cost
    ledger = replay(two_buys_and_a_partial_sale(), AVERAGE)

    # Then half the cost leaves with half the holding
    eth = position(ledger, ETH_ON_ETHEREUM)
    assert eth.realized_pnl == Decimal("1190")  # 2995 - 1805
    assert eth.cost_basis == Decimal("1805")
    assert eth.amount == Decimal("1.5")
    assert ledger.invested == Decimal("3610")


def test_given_a_transfer_in_with_a_price_then_it_is_a_lot_with_that_cost_and_counts_as_invested() -> None:
    # Given 10 UNI received at 5 each with a fee of 1
    ledger = replay([tx("transfer_in", "10", price="5", fee="1", token=UNI_ETHEREUM)], FIFO)

    # Then they cost 51, invested 51, and nothing is realized yet
    uni = position(ledger, TokenId("ethereum", UNI_ETHEREUM))
    assert (uni.cost_basis, uni.invested, uni.realized_pnl) == (Decimal("51"), Decimal("51"), Decimal("0"))

    # When they are sold at 6
    ledger = replay(
        [
            tx("transfer_in", "10", price="5", fee="1", token=UNI_ETHEREUM, hour=0),
            tx("sell", "10", price="6", token=UNI_ETHEREUM, hour=1),
        ],
        FIFO,
    )
    # Then the P&L is 60 - 51
    assert position(ledger, TokenId("ethereum", UNI_ETHEREUM)).realized_pnl == Decimal("9")


@pytest.mark.parametrize("method", list(CostBasisMethod))
def test_given_a_transfer_in_without_price_then_its_cost_is_unknown_and_its_fee_is_an_expense(
    method: CostBasisMethod,
) -> None:
    # Given 3 ETH received without a price, with a fee of 2
    ledger = replay([tx("transfer_in", "3", fee="2")], method)

    # Then the 3 ETH are held with unknown cost: no cost basis, nothing invested, the fee is a realized loss
    eth = position(ledger, ETH_ON_ETHEREUM)
    assert eth.amount == eth.unknown_amount == Decimal("3")
    assert eth.known_amount == Decimal("0")
    assert eth.cost_basis == Decimal("0")
    assert ledger.invested == Decimal("0")
    assert ledger.realized_pnl == Decimal("-2")
    assert ledger.fees_expensed == Decimal("2")


def unknown_then_known_then_sale() -> list:
    return [
        tx("transfer_in", "1", hour=0),
        tx("buy", "1", price="100", hour=1),
        tx("sell", "1", price="150", fee="10", hour=2),
    ]


def test_given_an_unknown_cost_lot_first_when_selling_with_fifo_then_its_proceeds_are_untracked_not_pnl() -> None:
    # Given 1 ETH of unknown cost, then 1 ETH bought at 100
    # When 1 ETH is sold at 150 with a fee of 10, first in first out
    ledger = replay(unknown_then_known_then_sale(), FIFO)

    # Then the unknown-cost lot was sold: its net proceeds are tracked apart, nothing is realized
    eth = position(ledger, ETH_ON_ETHEREUM)
    assert eth.realized_pnl == Decimal("0")
    assert eth.untracked_proceeds == Decimal("140")
    assert (eth.known_amount, eth.unknown_amount, eth.cost_basis) == (Decimal("1"), Decimal("0"), Decimal("100"))


def test_given_known_and_unknown_cost_amounts_when_selling_at_average_cost_then_both_leave_in_proportion() -> None:
    # Given 1 ETH of unknown cost and 1 ETH bought at 100: half the holding each
    # When 1 ETH is sold at 150 with a fee of 10 (net 140)
    ledger = replay(unknown_then_known_then_sale(), AVERAGE)

    # Then 0.5 known (cost 50, proceeds 70) and 0.5 unknown (proceeds 70) were sold
    eth = position(ledger, ETH_ON_ETHEREUM)
    assert eth.realized_pnl == Decimal("20")
    assert eth.untracked_proceeds == Decimal("70")
    assert (eth.known_amount, eth.unknown_amount, eth.cost_basis) == (Decimal("0.5"), Decimal("0.5"), Decimal("50"))


@pytest.mark.parametrize("method", list(CostBasisMethod))
def test_given_a_transfer_out_then_its_cost_is_withdrawn_without_pnl_and_its_fee_is_an_expense(
    method: CostBasisMethod,
) -> None:
    # Given 4 UNI bought at 25 each
    # When 1 UNI is sent away with a fee of 3
    ledger = replay(
        [
            tx("buy", "4", price="25", token=UNI_ETHEREUM, hour=0),
            tx("transfer_out", "1", fee="3", token=UNI_ETHEREUM, hour=1),
        ],
        method,
    )

    # Then its cost of 25 left the portfolio as withdrawn cost; only the fee is a realized loss
    uni = position(ledger, TokenId("ethereum", UNI_ETHEREUM))
    assert uni.withdrawn_cost == Decimal("25")
    assert uni.realized_pnl == Decimal("-3")
    assert (uni.amount, uni.cost_basis) == (Decimal("3"), Decimal("75"))
    assert ledger.invested == Decimal("100")


def test_given_a_bridge_then_amount_and_cost_move_to_the_other_chain_and_unknown_cost_stays_unknown() -> None:
    # Given 2 ETH bought at 1000 and 1 ETH received without a price, on Ethereum
    # When all 3 are bridged to Arbitrum with a fee of 4, then sold there at 1500
    transactions = [
        tx("buy", "2", price="1000", hour=0),
        tx("transfer_in", "1", hour=1),
        tx("bridge", "3", fee="4", to_chain="arbitrum", to_token=EVM_NATIVE, hour=2),
    ]
    bridged = replay(transactions, FIFO)
    sold = replay([*transactions, tx("sell", "3", price="1500", chain="arbitrum", hour=3)], FIFO)

    # Then after the bridge Arbitrum holds the 3 ETH with their cost of 2000 and 1 of unknown cost
    on_ethereum, on_arbitrum = position(bridged, ETH_ON_ETHEREUM), position(bridged, ETH_ON_ARBITRUM)
    assert on_ethereum.amount == Decimal("0")
    assert on_ethereum.realized_pnl == Decimal("-4")  # the bridge fee; the move itself is no P&L
    assert (on_arbitrum.amount, on_arbitrum.unknown_amount) == (Decimal("3"), Decimal("1"))
    assert on_arbitrum.cost_basis == Decimal("2000")
    assert bridged.invested == Decimal("2000")
    # And selling there realizes 3000 - 2000 on the known part; the unknown part's 1500 is untracked
    assert position(sold, ETH_ON_ARBITRUM).realized_pnl == Decimal("1000")
    assert sold.untracked_proceeds == Decimal("1500")
    assert sold.realized_pnl == Decimal("996")


def test_given_fifo_when_bridged_lots_arrive_then_they_queue_by_when_they_were_first_acquired() -> None:
    # Given 1 ETH bought on Ethereum at 1000 (hour 0) and 1 ETH bought on Arbitrum at 3000 (hour 5)
    # When the Ethereum ETH is bridged to Arbitrum (hour 6) and 1 ETH is sold there at 2500
    ledger = replay(
        [
            tx("buy", "1", price="1000", hour=0),
            tx("buy", "1", price="3000", chain="arbitrum", hour=5),
            tx("bridge", "1", to_chain="arbitrum", to_token=EVM_NATIVE, hour=6),
            tx("sell", "1", price="2500", chain="arbitrum", hour=7),
        ],
        FIFO,
    )

    # Then the bridged lot, acquired first, is the one sold
    on_arbitrum = position(ledger, ETH_ON_ARBITRUM)
    assert on_arbitrum.realized_pnl == Decimal("1500")
    assert on_arbitrum.cost_basis == Decimal("3000")


def test_given_more_sold_than_held_then_the_overdraft_names_the_holding_amounts_and_transaction() -> None:
    # Given 100 USDC
    # When 150 are sold
    with pytest.raises(OverdraftError) as raised:
        replay(
            [
                tx("buy", "100", price="1", token=USDC_ETHEREUM, hour=0),
                tx("sell", "150", price="1", token=USDC_ETHEREUM, hour=1, id="sell-too-much"),
            ]
        )

    # Then the error says which holding, how much there was, how much was asked and by which transaction
    error = raised.value
    assert error.holding == f"ethereum:{USDC_ETHEREUM} (USDC)"
    assert (error.available, error.requested) == (Decimal("100"), Decimal("150"))
    assert error.transaction_id == "sell-too-much"
    assert f"ethereum:{USDC_ETHEREUM} (USDC)" in str(error)
    assert "sell-too-much" in str(error)
    assert error.code == "insufficient_holding"


def test_given_a_sale_dated_before_its_buy_then_replay_order_makes_it_an_overdraft() -> None:
    # Given a list where the buy comes first but is dated after the sale
    transactions = [
        tx("buy", "1", price="100", hour=2),
        tx("sell", "1", price="100", hour=1, id="early-sale"),
    ]

    # When replayed, Then the sale finds nothing held yet
    with pytest.raises(OverdraftError) as raised:
        replay(transactions)
    assert raised.value.available == Decimal("0")
    assert raised.value.transaction_id == "early-sale"


@pytest.mark.parametrize("kind", ["transfer_out", "bridge"])
def test_given_an_unlisted_token_when_moving_more_than_held_then_the_overdraft_names_chain_and_address(
    kind: str,
) -> None:
    destination = {"to_chain": "base", "to_token": UNLISTED_TOKEN} if kind == "bridge" else {}
    with pytest.raises(OverdraftError) as raised:
        replay(
            [
                tx("buy", "5", price="1", token=UNLISTED_TOKEN, hour=0),
                tx(kind, "5.000000000000000001", token=UNLISTED_TOKEN, hour=1, **destination),
            ]
        )
    assert raised.value.holding == f"ethereum:{UNLISTED_TOKEN}"
    assert raised.value.requested == Decimal("5.000000000000000001")


def test_given_transactions_at_the_same_moment_then_their_ids_decide_the_order() -> None:
    buy_first = [tx("sell", "1", price="1", hour=0, id="b-sell"), tx("buy", "1", price="1", hour=0, id="a-buy")]
    sell_first = [tx("buy", "1", price="1", hour=0, id="b-buy"), tx("sell", "1", price="1", hour=0, id="a-sell")]

    assert replay(buy_first).positions[ETH_ON_ETHEREUM].amount == Decimal("0")
    with pytest.raises(OverdraftError):
        replay(sell_first)


@pytest.mark.parametrize("method", list(CostBasisMethod))
def test_given_wei_sized_amounts_then_they_stay_exact(method: CostBasisMethod) -> None:
    # Given 3 wei of ETH bought at 1000
    # When 1 wei is sold at 2000
    ledger = replay(
        [
            tx("buy", "0.000000000000000003", price="1000", hour=0),
            tx("sell", "0.000000000000000001", price="2000", hour=1),
        ],
        method,
    )

    # Then exactly 2 wei are left and the P&L is exactly 1e-15 USD
    eth = position(ledger, ETH_ON_ETHEREUM)
    assert eth.amount == Decimal("0.000000000000000002")
    assert eth.realized_pnl == Decimal("0.000000000000001")
    assert eth.cost_basis == Decimal("0.000000000000002")


@pytest.mark.parametrize("method", list(CostBasisMethod))
def test_given_a_cost_that_does_not_divide_evenly_then_sold_and_remaining_cost_still_add_up_exactly(
    method: CostBasisMethod,
) -> None:
    # Given 3 ETH costing 301 in all (100.333... each)
    # When 1 is sold
    ledger = replay([tx("buy", "3", price="100", fee="1", hour=0), tx("sell", "1", price="100", hour=1)], method)

    # Then the cost sold and the cost left add up to exactly what was paid
    eth = position(ledger, ETH_ON_ETHEREUM)
    assert eth.cost_sold + eth.cost_basis == Decimal("301")
    assert eth.cost_sold == Decimal("100.333333333333333333333333333333333333")
    # and selling the rest leaves no cost behind
    ledger = replay(
        [
            tx("buy", "3", price="100", fee="1", hour=0),
            tx("sell", "1", price="100", hour=1),
            tx("sell", "2", price="100", hour=2),
        ],
        method,
    )
    assert position(ledger, ETH_ON_ETHEREUM).cost_basis == Decimal("0")
    assert ledger.realized_pnl == Decimal("-1")


def test_given_closed_positions_then_they_stay_in_the_ledger_with_their_pnl() -> None:
    ledger = replay(
        [
            tx("buy", "10", price="5", token=UNI_ETHEREUM, hour=0),
            tx("sell", "10", price="7", token=UNI_ETHEREUM, hour=1),
            tx("buy", "1", price="100", hour=2),
        ]
    )
    assert [p.token for p in ledger.open_positions()] == [ETH_ON_ETHEREUM]
    assert ledger.realized_pnl == Decimal("20")
    assert ledger.transaction_count == 3
