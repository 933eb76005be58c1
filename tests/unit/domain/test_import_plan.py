"""A large import is stored in steps; a reader between two steps, or a step that fails, must still
find a history that replays without an overdraft."""

from __future__ import annotations

import pytest
from portfolio.domain.accounting import replay
from portfolio.domain.errors import OverdraftError
from portfolio.domain.import_plan import (
    ImportNotSplittable,
    ImportTooCostly,
    actions_of,
    check_replay_cost,
    plan_appended,
    plan_import,
)
from portfolio.domain.portfolio_record import CostBasisMethod

from tests.unit.domain.builders import EVM_NATIVE, USDC_ARBITRUM, USDC_ETHEREUM, tx

FIFO = CostBasisMethod.FIFO
MAX_TRANSACTIONS = 50_000


def plan(stored, new, *, max_actions):
    return plan_import(lambda prefix: replay([*stored, *prefix], FIFO), new, max_actions=max_actions)


def assert_every_prefix_replays(stored, steps):
    done = list(stored)
    for step in steps:
        done += step
        replay(done, FIFO)  # raises on an overdraft


def test_given_sells_listed_before_the_buy_that_funds_them_when_planned_then_every_step_is_valid():
    # Given 99 sells of 1 ETH, listed before the earlier buy of 100 ETH that funds them
    sells = [tx("sell", "1", price="2000", hour=10 + n) for n in range(99)]
    funding = tx("buy", "100", price="1000", hour=1)

    # When planned in steps of at most 99 writes (98 transactions and the ETH holder count)
    steps = plan([], [*sells, funding], max_actions=99)

    # Then the buy lands first and no prefix overdraws
    assert [len(step) for step in steps] == [98, 2]
    assert steps[0][0] == funding
    assert_every_prefix_replays([], steps)


def test_given_a_small_import_when_planned_then_it_is_one_step_as_sent():
    new = [tx("buy", "1", price="10", hour=2), tx("sell", "1", price="12", hour=3)]

    assert plan([], new, max_actions=99) == [new]


def test_given_an_import_that_overdraws_when_planned_then_nothing_is_planned():
    with pytest.raises(OverdraftError):
        plan([], [tx("buy", "1", price="10", hour=1), tx("sell", "2", price="10", hour=2)], max_actions=2)


def test_given_a_bridge_funding_a_stored_sale_when_steps_could_strand_it_then_a_valid_order_is_found():
    # Given stored: 10 USDC on ethereum and a sale of 10 USDC on arbitrum funded by it through a bridge
    stored = [
        tx("buy", "10", price="1", chain="ethereum", token=USDC_ETHEREUM, hour=1),
        tx("bridge", "10", chain="ethereum", token=USDC_ETHEREUM, to_chain="arbitrum", to_token=USDC_ARBITRUM, hour=2),
        tx("sell", "10", price="1", chain="arbitrum", token=USDC_ARBITRUM, hour=3),
    ]
    # And new: more buys and sells on both chains, more than one step's worth
    new = [tx("buy", "1", price="1", chain="ethereum", token=USDC_ETHEREUM, hour=4 + n) for n in range(5)]
    new += [tx("sell", "1", price="1", chain="ethereum", token=USDC_ETHEREUM, hour=20 + n) for n in range(5)]

    steps = plan(stored, new, max_actions=4)  # 3 transactions and one holder count

    assert sum(len(step) for step in steps) == 10
    assert_every_prefix_replays(stored, steps)


def test_given_a_history_that_only_holds_together_when_planned_then_the_client_is_told_to_split_it():
    # Given a stored sale of 1 ETH at hour 10, funded by the stored buy
    stored = [tx("buy", "1", price="10", hour=1), tx("sell", "1", price="10", hour=10)]
    # And new: 1 ETH received on Arbitrum, a sale on Ethereum at hour 5, refunded by a bridge at hour 6
    new = [
        tx("transfer_in", "1", chain="arbitrum", hour=4),
        tx("sell", "1", price="10", hour=5),
        tx("bridge", "1", chain="arbitrum", to_chain="ethereum", to_token=EVM_NATIVE, hour=6),
    ]

    # When steps of one transaction are all that is allowed, the sale cannot land without the bridge
    with pytest.raises(ImportNotSplittable) as refused:
        plan(stored, new, max_actions=2)

    # Then the client is told how to send it, and with room for both in a step it is planned
    assert refused.value.field == "transactions"
    assert_every_prefix_replays(stored, plan(stored, new, max_actions=5))


def test_given_a_step_of_transactions_then_its_writes_count_every_token_it_touches():
    bridge = tx("bridge", "1", chain="arbitrum", to_chain="ethereum", to_token=EVM_NATIVE, hour=6)

    assert actions_of([tx("buy", "1", price="10", hour=1), tx("sell", "1", price="10", hour=2)]) == 3
    assert actions_of([bridge]) == 3


def test_given_a_plain_backdated_import_when_planned_then_only_the_complete_history_is_replayed():
    # Given: a stored history, and 500 buys and sells (no fee in another token) dated before it
    stored = [tx("buy", "1000", price="10", hour=5000), tx("sell", "1", price="11", hour=5001)]
    new = [tx("buy", "2", price="10", hour=2 * n) for n in range(250)]
    new += [tx("sell", "1", price="12", hour=2 * n + 1) for n in range(250)]
    replays = []

    def counted_replay(prefix):
        replays.append(len(prefix))
        return replay([*stored, *prefix], FIFO)

    # When
    steps = plan_import(counted_replay, new, max_actions=99)

    # Then: six steps, one replay (of the whole import), and every prefix still replays
    assert len(steps) == 6
    assert replays == [500]
    assert_every_prefix_replays(stored, steps)


def test_given_transactions_after_the_stored_history_when_planned_as_appended_then_steps_follow_time():
    new = [tx("sell", "1", price="12", hour=100 + n) for n in range(150)] + [tx("buy", "150", price="10", hour=1)]

    steps = plan_appended(new, max_actions=99)

    assert [len(step) for step in steps] == [98, 53]
    assert steps[0][0].type == "buy"
    flattened = [transaction for step in steps for transaction in step]
    assert flattened == sorted(new, key=lambda transaction: transaction.sort_key)
    assert_every_prefix_replays([], steps)


def test_given_a_backdated_import_within_the_replay_bound_or_in_one_step_when_checked_then_it_passes():
    check_replay_cost(stored=1_000, new=1_000, steps=11)  # 11 replays of 2,000
    check_replay_cost(stored=MAX_TRANSACTIONS, new=98, steps=1)  # one step: one replay, whatever the history


def test_given_a_large_history_when_a_backdated_import_needs_many_replays_then_it_is_refused_with_a_size_that_fits():
    with pytest.raises(ImportTooCostly) as refused:
        check_replay_cost(stored=10_000, new=2_000, steps=21)

    assert refused.value.field == "transactions"
    assert "send at most 196 per request" in refused.value.message
    check_replay_cost(stored=10_000, new=196, steps=2)  # the size it names passes
