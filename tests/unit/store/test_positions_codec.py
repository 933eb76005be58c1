"""The stored form of positions: whatever a history leaves, it reads back digit for digit, whole for
a write, and without its lots for a valuation."""

from __future__ import annotations

import json
import zlib
from dataclasses import replace

import pytest
from hypothesis import given, settings
from portfolio.adapters.positions_codec import UnreadablePositionsError, decode_positions, encode_positions
from portfolio.domain.accounting import Ledger, extend, replay
from portfolio.domain.portfolio_record import CostBasisMethod, CostBasisScope

from tests.unit.domain.builders import tx
from tests.unit.domain.test_accounting_properties import History, histories, methods, scopes


@settings(max_examples=150, deadline=None)
@given(history=histories(), method=methods, scope=scopes)
def test_given_the_positions_of_any_history_when_stored_and_read_back_whole_then_they_are_equal(
    history: History, method: CostBasisMethod, scope: CostBasisScope
) -> None:
    ledger = replay(history.transactions, method, scope=scope)

    assert decode_positions(*encode_positions(ledger)) == ledger


@settings(max_examples=150, deadline=None)
@given(history=histories(), method=methods)
def test_given_any_positions_when_read_for_valuation_then_every_figure_but_the_lots_is_the_same(
    history: History, method: CostBasisMethod
) -> None:
    ledger = replay(history.transactions, method)
    holdings, _lots = encode_positions(ledger)

    valuation_only = decode_positions(holdings)

    assert valuation_only.lots_omitted
    assert {token: replace(position, lots=()) for token, position in ledger.positions.items()} == dict(
        valuation_only.positions
    )
    assert (valuation_only.transaction_count, valuation_only.last_applied) == (
        ledger.transaction_count,
        ledger.last_applied,
    )


def test_given_positions_read_for_valuation_then_they_can_be_neither_extended_nor_stored() -> None:
    holdings, _lots = encode_positions(replay([tx("buy", "1", price="10", hour=1)]))
    valuation_only = decode_positions(holdings)

    with pytest.raises(ValueError, match="without their lots"):
        extend(valuation_only, [tx("sell", "1", price="12", hour=2)])
    with pytest.raises(ValueError, match="without their lots"):
        encode_positions(valuation_only)


def test_given_no_transactions_when_stored_and_read_back_then_an_empty_ledger() -> None:
    empty = Ledger.empty(CostBasisMethod.AVERAGE)

    assert decode_positions(*encode_positions(empty)) == empty


@pytest.mark.parametrize(
    "blob",
    [b"not compressed", zlib.compress(b"{not json"), zlib.compress(b'{"v": 1}'), zlib.compress(b'{"v": 2}')],
    ids=["not-zlib", "not-json", "older-format", "fields-missing"],
)
def test_given_a_damaged_or_unknown_blob_when_read_then_it_says_so(blob: bytes) -> None:
    with pytest.raises(UnreadablePositionsError):
        decode_positions(blob)


def test_given_positions_stored_before_sequences_were_kept_when_extended_then_later_writes_of_that_moment_follow() -> (
    None
):
    # Given positions whose latest transaction was stored as [µs, id], with no sequence
    ledger = replay([tx("buy", "1", price="10", hour=1, id="zz-last")])
    holdings, lots = encode_positions(ledger)
    document = json.loads(zlib.decompress(holdings))
    moment, _sequence, transaction_id = document["last"]
    document["last"] = [moment, transaction_id]
    older = decode_positions(zlib.compress(json.dumps(document).encode()), lots)
    assert older.last_applied == (ledger.last_applied[0], 0, "zz-last")

    # When a sale of the same moment recorded later (with a sequence) is applied to them alone
    extended = extend(older, [tx("sell", "1", price="12", hour=1, id="aa-sale", sequence=2_000_000)])

    # Then it counts after the buy, whatever its id
    assert extended.realized_pnl == 2
