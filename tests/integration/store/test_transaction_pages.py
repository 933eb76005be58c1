"""Transaction pages: newest first, complete, filtered, with cursors that only work for their own listing."""

from __future__ import annotations

import pytest
from portfolio.adapters.cursor import InvalidCursorError
from portfolio.domain.tokens import TokenId
from portfolio.domain.transactions import TransactionType
from portfolio.services.ports import TransactionListing

from tests.integration.store.builders import (
    T0,
    USDC_ARBITRUM,
    USDC_ETHEREUM,
    WETH_BASE,
    a_portfolio,
    a_transaction,
    minutes,
)


def all_pages(store, user_id, *, limit, **filters):
    pages, cursor = [], None
    while True:
        page, cursor = store.list_transactions(user_id, TransactionListing(limit=limit, cursor=cursor, **filters))
        pages.append([transaction.id for transaction in page])
        if cursor is None:
            return pages


@pytest.fixture
def mixed_history(store, user_id):
    """Twelve transactions a minute apart: buys on Ethereum, sells on Base, a bridge Ethereum -> Arbitrum."""
    transactions = []
    for n in range(12):
        if n % 3 == 0:
            transactions.append(a_transaction(f"eth-buy-{n:02d}", at=T0 + minutes(n)))
        elif n % 3 == 1:
            transactions.append(
                a_transaction(
                    f"base-sell-{n:02d}", at=T0 + minutes(n), type="sell", chain="base", token_address=WETH_BASE
                )
            )
        else:
            transactions.append(
                a_transaction(
                    f"bridge-{n:02d}",
                    at=T0 + minutes(n),
                    type="bridge",
                    price_usd=None,
                    destination_chain="arbitrum",
                    destination_token_address=USDC_ARBITRUM,
                )
            )
    # Listing reads transactions as stored; whether they replay is not its concern.
    store.commit(a_portfolio(user_id), expected_version=0, put_transactions=transactions)
    return transactions


def newest_first(transactions, keep=lambda transaction: True):
    return [t.id for t in sorted(transactions, key=lambda t: t.timestamp, reverse=True) if keep(t)]


def test_given_twelve_transactions_when_paged_by_five_then_pages_are_newest_first_complete_and_without_duplicates(
    store, user_id, mixed_history
):
    pages = all_pages(store, user_id, limit=5)

    assert [len(page) for page in pages] == [5, 5, 2]
    assert [transaction_id for page in pages for transaction_id in page] == newest_first(mixed_history)


def test_given_exactly_one_full_page_when_listed_then_there_is_no_cursor_to_an_empty_page(
    store, user_id, mixed_history
):
    page, cursor = store.list_transactions(user_id, TransactionListing(limit=12))

    assert len(page) == 12
    assert cursor is None


def test_given_a_type_filter_when_paged_then_pages_are_full_and_hold_only_that_type(store, user_id, mixed_history):
    pages = all_pages(store, user_id, limit=3, type=TransactionType.SELL)

    # Sells are one in three items read, yet every page but the last is full
    assert [len(page) for page in pages] == [3, 1]
    assert [i for page in pages for i in page] == newest_first(mixed_history, lambda t: t.type == "sell")


def test_given_a_chain_filter_when_paged_then_a_bridge_counts_for_its_destination_chain_too(
    store, user_id, mixed_history
):
    arbitrum = all_pages(store, user_id, limit=2, chain="arbitrum")
    ethereum = all_pages(store, user_id, limit=50, chain="ethereum")

    assert [i for page in arbitrum for i in page] == newest_first(mixed_history, lambda t: t.type == "bridge")
    assert ethereum == [newest_first(mixed_history, lambda t: t.chain == "ethereum")]


def test_given_a_token_filter_when_listed_then_only_that_token_on_that_chain(store, user_id, mixed_history):
    pages = all_pages(store, user_id, limit=10, token=TokenId.parse(f"base:{WETH_BASE}"))

    assert pages == [newest_first(mixed_history, lambda t: t.chain == "base")]


def test_given_a_time_range_when_paged_then_both_bounds_are_inclusive(store, user_id, mixed_history):
    pages = all_pages(store, user_id, limit=2, start=T0 + minutes(3), end=T0 + minutes(6))

    assert [i for page in pages for i in page] == newest_first(
        mixed_history, lambda t: T0 + minutes(3) <= t.timestamp <= T0 + minutes(6)
    )
    assert len(pages) == 2


def test_given_a_cursor_whose_text_was_altered_when_used_then_it_is_rejected(store, user_id, mixed_history):
    _, cursor = store.list_transactions(user_id, TransactionListing(limit=5))
    version, payload, signature = cursor.split(".")
    forged_payload = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB")

    for tampered in (f"{version}.{forged_payload}.{signature}", cursor + "x", "garbage", ""):
        with pytest.raises(InvalidCursorError) as raised:
            store.list_transactions(user_id, TransactionListing(limit=5, cursor=tampered))
        assert raised.value.field == "cursor"


def test_given_another_users_cursor_when_used_then_it_is_rejected(store, user_id, mixed_history):
    _, cursor = store.list_transactions(user_id, TransactionListing(limit=5))

    with pytest.raises(InvalidCursorError):
        store.list_transactions(f"{user_id}-other", TransactionListing(limit=5, cursor=cursor))


def test_given_a_cursor_of_other_filters_when_used_then_it_is_rejected(store, user_id, mixed_history):
    _, cursor = store.list_transactions(user_id, TransactionListing(limit=1, type=TransactionType.SELL))

    for other_filters in ({"type": TransactionType.BUY}, {}, {"type": TransactionType.SELL, "start": T0}):
        with pytest.raises(InvalidCursorError):
            store.list_transactions(user_id, TransactionListing(limit=1, cursor=cursor, **other_filters))


def test_given_a_cursor_signed_with_another_key_when_used_then_it_is_rejected(make_store, user_id, mixed_history):
    _, cursor = make_store(cursor_signing_key="another-key").list_transactions(user_id, TransactionListing(limit=5))

    with pytest.raises(InvalidCursorError):
        make_store().list_transactions(user_id, TransactionListing(limit=5, cursor=cursor))


def test_given_a_page_size_change_when_continuing_then_the_cursor_still_works(store, user_id, mixed_history):
    first, cursor = store.list_transactions(user_id, TransactionListing(limit=4))
    rest, _ = store.list_transactions(user_id, TransactionListing(limit=100, cursor=cursor))

    assert [t.id for t in first + rest] == newest_first(mixed_history)


def test_given_a_user_without_transactions_when_listed_then_an_empty_last_page(store, user_id):
    listing = TransactionListing(limit=5, token=TokenId.parse(f"ethereum:{USDC_ETHEREUM}"))

    assert store.list_transactions(user_id, listing) == ([], None)
