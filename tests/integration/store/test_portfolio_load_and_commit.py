"""Loading and committing a portfolio: exact Decimals, one Query per load, optimistic locking, idempotent ids."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from portfolio.adapters.portfolio_store import (
    TransactionNotFound,
    TransactionsExist,
    VersionConflict,
)
from portfolio.domain.errors import InvalidInputError
from portfolio.domain.portfolio_record import CostBasisMethod, PortfolioRecord
from portfolio.domain.prices import PriceQuote, PriceSource
from portfolio.domain.views import HistoryPoint, Resolution

from tests.integration.store.builders import T0, USDC_ETHEREUM, WETH_BASE, a_transaction, expiry, minutes

PRICED_AT = datetime(2024, 5, 1, 12, 5, tzinfo=UTC)


def a_record(user_id: str, **changes) -> PortfolioRecord:
    quote = PriceQuote(
        token=f"ethereum:{USDC_ETHEREUM}",
        price=Decimal("0.999912345678901234"),
        symbol="USDC",
        decimals=6,
        timestamp=PRICED_AT,
        confidence=Decimal("0.99"),
        source=PriceSource.FRESH,
    )
    return PortfolioRecord(
        user_id=user_id,
        cost_basis_method=CostBasisMethod.AVERAGE,
        prices={quote.token: quote},
        prices_as_of=PRICED_AT,
        updated_at=PRICED_AT,
    ).model_copy(update=changes)


def test_given_a_user_with_nothing_stored_when_loaded_then_an_empty_portfolio_at_version_0(store, user_id):
    snapshot = store.load(user_id)

    assert snapshot.record == PortfolioRecord(user_id=user_id, version=0)
    assert snapshot.transactions == ()


def test_given_18_decimal_amounts_and_prices_when_committed_and_loaded_then_every_digit_is_kept(store, user_id):
    # Given a transaction with an 18-decimal amount and a record with an 18-decimal price
    bought = a_transaction("t-1", amount="1234567.123456789012345678", price_usd="3012.000000000000000001")
    record = a_record(user_id)

    # When it is committed and read back
    stored = store.commit(user_id, expected_version=0, record=record, put_transactions=[bought])
    snapshot = store.load(user_id)

    # Then nothing was rounded and the version moved to 1
    assert stored.version == 1
    assert snapshot.record == record.model_copy(update={"version": 1})
    assert snapshot.transactions == (bought,)
    assert snapshot.transactions[0].amount == Decimal("1234567.123456789012345678")
    assert snapshot.record.prices[f"ethereum:{USDC_ETHEREUM}"].price == Decimal("0.999912345678901234")


def test_given_a_portfolio_with_transactions_and_history_when_loaded_then_one_query_returns_all_but_history(
    store, user_id, call_log
):
    # Given a record, transactions and history points in the same partition
    transactions = [a_transaction(f"t-{n}", at=T0 + minutes(n)) for n in range(5)]
    store.commit(user_id, expected_version=0, record=a_record(user_id), put_transactions=transactions)
    point = HistoryPoint(timestamp=T0, value_usd=Decimal(1), invested_usd=Decimal(1), total_pnl_usd=Decimal(0))
    store.put_history_points([(user_id, Resolution.HOURLY, T0, point, expiry(Resolution.HOURLY, T0))])
    call_log.clear()

    # When the portfolio is loaded
    snapshot = store.load(user_id)

    # Then exactly one Query was sent, and it brought every transaction in replay order
    assert call_log.operations() == ["Query"]
    assert [transaction.id for transaction in snapshot.transactions] == [f"t-{n}" for n in range(5)]
    assert snapshot.record.version == 1


def test_given_two_writers_at_the_same_version_when_both_commit_then_one_wins_and_the_other_retries_after_rereading(
    store, user_id
):
    # Given a portfolio at version 1 that two writers have read
    store.commit(user_id, expected_version=0, record=a_record(user_id), put_transactions=[a_transaction("t-0")])
    first_read = store.load(user_id)
    second_read = store.load(user_id)

    # When the first writer commits, then the second commits with the same expected version
    store.commit(
        user_id,
        expected_version=first_read.record.version,
        record=first_read.record,
        put_transactions=[a_transaction("t-first", at=T0 + minutes(1))],
    )
    with pytest.raises(VersionConflict):
        store.commit(
            user_id,
            expected_version=second_read.record.version,
            record=second_read.record,
            put_transactions=[a_transaction("t-second", at=T0 + minutes(2))],
        )

    # Then the loser's transaction was not written; after re-reading, its retry succeeds and both are kept
    assert [t.id for t in store.load(user_id).transactions] == ["t-0", "t-first"]
    reread = store.load(user_id, consistent_read=True)
    store.commit(
        user_id,
        expected_version=reread.record.version,
        record=reread.record,
        put_transactions=[a_transaction("t-second", at=T0 + minutes(2))],
    )
    final = store.load(user_id)
    assert [t.id for t in final.transactions] == ["t-0", "t-first", "t-second"]
    assert final.record.version == 3


def test_given_a_stored_transaction_when_the_same_id_is_committed_again_then_it_is_reported_and_not_overwritten(
    store, user_id
):
    # Given a stored transaction t-1 of 1.5
    store.commit(user_id, expected_version=0, record=a_record(user_id), put_transactions=[a_transaction("t-1")])

    # When t-1 arrives again with another amount, together with a new transaction
    with pytest.raises(TransactionsExist) as raised:
        store.commit(
            user_id,
            expected_version=1,
            record=a_record(user_id),
            put_transactions=[a_transaction("t-2"), a_transaction("t-1", amount="999")],
        )

    # Then t-1 is reported, the stored t-1 is unchanged and nothing of the commit was applied
    assert raised.value.ids == ("t-1",)
    snapshot = store.load(user_id)
    assert [(t.id, t.amount) for t in snapshot.transactions] == [("t-1", Decimal("1.5"))]
    assert snapshot.record.version == 1


def test_given_a_stored_transaction_when_deleted_at_the_current_version_then_it_is_gone(store, user_id):
    store.commit(
        user_id,
        expected_version=0,
        record=a_record(user_id),
        put_transactions=[a_transaction("t-1"), a_transaction("t-2", at=T0 + minutes(1))],
    )

    store.commit(user_id, expected_version=1, record=a_record(user_id), delete_transaction_ids=["t-1"])

    snapshot = store.load(user_id)
    assert [t.id for t in snapshot.transactions] == ["t-2"]
    assert snapshot.record.version == 2


def test_given_a_stale_version_when_deleting_then_version_conflict_and_the_transaction_stays(store, user_id):
    store.commit(user_id, expected_version=0, record=a_record(user_id), put_transactions=[a_transaction("t-1")])
    store.save_record(a_record(user_id), expected_version=1)  # someone else moved it to version 2

    with pytest.raises(VersionConflict):
        store.commit(user_id, expected_version=1, record=a_record(user_id), delete_transaction_ids=["t-1"])

    assert [t.id for t in store.load(user_id).transactions] == ["t-1"]


def test_given_an_unknown_transaction_id_when_deleted_then_transaction_not_found(store, user_id):
    store.commit(user_id, expected_version=0, record=a_record(user_id), put_transactions=[a_transaction("t-1")])

    with pytest.raises(TransactionNotFound) as raised:
        store.commit(user_id, expected_version=1, record=a_record(user_id), delete_transaction_ids=["t-missing"])

    assert raised.value.transaction_id == "t-missing"
    assert store.load(user_id).record.version == 1


def test_given_100_transactions_when_committed_then_they_go_in_two_chunks_and_all_are_stored(
    store_on_fresh_table, user_id, call_log
):
    # Given one transaction more than a TransactWriteItems call holds next to the portfolio item
    transactions = [
        a_transaction(f"t-{n:03d}", at=T0 + minutes(n), chain="base", token_address=WETH_BASE) for n in range(100)
    ]

    # When they are committed at once
    stored = store_on_fresh_table.commit(
        user_id, expected_version=0, record=a_record(user_id), put_transactions=transactions
    )

    # Then two conditional chunks were written (99 + the item, then 1 + the item), each bumping the version
    chunk_sizes = [len(params["TransactItems"]) for name, params in call_log.calls if name == "TransactWriteItems"]
    assert chunk_sizes == [100, 2]
    snapshot = store_on_fresh_table.load(user_id)
    assert stored.version == snapshot.record.version == 2
    assert snapshot.transactions == tuple(transactions)


def test_given_a_chunked_commit_when_a_later_chunk_is_refused_then_the_error_names_what_earlier_chunks_stored(
    store_on_fresh_table, user_id
):
    # Given t-099 is already stored
    store_on_fresh_table.commit(
        user_id, expected_version=0, record=a_record(user_id), put_transactions=[a_transaction("t-099")]
    )
    transactions = [a_transaction(f"t-{n:03d}", at=T0 + minutes(n)) for n in range(100)]

    # When 100 transactions including t-099 are committed (t-099 falls in the second chunk)
    with pytest.raises(TransactionsExist) as raised:
        store_on_fresh_table.commit(
            user_id, expected_version=1, record=a_record(user_id), put_transactions=transactions
        )

    # Then t-099 is reported, and the first chunk's 99 transactions are stored and named in the error
    assert raised.value.ids == ("t-099",)
    assert raised.value.committed_transaction_ids == tuple(f"t-{n:03d}" for n in range(99))
    snapshot = store_on_fresh_table.load(user_id)
    assert len(snapshot.transactions) == 100
    assert snapshot.record.version == 2


def test_given_a_refresh_when_it_saves_the_record_at_a_stale_version_then_version_conflict(store, user_id):
    store.commit(user_id, expected_version=0, record=a_record(user_id), put_transactions=[a_transaction("t-1")])
    repriced = a_record(user_id, cost_basis_method=CostBasisMethod.FIFO)

    saved = store.save_record(repriced, expected_version=1)
    with pytest.raises(VersionConflict):
        store.save_record(repriced, expected_version=1)

    assert saved.version == 2
    assert store.load(user_id).record == repriced.model_copy(update={"version": 2})


def test_given_the_same_id_twice_in_one_commit_when_committed_then_it_is_refused_before_any_write(
    store, user_id, call_log
):
    with pytest.raises(InvalidInputError):
        store.commit(
            user_id,
            expected_version=0,
            record=a_record(user_id),
            put_transactions=[a_transaction("t-1"), a_transaction("t-1")],
        )

    assert call_log.count("TransactWriteItems") == 0
