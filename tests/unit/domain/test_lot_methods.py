"""LIFO and HIFO beside FIFO and average cost: hand-computed examples of which lots a sale takes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from portfolio.domain.accounting import replay
from portfolio.domain.portfolio_record import CostBasisMethod
from portfolio.domain.tokens import TokenId

from tests.unit.domain.builders import EVM_NATIVE, tx

ETH = TokenId("ethereum", EVM_NATIVE)


def three_buys() -> list:
    """1 ETH at 100 (January), 1 at 300 (February), 1 at 200 (March)."""
    return [
        tx("buy", "1", price="100", hour=0),
        tx("buy", "1", price="300", hour=24 * 31),
        tx("buy", "1", price="200", hour=24 * 60),
    ]


@pytest.mark.parametrize(
    ("method", "cost_of_sale", "realized"),
    [
        (CostBasisMethod.FIFO, "100", "150"),  # January's lot
        (CostBasisMethod.LIFO, "200", "50"),  # March's lot
        (CostBasisMethod.HIFO, "300", "-50"),  # February's lot, the dearest
        (CostBasisMethod.AVERAGE, "200", "50"),  # (100 + 300 + 200) / 3
    ],
)
def test_given_three_lots_when_one_is_sold_then_each_method_takes_its_own(
    method: CostBasisMethod, cost_of_sale: str, realized: str
) -> None:
    # Given three lots, When 1 ETH is sold at 250
    ledger = replay([*three_buys(), tx("sell", "1", price="250", hour=24 * 90)], method)

    # Then the lot the method picks leaves, and the rest is held at its cost
    eth = ledger.positions[ETH]
    assert eth.cost_sold == Decimal(cost_of_sale)
    assert eth.realized_pnl == Decimal(realized)
    assert eth.cost_basis == Decimal(600) - Decimal(cost_of_sale)
    assert eth.amount == 2


@pytest.mark.parametrize(
    ("method", "cost_of_sale", "left_lots"),
    [
        # 1.5 ETH: March's whole lot and half of February's; January's and half of February's stay
        (CostBasisMethod.LIFO, "350", [("1", "100"), ("0.5", "150")]),
        # 1.5 ETH: February's whole lot and half of March's
        (CostBasisMethod.HIFO, "400", [("1", "100"), ("0.5", "100")]),
    ],
)
def test_given_a_sale_larger_than_one_lot_when_replayed_then_the_next_lot_is_taken_in_part(
    method: CostBasisMethod, cost_of_sale: str, left_lots: list[tuple[str, str]]
) -> None:
    ledger = replay([*three_buys(), tx("sell", "1.5", price="250", hour=24 * 90)], method)

    eth = ledger.positions[ETH]
    assert eth.cost_sold == Decimal(cost_of_sale)
    assert eth.realized_pnl == Decimal("375") - Decimal(cost_of_sale)
    assert [(str(lot.amount), str(lot.cost)) for lot in eth.lots] == left_lots


def test_given_a_lot_of_unknown_cost_when_selling_with_hifo_then_the_known_lots_go_first() -> None:
    # Given 1 ETH received without a price, then 1 bought at 10 and 1 at 20
    history = [
        tx("transfer_in", "1", hour=0),
        tx("buy", "1", price="10", hour=1),
        tx("buy", "1", price="20", hour=2),
    ]

    # When 2.5 ETH are sold at 30, highest cost first
    eth = replay([*history, tx("sell", "2.5", price="30", hour=3)], CostBasisMethod.HIFO).positions[ETH]

    # Then the 20 lot, the 10 lot and half of the unknown one leave: the half's proceeds are untracked
    assert eth.cost_sold == Decimal(30)
    assert eth.realized_pnl == Decimal(60) - Decimal(30)
    assert eth.untracked_proceeds == Decimal(15)
    assert eth.unknown_amount == Decimal("0.5") and eth.known_amount == 0


def test_given_lots_of_equal_unit_cost_when_selling_with_hifo_then_the_earliest_goes_first() -> None:
    history = [tx("buy", "2", price="50", hour=0), tx("buy", "1", price="50", hour=5)]

    eth = replay([*history, tx("sell", "1", price="60", hour=9)], CostBasisMethod.HIFO).positions[ETH]

    assert [(str(lot.amount), lot.acquired_at.hour) for lot in eth.lots] == [("1", 0), ("1", 5)]


def test_given_income_when_replayed_then_its_value_when_received_is_income_and_the_cost_of_its_lot() -> None:
    # Given 2 ETH of staking rewards worth 50 each when received, with a fee of 1
    history = [tx("income", "2", price="50", fee="1", hour=0)]

    # When 1 is sold at 80
    eth = replay([*history, tx("sell", "1", price="80", hour=5)]).positions[ETH]

    # Then income is 100, nothing was invested, and the sale gains 80 - 50 over the reward's value
    assert (eth.income, eth.invested, eth.fees_expensed) == (100, 0, 1)
    assert eth.realized_pnl == Decimal(100) - Decimal(1) + Decimal(30)
    assert eth.cost_basis == 50


def test_given_two_lots_of_one_unit_cost_when_hifo_takes_part_of_the_first_twice_then_it_stays_first() -> None:
    # Given two lots of 3 ETH costing 20 each (a unit cost of 6.666...): rounding a part must not reorder them
    history = [tx("buy", "3", price="1", fee="17", hour=0), tx("buy", "3", price="1", fee="17", hour=5)]

    # When 1 ETH is sold twice
    eth = replay(
        [*history, tx("sell", "1", price="9", hour=9), tx("sell", "1", price="9", hour=10)], CostBasisMethod.HIFO
    ).positions[ETH]

    # Then both came out of the earlier lot
    assert [(str(lot.amount), lot.acquired_at.hour) for lot in eth.lots] == [("1", 0), ("3", 5)]
