"""The cache on a Redis Cluster (one real node owning every slot): the same behaviour, no cross-slot errors.

A cluster node refuses any multi-key command or script whose keys span slots, even when it owns all
of them, so this proves that every operation keeps a user's keys inside the user's hash tag.
"""

from __future__ import annotations

from portfolio.adapters.portfolio_cache import CacheKind, PortfolioCache
from portfolio.adapters.redis_connection import make_redis_client
from portfolio.settings import Settings
from redis.cluster import RedisCluster

from local_stack.ports import free_port


def test_given_cluster_mode_when_using_every_cache_operation_then_all_work_within_the_users_slot(
    cluster_url: str, user_id: str
) -> None:
    # Given
    settings = Settings(REDIS_URL=cluster_url, REDIS_CLUSTER_MODE=True)
    client = make_redis_client(settings)
    assert isinstance(client, RedisCluster)
    cache = PortfolioCache(client, settings)

    # When: warm write, hits, a cache-aside load, then invalidation
    assert cache.set_many(user_id, {(CacheKind.PORTFOLIO, ""): b"p", (CacheKind.ASSETS, "chain=base"): b"a"})
    portfolio = cache.get(CacheKind.PORTFOLIO, user_id)
    assets = cache.get(CacheKind.ASSETS, user_id, "chain=base")
    loaded = cache.get_or_load(CacheKind.TRANSACTIONS, user_id, lambda: b"t", "page=1")
    cached_load = cache.get_or_load(CacheKind.TRANSACTIONS, user_id, lambda: b"loaded twice", "page=1")
    invalidated = cache.invalidate_user(user_id)

    # Then
    assert (portfolio, assets, loaded, cached_load) == (b"p", b"a", b"t", b"t")
    assert invalidated is True
    assert cache.get(CacheKind.ASSETS, user_id, "chain=base") is None
    assert cache.stats().errors == 0
    cache.close()


def test_given_cluster_mode_and_no_reachable_node_when_making_the_client_then_the_cache_is_off() -> None:
    # Given: nothing listens on this port
    settings = Settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}", REDIS_CLUSTER_MODE=True)

    # When
    client = make_redis_client(settings)

    # Then: requests run uncached instead of failing
    assert client is None
