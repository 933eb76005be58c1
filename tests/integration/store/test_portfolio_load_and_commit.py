"""Loading and committing a portfolio: exact Decimals, one item per load, optimistic locking, idempotent
ids, holder counts kept in the same transaction."""

from __future__ import annotations

import uuid
from decimal import Decimal

import boto3
import pytest
from portfolio.adapters.dynamodb import items
from portfolio.adapters.dynamodb.store import UnprocessedRequestsError
from portfolio.domain.accounting import replay
from portfolio.domain.arithmetic import EXACT
from portfolio.domain.errors import (
    InvalidInputError,
    PortfolioLimitError,
    TransactionNotFound,
    TransactionsExist,
    VersionConflict,
)
from portfolio.domain.portfolio_record import CostBasisMethod, PortfolioRecord
from portfolio.domain.stored_portfolio import StoredPortfolio

from tests.integration.store.builders import T0, USDC_ETHEREUM, WETH_BASE, a_transaction, minutes
from tests.integration.store.unprocessed_proxy import unprocessed_items_proxy

USDC = f"ethereum:{USDC_ETHEREUM}"
WETH = f"base:{WETH_BASE}"


def a_portfolio(user_id: str, transactions=(), method=CostBasisMethod.AVERAGE) -> StoredPortfolio:
    record = PortfolioRecord(user_id=user_id, cost_basis_method=method, updated_at=T0)
    return StoredPortfolio(record=record, ledger=replay(transactions, method))


def commit(store, user_id, transactions, *, expected_version=0, history=(), **changes):
    """Commits `transactions` on top of `history` (what is already stored)."""
    return store.commit(
        a_portfolio(user_id, [*history, *transactions]),
        expected_version=expected_version,
        put_transactions=transactions,
        **changes,
    )


def test_given_a_user_with_nothing_stored_when_loaded_then_an_empty_portfolio_at_version_0(store, user_id):
    portfolio = store.load_portfolio(user_id)

    assert portfolio.record == PortfolioRecord(user_id=user_id, version=0)
    assert portfolio.ledger.transaction_count == 0
    assert store.load_history(user_id) == ()


def test_given_18_decimal_amounts_and_prices_when_committed_and_loaded_then_every_digit_is_kept(store, user_id):
    # Given a transaction with an 18-decimal amount and price
    bought = a_transaction("t-1", amount="1234567.123456789012345678", price_usd="3012.000000000000000001")
    portfolio = a_portfolio(user_id, [bought])

    # When it is committed and read back
    stored = store.commit(portfolio, expected_version=0, put_transactions=[bought])
    loaded = store.load_portfolio(user_id)

    # Then nothing was rounded and the version moved to 1
    assert stored.version == loaded.version == 1
    assert loaded.record == portfolio.record.model_copy(update={"version": 1})
    assert loaded.ledger == portfolio.ledger
    exact_cost = EXACT.multiply(Decimal("1234567.123456789012345678"), Decimal("3012.000000000000000001"))
    assert loaded.ledger.positions[bought.token].cost_basis == exact_cost
    assert store.load_history(user_id) == (bought,)


def test_given_a_portfolio_of_many_transactions_when_loaded_then_one_get_item_brings_its_positions(
    store, user_id, call_log
):
    # Given 50 stored transactions
    transactions = [a_transaction(f"t-{n}", at=T0 + minutes(n)) for n in range(50)]
    commit(store, user_id, transactions)
    call_log.clear()

    # When the portfolio is loaded
    portfolio = store.load_portfolio(user_id)

    # Then one GetItem brought the positions of all 50, and no transaction was read
    assert call_log.operations() == ["GetItem"]
    assert portfolio.ledger.transaction_count == 50
    assert portfolio.ledger.positions[replay(transactions).held_tokens()[0]].amount == Decimal("75")


def test_given_two_writers_at_the_same_version_when_both_commit_then_one_wins_and_the_other_retries_after_rereading(
    store, user_id
):
    # Given a portfolio at version 1 that two writers have read
    first = a_transaction("t-0")
    commit(store, user_id, [first])
    version = store.load_portfolio(user_id).version

    # When the first writer commits, then the second commits with the same expected version
    commit(store, user_id, [a_transaction("t-first", at=T0 + minutes(1))], expected_version=version, history=[first])
    with pytest.raises(VersionConflict):
        commit(store, user_id, [a_transaction("t-second", at=T0 + minutes(2))], expected_version=version)

    # Then the loser's transaction was not written; after re-reading, its retry succeeds and both are kept
    assert [t.id for t in store.load_history(user_id)] == ["t-0", "t-first"]
    reread = store.load_portfolio(user_id, consistent_read=True)
    commit(
        store,
        user_id,
        [a_transaction("t-second", at=T0 + minutes(2))],
        expected_version=reread.version,
        history=store.load_history(user_id, consistent_read=True),
    )
    assert [t.id for t in store.load_history(user_id)] == ["t-0", "t-first", "t-second"]
    assert store.load_portfolio(user_id).version == 3


def test_given_a_stored_transaction_when_the_same_id_is_committed_again_then_it_is_reported_and_not_overwritten(
    store, user_id
):
    # Given a stored transaction t-1 of 1.5
    commit(store, user_id, [a_transaction("t-1")])

    # When t-1 arrives again with another amount, together with a new transaction
    with pytest.raises(TransactionsExist) as raised:
        commit(store, user_id, [a_transaction("t-2"), a_transaction("t-1", amount="999")], expected_version=1)

    # Then t-1 is reported, the stored t-1 is unchanged and nothing of the commit was applied
    assert raised.value.ids == ("t-1",)
    assert [(t.id, t.amount) for t in store.load_history(user_id)] == [("t-1", Decimal("1.5"))]
    assert store.load_portfolio(user_id).version == 1
    assert store.get_transactions(user_id, ["t-1", "t-2"]) == {"t-1": a_transaction("t-1")}


def test_given_a_stored_transaction_when_deleted_at_the_current_version_then_it_is_gone(store, user_id):
    commit(store, user_id, [a_transaction("t-1"), a_transaction("t-2", at=T0 + minutes(1))])

    store.commit(
        a_portfolio(user_id, [a_transaction("t-2", at=T0 + minutes(1))]),
        expected_version=1,
        delete_transaction_ids=["t-1"],
    )

    assert [t.id for t in store.load_history(user_id)] == ["t-2"]
    assert store.load_portfolio(user_id).version == 2


def test_given_a_stale_version_when_deleting_then_version_conflict_and_the_transaction_stays(store, user_id):
    commit(store, user_id, [a_transaction("t-1")])
    commit(store, user_id, [a_transaction("t-2")], expected_version=1)  # someone else moved it to version 2

    with pytest.raises(VersionConflict):
        store.commit(a_portfolio(user_id), expected_version=1, delete_transaction_ids=["t-1"])

    assert [t.id for t in store.load_history(user_id)] == ["t-1", "t-2"]


def test_given_an_unknown_transaction_id_when_deleted_then_transaction_not_found(store, user_id):
    commit(store, user_id, [a_transaction("t-1")])

    with pytest.raises(TransactionNotFound) as raised:
        store.commit(a_portfolio(user_id), expected_version=1, delete_transaction_ids=["t-missing"])

    assert raised.value.transaction_id == "t-missing"
    assert store.load_portfolio(user_id).version == 1


def test_given_more_changes_than_one_dynamodb_transaction_holds_when_committed_then_refused_before_any_write(
    store, user_id, call_log
):
    transactions = [a_transaction(f"t-{n:03d}", at=T0 + minutes(n)) for n in range(99)]

    with pytest.raises(ValueError, match="do not fit"):
        commit(store, user_id, transactions, holder_changes={USDC: 1})

    assert call_log.count("TransactWriteItems") == 0


def test_given_holder_changes_when_committed_then_the_held_tokens_follow_every_user(make_store, moto_endpoint):
    # Given a table of its own (held tokens are table-wide) and two users holding USDC, one also WETH
    from tests.integration.store.tables import create_fresh_tables

    store = make_store(table_name=create_fresh_tables(moto_endpoint)["PortfolioTable"])
    alice, bob = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    commit(store, alice, [a_transaction("a-1")], holder_changes={USDC: 1, WETH: 1})
    commit(store, bob, [a_transaction("b-1")], holder_changes={USDC: 1})
    assert store.held_tokens() == sorted([USDC, WETH])

    # When alice stops holding both
    commit(store, alice, [a_transaction("a-2")], expected_version=1, holder_changes={USDC: -1, WETH: -1})

    # Then USDC is still held (by bob) and WETH by nobody
    assert store.held_tokens() == [USDC]


def test_given_150_users_when_loaded_together_then_two_batch_gets_bring_those_that_exist(store, call_log):
    users = [f"batch-{uuid.uuid4().hex[:8]}" for _ in range(150)]
    for user_id in users[:3]:
        commit(store, user_id, [a_transaction("t-1")])
    call_log.clear()

    loaded = store.load_portfolios(users)

    assert call_log.operations() == ["BatchGetItem", "BatchGetItem"]
    assert set(loaded) == set(users[:3])
    assert all(portfolio.ledger.transaction_count == 1 for portfolio in loaded.values())


def test_given_positions_too_large_for_one_item_when_committed_then_refused_and_nothing_written(
    store, user_id, call_log, monkeypatch
):
    monkeypatch.setattr(items, "MAX_POSITIONS_BYTES", 100)
    transactions = [a_transaction(f"t-{n:03d}", at=T0 + minutes(n), amount=f"1.{n}") for n in range(40)]

    with pytest.raises(PortfolioLimitError):
        commit(store, user_id, transactions)

    assert call_log.count("TransactWriteItems") == 0
    assert store.load_portfolio(user_id).version == 0


def test_given_an_item_stored_before_positions_were_kept_when_loaded_then_it_has_no_positions(
    store, user_id, dynamodb_client, settings
):
    commit(store, user_id, [a_transaction("t-1")])
    dynamodb_client.update_item(
        TableName=settings.table_name,
        Key={"pk": {"S": f"USER#{user_id}"}, "sk": {"S": "PROFILE"}},
        UpdateExpression="REMOVE positions",
    )

    portfolio = store.load_portfolio(user_id)

    assert portfolio.version == 1
    assert portfolio.ledger is None


def test_given_the_same_id_twice_in_one_commit_when_committed_then_it_is_refused_before_any_write(
    store, user_id, call_log
):
    with pytest.raises(InvalidInputError):
        commit(store, user_id, [a_transaction("t-1"), a_transaction("t-1")])

    assert call_log.count("TransactWriteItems") == 0


@pytest.mark.faults
def test_given_dynamodb_leaves_keys_unprocessed_once_when_loading_users_then_they_are_asked_again(
    make_store, moto_endpoint, settings
):
    # Given 5 stored users, and a proxy that holds back 2 keys of the first BatchGetItem
    users = [f"unprocessed-{uuid.uuid4().hex[:8]}" for _ in range(5)]
    for user_id in users:
        commit(make_store(), user_id, [a_transaction("t-1")])
    with unprocessed_items_proxy(moto_endpoint, hold_back=2, times=1) as proxy:
        client = boto3.client("dynamodb", endpoint_url=proxy.url, region_name="us-east-1")
        sleeps: list[float] = []

        # When they are loaded together
        loaded = make_store(client, sleep=sleeps.append).load_portfolios(users)

    # Then the 2 held-back keys were asked again after one backoff, and every user is there
    assert proxy.batch_sizes == [5, 2]
    assert len(sleeps) == 1
    assert set(loaded) == set(users)


@pytest.mark.faults
def test_given_dynamodb_keeps_keys_unprocessed_when_loading_users_then_it_gives_up_after_the_attempt_limit(
    make_store, moto_endpoint
):
    user_id = f"unprocessed-{uuid.uuid4().hex[:8]}"
    commit(make_store(), user_id, [a_transaction("t-1")])
    with unprocessed_items_proxy(moto_endpoint, hold_back=1, times=-1) as proxy:
        client = boto3.client("dynamodb", endpoint_url=proxy.url, region_name="us-east-1")

        with pytest.raises(UnprocessedRequestsError):
            make_store(client, sleep=lambda _: None, batch_max_attempts=3).load_portfolios([user_id])

    assert proxy.batch_sizes == [1, 1, 1]
