"""Writers warm the cache in whatever order they finish; the views of the latest version win."""

from __future__ import annotations

from portfolio.adapters.portfolio_cache import CacheKind, PortfolioCache
from portfolio.services.ports import PRICED_KINDS, ViewReplacement

from tests.integration.cache.conftest import RoundTripCounter
from tests.support.redis_cluster import RedisTarget

PORTFOLIO = (CacheKind.PORTFOLIO, "")


def test_given_version_6_warmed_when_a_slower_writer_warms_version_5_then_version_6_stays(
    cache: PortfolioCache, user_id: str
) -> None:
    # Given a transaction saved and warmed version 6
    assert cache.replace_views(user_id, 6, {PORTFOLIO: b'{"version":6}'})

    # When a refresh that saved version 5 before it warms only now
    refused = not cache.replace_views(user_id, 5, {PORTFOLIO: b'{"version":5}'})

    # Then the newer views are still served
    assert refused
    assert cache.get(CacheKind.PORTFOLIO, user_id) == b'{"version":6}'


def test_given_cached_filtered_views_when_a_new_version_is_warmed_then_they_are_retired(
    cache: PortfolioCache, user_id: str
) -> None:
    # Given views of version 1, filtered ones and a transaction page among them
    cache.replace_views(user_id, 1, {PORTFOLIO: b"v1"})
    cache.set(CacheKind.ASSETS, user_id, b"ethereum only", "chain:ethereum")
    cache.set(CacheKind.TRANSACTIONS, user_id, b"page 1", "limit:50")

    # When version 2 is warmed with its summary
    assert cache.replace_views(user_id, 2, {PORTFOLIO: b"v2"})

    # Then the summary is the new one and every other view is gone, whatever its filter
    assert cache.get(CacheKind.PORTFOLIO, user_id) == b"v2"
    assert cache.get(CacheKind.ASSETS, user_id, "chain:ethereum") is None
    assert cache.get(CacheKind.TRANSACTIONS, user_id, "limit:50") is None


def test_given_the_same_version_warmed_again_when_replaced_then_it_is_accepted(
    cache: PortfolioCache, user_id: str
) -> None:
    # A repeated request re-warms the version it finds stored
    cache.replace_views(user_id, 3, {PORTFOLIO: b"first"})

    assert cache.replace_views(user_id, 3, {PORTFOLIO: b"again"})
    assert cache.get(CacheKind.PORTFOLIO, user_id) == b"again"


def test_given_a_refresh_when_it_warms_the_priced_views_then_transaction_pages_stay_cached(
    cache: PortfolioCache, user_id: str
) -> None:
    # Given a summary, a filtered asset list and a page of transactions cached for version 3
    cache.replace_views(user_id, 3, {PORTFOLIO: b"at old prices"})
    cache.set(CacheKind.ASSETS, user_id, b"ethereum only", "chain:ethereum")
    cache.set(CacheKind.TRANSACTIONS, user_id, b"page 1", "limit:50")

    # When a refresh warms the same version at new prices (prices move, transactions do not)
    assert cache.replace_views(user_id, 3, {PORTFOLIO: b"at new prices"}, kinds=PRICED_KINDS)

    # Then the priced views are renewed and the transaction page is still served
    assert cache.get(CacheKind.PORTFOLIO, user_id) == b"at new prices"
    assert cache.get(CacheKind.ASSETS, user_id, "chain:ethereum") is None
    assert cache.get(CacheKind.TRANSACTIONS, user_id, "limit:50") == b"page 1"


def test_given_a_message_of_users_when_their_views_are_replaced_together_then_each_is_judged_by_its_own_version(
    cache: PortfolioCache, user_id: str
) -> None:
    # Given 30 users (spread over the cluster's slots), one of whom had version 9 warmed by a write meanwhile
    users = [f"{user_id}-{n:02d}" for n in range(30)]
    raced = users[7]
    assert cache.replace_views(raced, 9, {PORTFOLIO: b"written at 9"})
    for user in users:
        cache.set(CacheKind.ASSETS, user, b"old list")
        cache.set(CacheKind.TRANSACTIONS, user, b"page 1", "limit:50")

    # When a refresh that read version 8 of every one of them stores their priced views together
    written = cache.replace_views_of_many(
        [ViewReplacement(user, 8, {PORTFOLIO: f"{user} at new prices".encode()}) for user in users],
        kinds=PRICED_KINDS,
    )

    # Then every user's views are renewed but the raced one's, whose newer views stand
    assert written == [user != raced for user in users]
    for user in users:
        expected = b"written at 9" if user == raced else f"{user} at new prices".encode()
        assert cache.get(CacheKind.PORTFOLIO, user) == expected
        if user != raced:
            assert cache.get(CacheKind.ASSETS, user) is None  # retired: valued on the next read
        assert cache.get(CacheKind.TRANSACTIONS, user, "limit:50") == b"page 1"


def test_given_a_message_of_users_when_their_views_are_replaced_then_it_costs_one_round_trip_per_node(
    counted_cache: PortfolioCache, round_trips: RoundTripCounter, redis_target: RedisTarget, user_id: str
) -> None:
    users = [f"{user_id}-{n:03d}" for n in range(100)]
    counted_cache.replace_views_of_many([ViewReplacement(user, 1, {PORTFOLIO: b"{}"}) for user in users])
    round_trips.count = 0

    counted_cache.replace_views_of_many([ViewReplacement(user, 2, {PORTFOLIO: b"{}"}) for user in users])

    # One pipeline: a single node answers it in one round trip, a cluster in one per master
    assert round_trips.count <= (3 if redis_target.cluster_mode else 1)


def test_given_a_user_id_no_key_can_be_made_of_when_replaced_with_others_then_only_it_is_not_written(
    cache: PortfolioCache, user_id: str
) -> None:
    replacements = [
        ViewReplacement(f"{user_id}-a", 1, {PORTFOLIO: b"a"}),
        ViewReplacement("brace{d}", 1, {PORTFOLIO: b"never"}),
        ViewReplacement(f"{user_id}-b", 1, {PORTFOLIO: b"b"}),
    ]

    assert cache.replace_views_of_many(replacements) == [True, False, True]
    assert cache.get(CacheKind.PORTFOLIO, f"{user_id}-b") == b"b"
