"""Transactions of one moment count in the order they were recorded, not in the order of their ids."""

from __future__ import annotations

import pytest
from portfolio.domain.accounting import replay
from portfolio.domain.errors import OverdraftError

from tests.unit.domain.builders import tx


def test_given_a_buy_then_a_sale_of_the_same_moment_when_replayed_then_the_sale_takes_the_buys_coin() -> None:
    # Given a buy recorded before a sale of the same moment, the sale's id sorting first
    history = [
        tx("sell", "1", price="12", hour=1, id="a-sale", sequence=2),
        tx("buy", "1", price="10", hour=1, id="z-buy", sequence=1),
    ]

    # When replayed, Then the buy counts first and the sale realizes 2
    assert replay(history).realized_pnl == 2


def test_given_the_same_moment_recorded_the_other_way_round_then_the_sale_comes_first_and_is_an_overdraft() -> None:
    history = [
        tx("sell", "1", price="12", hour=1, id="a-sale", sequence=1),
        tx("buy", "1", price="10", hour=1, id="z-buy", sequence=2),
    ]

    with pytest.raises(OverdraftError):
        replay(history)


def test_given_transactions_stored_before_sequences_were_kept_then_their_ids_still_order_them() -> None:
    history = [tx("buy", "1", price="10", hour=1, id="a-buy"), tx("sell", "1", price="12", hour=1, id="b-sale")]

    assert replay(history).realized_pnl == 2
