"""Cost basis per chain or per asset: hand-computed examples of the setting costBasisScope."""

from __future__ import annotations

from decimal import Decimal

import pytest
from portfolio.domain.accounting import extend, replay
from portfolio.domain.errors import OverdraftError
from portfolio.domain.portfolio_record import CostBasisMethod, CostBasisScope
from portfolio.domain.tokens import TokenId

from tests.unit.domain.builders import EVM_NATIVE, UNLISTED_TOKEN, tx

ETH_MAINNET = TokenId("ethereum", EVM_NATIVE)
ETH_ARBITRUM = TokenId("arbitrum", EVM_NATIVE)


def two_chains() -> list:
    """1 ETH bought on Ethereum at 1000, then 1 ETH on Arbitrum at 3000."""
    return [
        tx("buy", "1", price="1000", hour=0),
        tx("buy", "1", price="3000", chain="arbitrum", hour=1),
    ]


def sale_on_arbitrum() -> list:
    return [*two_chains(), tx("sell", "1", price="2500", chain="arbitrum", hour=2)]


@pytest.mark.parametrize(
    ("method", "scope", "realized"),
    [
        (CostBasisMethod.FIFO, CostBasisScope.CHAIN, "-500"),  # Arbitrum's own lot, at 3000
        (CostBasisMethod.FIFO, CostBasisScope.ASSET, "1500"),  # the earliest ETH anywhere: Ethereum's, at 1000
        (CostBasisMethod.LIFO, CostBasisScope.ASSET, "-500"),  # the latest: Arbitrum's
        (CostBasisMethod.HIFO, CostBasisScope.ASSET, "-500"),  # the dearest: Arbitrum's
        (CostBasisMethod.AVERAGE, CostBasisScope.CHAIN, "-500"),  # Arbitrum's pool holds one lot
        (CostBasisMethod.AVERAGE, CostBasisScope.ASSET, "500"),  # one pool at (1000 + 3000) / 2
    ],
)
def test_given_eth_on_two_chains_when_arbitrum_sells_then_the_scope_decides_which_lot_leaves(
    method: CostBasisMethod, scope: CostBasisScope, realized: str
) -> None:
    # Given 1 ETH bought on Ethereum at 1000 and 1 on Arbitrum at 3000
    # When 1 ETH is sold on Arbitrum at 2500
    ledger = replay(sale_on_arbitrum(), method, scope=scope)

    # Then the realized P&L is the method's, over the scope's lots (the example: -500 per chain, +1500 pooled)
    assert ledger.realized_pnl == Decimal(realized)
    # And each chain still holds what it holds: nothing left Ethereum
    assert ledger.positions[ETH_MAINNET].amount == 1
    assert ledger.positions[ETH_ARBITRUM].amount == 0
    # And the sale is Arbitrum's: its P&L is counted there
    assert ledger.positions[ETH_ARBITRUM].realized_pnl == Decimal(realized)


def test_given_a_pooled_fifo_sale_then_the_lot_left_moves_to_the_chain_that_still_holds_coins() -> None:
    # Given the FIFO sale on Arbitrum that took Ethereum's 1000 lot
    ledger = replay(sale_on_arbitrum(), CostBasisMethod.FIFO, scope=CostBasisScope.ASSET)

    # Then Ethereum holds its 1 ETH at the lot left in the pool, Arbitrum's 3000, acquired when it was
    mainnet = ledger.positions[ETH_MAINNET]
    assert [(lot.amount, lot.cost) for lot in mainnet.lots] == [(Decimal(1), Decimal(3000))]
    assert mainnet.cost_basis == 3000
    # And the cost that changed chains is accounted for: +2000 on Ethereum, -2000 on Arbitrum
    assert mainnet.cost_pooled == 2000
    assert ledger.positions[ETH_ARBITRUM].cost_pooled == -2000


def test_given_pooled_average_cost_then_every_chain_holds_at_the_pools_average() -> None:
    # Given 2 ETH on Ethereum at 1000 and 1 on Arbitrum at 4000 (pool average 2000)
    history = [
        tx("buy", "2", price="1000", hour=0),
        tx("buy", "1", price="4000", chain="arbitrum", hour=1),
        tx("sell", "0.5", price="2000", chain="arbitrum", hour=2),
    ]

    # When 0.5 ETH is sold on Arbitrum at 2000
    ledger = replay(history, CostBasisMethod.AVERAGE, scope=CostBasisScope.ASSET)

    # Then it realizes nothing (sold at the average), and both chains hold at 2000 per ETH
    assert ledger.realized_pnl == 0
    assert ledger.positions[ETH_MAINNET].cost_basis == 4000
    assert ledger.positions[ETH_ARBITRUM].cost_basis == 1000
    assert ledger.positions[ETH_ARBITRUM].amount == Decimal("0.5")


@pytest.mark.parametrize("scope", list(CostBasisScope))
def test_given_a_bridge_then_neither_scope_changes_any_cost(scope: CostBasisScope) -> None:
    # Given 1 ETH bought at 1000 on Ethereum, bridged to Arbitrum, and sold there at 2500
    history = [
        tx("buy", "1", price="1000", hour=0),
        tx("bridge", "1", to_chain="arbitrum", to_token=EVM_NATIVE, hour=1),
        tx("sell", "1", price="2500", chain="arbitrum", hour=2),
    ]

    # When replayed under either scope, Then the sale realizes 1500 against the coin's own cost
    ledger = replay(history, CostBasisMethod.FIFO, scope=scope)
    assert ledger.realized_pnl == 1500
    assert ledger.positions[ETH_ARBITRUM].cost_bridged_in == 1000


def test_given_a_token_the_registry_does_not_know_then_it_pools_with_nothing() -> None:
    # Given an unlisted token on Ethereum and ETH on Arbitrum
    history = [
        tx("buy", "1", price="5", token=UNLISTED_TOKEN, hour=0),
        tx("buy", "1", price="3000", chain="arbitrum", hour=1),
        tx("sell", "1", price="10", token=UNLISTED_TOKEN, hour=2),
    ]

    # When the unlisted token is sold under scope asset, Then only its own lot leaves
    ledger = replay(history, CostBasisMethod.FIFO, scope=CostBasisScope.ASSET)
    assert ledger.realized_pnl == 5


def test_given_a_chain_without_the_coins_when_it_sells_then_it_is_an_overdraft_under_either_scope() -> None:
    # Given ETH only on Ethereum, When Arbitrum sells 1 ETH under scope asset
    # Then it is refused: a pool shares costs, not coins
    with pytest.raises(OverdraftError):
        replay(
            [tx("buy", "1", price="1000", hour=0), tx("sell", "1", price="2500", chain="arbitrum", hour=1)],
            CostBasisMethod.FIFO,
            scope=CostBasisScope.ASSET,
        )


def test_given_stored_pooled_positions_when_a_sale_is_added_then_they_match_a_replay() -> None:
    # Given the positions stored after the two buys under scope asset
    *buys, sale = sale_on_arbitrum()
    stored = replay(buys, CostBasisMethod.FIFO, scope=CostBasisScope.ASSET)

    # When the sale on Arbitrum is applied to them alone
    extended = extend(stored, [sale])

    # Then they equal a replay of the whole history under the same scope
    assert extended == replay([*buys, sale], CostBasisMethod.FIFO, scope=CostBasisScope.ASSET)
    assert extended.scope is CostBasisScope.ASSET


@pytest.mark.parametrize(("method", "realized"), [(CostBasisMethod.FIFO, 1000), (CostBasisMethod.LIFO, -1000)])
def test_given_lots_of_one_moment_on_two_chains_then_the_pool_takes_them_in_the_order_recorded(
    method: CostBasisMethod, realized: int
) -> None:
    # Given 1 ETH bought on Ethereum at 1000, then 1 on Arbitrum at 3000, recorded in that order at one moment
    history = [
        tx("buy", "1", price="1000", hour=0, sequence=1),
        tx("buy", "1", price="3000", chain="arbitrum", hour=0, sequence=2),
        tx("sell", "1", price="2000", chain="arbitrum", hour=1, sequence=3),
    ]

    # When Arbitrum sells 1 under scope asset, Then FIFO takes Ethereum's lot (recorded first), LIFO Arbitrum's
    ledger = replay(history, method, scope=CostBasisScope.ASSET)
    assert ledger.realized_pnl == realized
