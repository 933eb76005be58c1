"""Enumerating users for the refresh: every user once, through the sparse index, never reading transactions."""

from __future__ import annotations

import pytest

from tests.integration.store.builders import T0, a_portfolio, a_transaction, minutes
from tests.integration.store.tables import create_fresh_tables


@pytest.fixture
def table_names(moto_endpoint):
    """A table of its own per test: enumeration must see exactly the users a test created."""
    return create_fresh_tables(moto_endpoint)


def test_given_users_spread_over_shards_when_enumerated_in_small_pages_then_each_user_comes_exactly_once(
    make_store, call_log
):
    # Given 13 users, each with a few transactions, over 4 shards
    store = make_store(shards=4)
    users = [f"enum-user-{n:02d}" for n in range(13)]
    for user in users:
        transactions = [a_transaction(f"t-{n}", at=T0 + minutes(n)) for n in range(3)]
        store.commit(a_portfolio(user, transactions), expected_version=0, put_transactions=transactions)
    call_log.clear()

    # When users are listed 2 a page
    pages = list(store.iter_user_ids(page_size=2))

    # Then every user appears once, no page is larger than asked, and only index keys were read
    listed = [user for page in pages for user in page]
    assert sorted(listed) == users
    assert len(listed) == len(set(listed))
    assert all(0 < len(page) <= 2 for page in pages)
    assert {params.get("IndexName") for _, params in call_log.calls} == {"UsersByShard"}
    items_read = sum(len(answer["Items"]) for _, answer in call_log.answers)
    assert items_read == len(users)


def test_given_a_user_whose_record_is_saved_again_when_enumerated_then_the_user_still_comes_once(make_store):
    store = make_store(shards=2)
    saved = store.commit(a_portfolio("enum-resaved"), expected_version=0)
    store.commit(saved, expected_version=saved.version)

    assert [user for page in store.iter_user_ids() for user in page] == ["enum-resaved"]


def test_given_no_users_when_enumerated_then_no_pages(make_store):
    assert list(make_store(shards=3).iter_user_ids()) == []
