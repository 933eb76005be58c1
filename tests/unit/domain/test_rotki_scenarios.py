"""Scenarios from rotki's published cost-basis tests (their amounts, rates and expected costs),
replayed through our lots: every method agrees with rotki where rotki computes the same thing, and
LIFO and HIFO give the answers that set them apart from FIFO."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from portfolio.domain.accounting import replay
from portfolio.domain.arithmetic import EXACT
from portfolio.domain.portfolio_record import CostBasisMethod
from portfolio.domain.tokens import TokenId
from portfolio.domain.transactions import Transaction

from tests.unit.domain.builders import EVM_NATIVE

ETH = TokenId("ethereum", EVM_NATIVE)


def at(unix: int, kind: str, amount: str, rate: str, *, id: str) -> Transaction:
    return Transaction.model_validate(
        {
            "id": id,
            "type": kind,
            "chain": "ethereum",
            "tokenAddress": EVM_NATIVE,
            "amount": amount,
            "priceUsd": rate,
            "timestamp": datetime.fromtimestamp(unix, UTC).isoformat(),
        }
    )


def three_acquisitions() -> list[Transaction]:
    """5 at 268.1 (2015-11-08), 15 at 612.45 (2016-07-01), 3 at 603.415 (2016-10-25)."""
    return [
        at(1446979735, "buy", "5", "268.1", id="a1"),
        at(1467378304, "buy", "15", "612.45", id="a2"),
        at(1477378304, "buy", "3", "603.415", id="a3"),
    ]


@pytest.mark.parametrize(
    ("method", "cost_of_eight"),
    [
        # rotki: 1340.5 from the first lot and 1837.35 from the second
        (CostBasisMethod.FIFO, "3177.85"),
        # the latest first: all 3 at 603.415, then 5 at 612.45
        (CostBasisMethod.LIFO, "4872.495"),
        # the dearest first: 8 of the 612.45 lot
        (CostBasisMethod.HIFO, "4899.6"),
        # 12337.495 / 23 * 8, on the 1e-36 grid
        (CostBasisMethod.AVERAGE, "4291.302608695652173913043478260869565217"),
    ],
)
def test_given_rotkis_three_acquisitions_when_eight_are_spent_then_each_method_costs_them_its_way(
    method: CostBasisMethod, cost_of_eight: str
) -> None:
    # Given rotki's three acquisitions, When 8 are spent on 2016-12-02
    ledger = replay([*three_acquisitions(), at(1480683904, "sell", "8", "700", id="s1")], method)

    # Then the cost of what left is the method's, to the last digit
    position = ledger.positions[ETH]
    assert position.cost_sold == Decimal(cost_of_eight)
    assert position.amount == 15
    assert position.cost_basis == EXACT.subtract(Decimal("12337.495"), Decimal(cost_of_eight))


def test_given_rotkis_hifo_order_scenario_then_the_dearest_lots_leave_first_and_the_overdraft_is_missing() -> None:
    # Given 2 at 3 and 5 at 1; 1 is spent; then 1 at 2 arrives (acquired at the first moment) and 6 are spent
    history = [
        at(1, "buy", "2", "3", id="e3"),
        at(2, "buy", "5", "1", id="e4"),
        at(3, "sell", "1", "1", id="spend-1"),
        at(4, "buy", "1", "2", id="e5"),
        at(5, "sell", "6", "1", id="spend-6"),
    ]
    ledger = replay(history, CostBasisMethod.HIFO)

    # Then the first spend took the 3 lot; the second the rest of it, the 2 lot and 4 of the 1 lot: one unit is left
    position = ledger.positions[ETH]
    assert position.cost_sold == 3 + (3 + 2 + 4)
    assert [(lot.amount, lot.cost) for lot in position.lots] == [(Decimal(1), Decimal(1))]

    # And when 1 more at 1 arrives and 3 are spent, the one not held is a missing acquisition
    # (rotki: found 2, missing 1)
    more = [*history, at(6, "buy", "1", "1", id="e7"), at(7, "sell", "3", "1", id="spend-3")]
    accepted = replay(more, CostBasisMethod.HIFO, accept_missing=True)
    assert accepted.positions[ETH].missing_amount == 1
    assert accepted.positions[ETH].amount == 0


def test_given_rotkis_average_cost_scenario_then_the_pool_keeps_the_same_cost() -> None:
    # Given 100 at 50, 50 spent, 50 more at 130 (pool: 100 costing 9000), then 40 spent
    history = [
        at(1, "buy", "100", "50", id="b1"),
        at(2, "sell", "50", "60", id="s1"),
        at(3, "buy", "50", "130", id="b2"),
        at(4, "sell", "40", "100", id="s2"),
    ]
    ledger = replay(history, CostBasisMethod.AVERAGE)

    # Then, as rotki computes: 2500 left after the first spend, 9000 for 100 after the buy, 5400 for 60 at the end
    position = ledger.positions[ETH]
    assert position.cost_sold == 2500 + 3600
    assert (position.amount, position.cost_basis) == (60, 5400)


def test_given_rotkis_second_average_cost_scenario_then_half_a_coin_leaves_at_the_average() -> None:
    # Given 1 at 100 and 1 at 200, 0.5 spent, then 0.5 at 500
    history = [
        at(3, "buy", "1", "100", id="b3"),
        at(4, "buy", "1", "200", id="b4"),
        at(5, "sell", "0.5", "300", id="s3"),
        at(6, "buy", "0.5", "500", id="b5"),
    ]
    ledger = replay(history, CostBasisMethod.AVERAGE)

    # Then 225 was left after the spend (rotki's figure) and 475 for 2 after the last buy
    position = ledger.positions[ETH]
    assert position.cost_sold == 75
    assert (position.amount, position.cost_basis) == (2, 475)
