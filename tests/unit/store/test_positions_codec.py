"""The stored form of positions: whatever a history leaves, it reads back digit for digit."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from portfolio.adapters.positions_codec import UnreadablePositionsError, decode_positions, encode_positions
from portfolio.domain.accounting import Ledger, replay
from portfolio.domain.portfolio_record import CostBasisMethod

from tests.unit.domain.test_accounting_properties import History, histories, methods


@settings(max_examples=150, deadline=None)
@given(history=histories(), method=methods)
def test_given_the_positions_of_any_history_when_stored_and_read_back_then_they_are_equal(
    history: History, method: CostBasisMethod
) -> None:
    ledger = replay(history.transactions, method)

    assert decode_positions(encode_positions(ledger)) == ledger


def test_given_no_transactions_when_stored_and_read_back_then_an_empty_ledger() -> None:
    empty = Ledger.empty(CostBasisMethod.AVERAGE)

    assert decode_positions(encode_positions(empty)) == empty


@pytest.mark.parametrize(
    "blob",
    [b"not compressed", zlib.compress(b"{not json"), zlib.compress(b'{"v": 99}'), zlib.compress(b'{"v": 1}')],
    ids=["not-zlib", "not-json", "unknown-format", "fields-missing"],
)
def test_given_a_damaged_or_unknown_blob_when_read_then_it_says_so(blob: bytes) -> None:
    with pytest.raises(UnreadablePositionsError):
        decode_positions(blob)
