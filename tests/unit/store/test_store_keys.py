"""Keys the store writes: time order is text order, shards never move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st
from portfolio.adapters.dynamodb.items import transaction_sort_key, user_shard
from portfolio.domain.transactions import Transaction

ZONES = st.sampled_from([UTC, timezone(timedelta(hours=9)), timezone(timedelta(hours=-5, minutes=-30))])
MOMENTS = st.datetimes(min_value=datetime(2009, 1, 1), max_value=datetime(2024, 12, 31), timezones=ZONES)


def a_buy(transaction_id: str, at: datetime) -> Transaction:
    return Transaction(
        id=transaction_id,
        type="buy",
        chain="ethereum",
        token_address="0x0000000000000000000000000000000000000000",
        amount="1",
        price_usd="1",
        timestamp=at,
    )


@given(first=MOMENTS, second=MOMENTS)
def test_given_two_transactions_in_any_time_zone_when_their_sort_keys_compare_then_text_order_is_time_order(
    first, second
):
    first_key = transaction_sort_key(a_buy("a", first))
    second_key = transaction_sort_key(a_buy("b", second))

    # Ties on time fall back to the id, and "a" < "b"
    assert (first_key < second_key) == (first <= second)


def test_given_a_user_id_when_sharded_then_the_shard_is_the_one_it_always_was():
    # Changing this function would move users to shards the refresh no longer lists.
    assert [user_shard(user, 16) for user in ("alice", "bob", "user-0001")] == ["15", "10", "7"]


def test_given_many_users_when_sharded_then_every_shard_is_used():
    assert {user_shard(f"user-{n}", 16) for n in range(500)} == {str(n) for n in range(16)}
