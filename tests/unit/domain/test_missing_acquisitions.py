"""Missing acquisitions: removing more than is held, refused by default, accepted as acquired at cost
zero when the portfolio says so, and reported."""

from __future__ import annotations

import json
import zlib
from datetime import timedelta
from decimal import Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from portfolio.adapters.positions_codec import decode_positions, encode_positions
from portfolio.domain.accounting import extend, replay
from portfolio.domain.arithmetic import EXACT
from portfolio.domain.errors import OverdraftError
from portfolio.domain.portfolio_record import CostBasisMethod
from portfolio.domain.tokens import TokenId
from portfolio.domain.transactions import Transaction

from tests.unit.domain.builders import EVM_NATIVE, T0, tx

ETH = TokenId("ethereum", EVM_NATIVE)
ETH_ARBITRUM = TokenId("arbitrum", EVM_NATIVE)


def test_given_the_default_when_selling_more_than_is_held_then_it_is_refused() -> None:
    with pytest.raises(OverdraftError):
        replay([tx("buy", "1", price="100", hour=0), tx("sell", "3", price="50", hour=1)])


@pytest.mark.parametrize("method", list(CostBasisMethod))
def test_given_missing_acquisitions_accepted_when_selling_more_than_is_held_then_the_rest_was_acquired_at_zero(
    method: CostBasisMethod,
) -> None:
    # Given 1 ETH bought at 100, When 3 are sold at 50 each
    ledger = replay(
        [tx("buy", "1", price="100", hour=0), tx("sell", "3", price="50", hour=1)], method, accept_missing=True
    )

    # Then 2 ETH were missing acquisitions: cost zero, so their 100 of proceeds are all gain, labelled
    eth = ledger.positions[ETH]
    assert (eth.amount, eth.missing_amount) == (0, 2)
    assert eth.cost_sold == 100
    assert eth.realized_pnl == Decimal(150) - Decimal(100)
    assert eth.missing_pnl == 100
    assert ledger.missing_pnl == 100


def test_given_missing_acquisitions_accepted_when_sending_out_more_than_is_held_then_no_pnl_and_cost_at_zero() -> None:
    ledger = replay([tx("buy", "1", price="100", hour=0), tx("transfer_out", "1.5", hour=1)], accept_missing=True)

    eth = ledger.positions[ETH]
    assert (eth.amount, eth.missing_amount, eth.withdrawn_cost, eth.realized_pnl, eth.missing_pnl) == (
        0,
        Decimal("0.5"),
        100,
        0,
        0,
    )


def test_given_missing_acquisitions_accepted_when_bridging_more_than_is_held_then_all_of_it_arrives() -> None:
    # Given 1 ETH at 100 on Ethereum, When 2 are bridged to Arbitrum
    ledger = replay(
        [
            tx("buy", "1", price="100", hour=0),
            tx("bridge", "2", hour=1, to_chain="arbitrum", to_token=EVM_NATIVE),
            tx("sell", "2", price="300", chain="arbitrum", hour=2),
        ],
        accept_missing=True,
    )

    # Then the missing ETH arrives at cost zero with the rest, and the sale realizes 600 - 100
    assert ledger.positions[ETH].missing_amount == 1
    assert ledger.positions[ETH_ARBITRUM].realized_pnl == 500


def test_given_positions_stored_before_missing_acquisitions_were_kept_when_read_then_they_count_none() -> None:
    # Given positions in the stored form of before (two running totals fewer in every row)
    ledger = replay([tx("buy", "2", price="100", hour=0), tx("sell", "1", price="150", hour=1)])
    holdings, lots = encode_positions(ledger)
    document = json.loads(zlib.decompress(holdings))
    for row in document["p"]:
        del row[-3:-1]  # the two newest totals, just before the category
    older = zlib.compress(json.dumps(document).encode())

    # When they are read, Then they are the same positions, with nothing missing
    assert decode_positions(older, lots) == ledger


amounts = st.integers(min_value=1, max_value=10**21).map(lambda wei: Decimal(wei).scaleb(-18))
prices = st.integers(min_value=0, max_value=10**9).map(lambda cents: Decimal(cents).scaleb(-2))


@st.composite
def careless_histories(draw: st.DrawFn) -> list[Transaction]:
    """Buys, sales and sends of one token in any amounts: many remove more than is held."""
    transactions = []
    for index in range(draw(st.integers(min_value=1, max_value=15))):
        kind = draw(st.sampled_from(["buy", "sell", "transfer_out"]))
        fields = {
            "id": f"t{index:03d}",
            "type": kind,
            "chain": "ethereum",
            "tokenAddress": EVM_NATIVE,
            "amount": str(draw(amounts)),
            "timestamp": (T0 + timedelta(minutes=index)).isoformat(),
        }
        if kind != "transfer_out":
            fields["priceUsd"] = str(draw(prices))
        transactions.append(Transaction.model_validate(fields))
    return transactions


@settings(max_examples=150, deadline=None)
@given(history=careless_histories(), method=st.sampled_from(list(CostBasisMethod)), data=st.data())
def test_given_any_history_when_missing_acquisitions_are_accepted_then_amounts_and_cost_are_conserved(
    history: list[Transaction], method: CostBasisMethod, data: st.DataObject
) -> None:
    ledger = replay(history, method, accept_missing=True)

    eth = ledger.positions[ETH]
    with localcontext(EXACT):
        received = sum((t.amount for t in history if t.type == "buy"), Decimal(0))
        sent = sum((t.amount for t in history if t.type != "buy"), Decimal(0))
    # amount in + missing = amount out + held; cost in = cost out + cost held (missing cost nothing)
    with localcontext(EXACT):
        assert received + eth.missing_amount == sent + eth.amount
        assert eth.invested == eth.cost_basis + eth.cost_sold + eth.withdrawn_cost
    # and the stored form extends and reads back like a replay
    cut = data.draw(st.integers(min_value=0, max_value=len(history)))
    assert extend(replay(history[:cut], method, accept_missing=True), history[cut:]) == ledger
    assert decode_positions(*encode_positions(ledger)) == ledger
