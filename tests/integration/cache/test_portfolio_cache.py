"""PortfolioCache against the real Redis: exact bytes, TTLs, filter keys, invalidation and round trips."""

from __future__ import annotations

import os

import pytest
import redis
from portfolio.adapters.portfolio_cache import CacheKey, CacheKind, PortfolioCache

from tests.integration.cache.conftest import RoundTripCounter

PORTFOLIO_BODY = b'{"userId":"u","totalValueUsd":"12345.678901234567890123","assets":[]}'


def test_given_a_stored_body_when_read_back_then_the_exact_bytes_are_returned(
    cache: PortfolioCache, user_id: str
) -> None:
    # Given: bytes that no JSON round trip would preserve (odd spacing, non-UTF-8, a NUL)
    body = b'{ "value" :  "1.10" }\x00\xff\xfe' + os.urandom(64 * 1024)
    cache.set(CacheKind.PORTFOLIO, user_id, body)

    # When
    cached = cache.get(CacheKind.PORTFOLIO, user_id)

    # Then
    assert cached == body
    assert cache.stats().kinds[CacheKind.PORTFOLIO].hits == 1


def test_given_nothing_cached_when_reading_then_it_is_a_miss(cache: PortfolioCache, user_id: str) -> None:
    assert cache.get(CacheKind.PERFORMANCE, user_id) is None
    assert cache.stats().kinds[CacheKind.PERFORMANCE].misses == 1


def test_given_a_cached_view_when_stored_then_its_key_keeps_the_seed_shape_and_expires_within_the_jittered_ttl(
    cache: PortfolioCache, user_id: str, redis_client: redis.Redis
) -> None:
    # Given: 300 s views and 600 s transactions, up to 10 % jitter (the defaults)
    for page in range(20):
        cache.set(CacheKind.ASSETS, user_id, PORTFOLIO_BODY, filter_key=f"page={page}")
        cache.set(CacheKind.TRANSACTIONS, user_id, PORTFOLIO_BODY, filter_key=f"page={page}")

    # When
    asset_ttls = [redis_client.pttl(f"assets:cross-chain:{{{user_id}}}:page={p}") for p in range(20)]
    transaction_ttls = [redis_client.pttl(f"transactions:cross-chain:{{{user_id}}}:page={p}") for p in range(20)]

    # Then: never longer than configured, never shorter than the jitter allows (a second of slack for the
    # time between the write and the PTTL), and not all the same
    assert all(270_000 - 1_000 <= ttl <= 300_000 for ttl in asset_ttls), asset_ttls
    assert all(540_000 - 1_000 <= ttl <= 600_000 for ttl in transaction_ttls), transaction_ttls
    assert len(set(asset_ttls)) > 10
    assert len(set(transaction_ttls)) > 10


def test_given_views_with_different_filter_keys_when_read_then_each_returns_its_own_body(
    cache: PortfolioCache, user_id: str
) -> None:
    # Given
    cache.set(CacheKind.ASSETS, user_id, b"all")
    cache.set(CacheKind.ASSETS, user_id, b"base only", filter_key="chain=base")
    cache.set(CacheKind.ASSETS, user_id, b"ethereum only", filter_key="chain=ethereum")

    # When / Then
    assert cache.get(CacheKind.ASSETS, user_id) == b"all"
    assert cache.get(CacheKind.ASSETS, user_id, "chain=base") == b"base only"
    assert cache.get(CacheKind.ASSETS, user_id, "chain=ethereum") == b"ethereum only"
    assert cache.get(CacheKind.ASSETS, user_id, "chain=bsc") is None


def _cache_every_view(cache: PortfolioCache, user_id: str, filters: int = 3) -> None:
    cache.set(CacheKind.PORTFOLIO, user_id, b"portfolio")
    cache.set(CacheKind.PERFORMANCE, user_id, b"performance")
    for n in range(filters):
        cache.set(CacheKind.ASSETS, user_id, b"assets", filter_key=f"chain={n}")
        cache.set(CacheKind.TRANSACTIONS, user_id, b"transactions", filter_key=f"page={n}")


def test_given_every_view_cached_when_the_user_is_invalidated_then_filtered_views_miss_too(
    cache: PortfolioCache, user_id: str
) -> None:
    # Given
    _cache_every_view(cache, user_id)

    # When
    assert cache.invalidate_user(user_id) is True

    # Then
    assert cache.get(CacheKind.PORTFOLIO, user_id) is None
    assert cache.get(CacheKind.PERFORMANCE, user_id) is None
    for n in range(3):
        assert cache.get(CacheKind.ASSETS, user_id, f"chain={n}") is None
        assert cache.get(CacheKind.TRANSACTIONS, user_id, f"page={n}") is None


def test_given_every_view_cached_when_the_portfolio_is_invalidated_then_priced_views_miss_and_transactions_stay(
    cache: PortfolioCache, user_id: str
) -> None:
    # Given
    _cache_every_view(cache, user_id)

    # When
    cache.invalidate_portfolio(user_id)

    # Then
    assert cache.get(CacheKind.PORTFOLIO, user_id) is None
    assert cache.get(CacheKind.PERFORMANCE, user_id) is None
    assert cache.get(CacheKind.ASSETS, user_id, "chain=1") is None
    assert cache.get(CacheKind.TRANSACTIONS, user_id, "page=1") == b"transactions"


def test_given_two_users_when_one_is_invalidated_then_the_other_keeps_their_cache(
    cache: PortfolioCache, user_id: str
) -> None:
    # Given
    other_user = f"{user_id}-other"
    _cache_every_view(cache, user_id, filters=1)
    _cache_every_view(cache, other_user, filters=1)

    # When
    cache.invalidate_user(user_id)

    # Then
    assert cache.get(CacheKind.PORTFOLIO, other_user) == b"portfolio"
    assert cache.get(CacheKind.ASSETS, other_user, "chain=0") == b"assets"


def test_given_an_invalidated_user_when_views_are_written_again_then_they_are_served(
    cache: PortfolioCache, user_id: str
) -> None:
    # Given
    _cache_every_view(cache, user_id, filters=1)
    cache.invalidate_user(user_id)

    # When: the warm write after a refresh
    stored = cache.set_many(
        user_id, {(CacheKind.PORTFOLIO, ""): b"fresh", (CacheKind.ASSETS, "chain=0"): b"fresh assets"}
    )

    # Then
    assert stored is True
    assert cache.get(CacheKind.PORTFOLIO, user_id) == b"fresh"
    assert cache.get(CacheKind.ASSETS, user_id, "chain=0") == b"fresh assets"
    assert cache.get(CacheKind.PERFORMANCE, user_id) is None


@pytest.mark.parametrize("filters", [1, 40])
def test_given_any_number_of_filtered_views_when_invalidating_then_it_costs_one_round_trip(
    counted_cache: PortfolioCache, round_trips: RoundTripCounter, user_id: str, filters: int
) -> None:
    # Given: the scripts are already known to the server (a cold start loads each one once)
    _cache_every_view(counted_cache, user_id, filters=filters)
    counted_cache.invalidate_user(f"{user_id}-warm-up")
    counted_cache.invalidate_portfolio(f"{user_id}-warm-up")
    round_trips.count = 0

    # When
    counted_cache.invalidate_user(user_id)
    counted_cache.invalidate_portfolio(user_id)

    # Then
    assert round_trips.count == 2
    assert counted_cache.get(CacheKind.TRANSACTIONS, user_id, f"page={filters - 1}") is None


def test_given_a_cached_view_when_read_then_the_hit_costs_one_round_trip(
    counted_cache: PortfolioCache, round_trips: RoundTripCounter, user_id: str
) -> None:
    # Given
    counted_cache.set(CacheKind.PORTFOLIO, user_id, PORTFOLIO_BODY)
    round_trips.count = 0

    # When
    body = counted_cache.get(CacheKind.PORTFOLIO, user_id)

    # Then
    assert body == PORTFOLIO_BODY
    assert round_trips.count == 1


def test_given_several_views_when_warm_written_together_then_it_costs_one_round_trip(
    counted_cache: PortfolioCache, round_trips: RoundTripCounter, user_id: str
) -> None:
    # Given
    counted_cache.set(CacheKind.PORTFOLIO, f"{user_id}-warm-up", b"x")
    round_trips.count = 0
    views = {
        (CacheKind.PORTFOLIO, ""): b"portfolio",
        (CacheKind.PERFORMANCE, ""): b"performance",
        (CacheKind.ASSETS, ""): b"assets",
        (CacheKind.ASSETS, "chain=base"): b"assets on base",
    }

    # When
    counted_cache.set_many(user_id, views)

    # Then
    assert round_trips.count == 1
    for (kind, filter_key), body in views.items():
        assert counted_cache.get(kind, user_id, filter_key) == body


def test_given_a_miss_when_loading_then_the_loaded_body_is_cached_for_the_next_reader(
    cache: PortfolioCache, user_id: str
) -> None:
    # Given
    loads: list[str] = []

    def load() -> bytes:
        loads.append("db")
        return PORTFOLIO_BODY

    # When
    first = cache.get_or_load(CacheKind.PORTFOLIO, user_id, load)
    second = cache.get_or_load(CacheKind.PORTFOLIO, user_id, load)

    # Then
    assert first == second == PORTFOLIO_BODY
    assert loads == ["db"]
    stats = cache.stats().kinds[CacheKind.PORTFOLIO]
    assert (stats.hits, stats.misses) == (1, 1)


def test_given_an_invalidation_lands_while_a_miss_is_loading_when_the_load_finishes_then_its_old_body_is_not_served(
    cache: PortfolioCache, user_id: str
) -> None:
    # Given: the loader read the database, then a transaction was recorded and the user invalidated
    def load_then_get_overtaken() -> bytes:
        cache.invalidate_user(user_id)
        return b"old"

    # When
    returned = cache.get_or_load(CacheKind.PORTFOLIO, user_id, load_then_get_overtaken)

    # Then: the caller gets what it loaded, but the next reader does not get that stale body
    assert returned == b"old"
    assert cache.get(CacheKind.PORTFOLIO, user_id) is None


def test_given_a_failing_loader_when_it_raises_then_the_error_reaches_the_caller_and_the_lock_is_released(
    cache: PortfolioCache, user_id: str, redis_client: redis.Redis
) -> None:
    # Given
    def broken_loader() -> bytes:
        raise RuntimeError("database unavailable")

    # When
    with pytest.raises(RuntimeError, match="database unavailable"):
        cache.get_or_load(CacheKind.ASSETS, user_id, broken_loader, filter_key="chain=base")

    # Then: the next reader is not kept waiting on a lock nobody holds
    assert redis_client.exists(CacheKey(CacheKind.ASSETS, user_id, "chain=base").lock) == 0
    assert cache.get_or_load(CacheKind.ASSETS, user_id, lambda: b"recovered", filter_key="chain=base") == b"recovered"
