"""The cluster client of a container: every cache operation on the session's three-master cluster, and a
cluster that is down at cold start.

A cluster refuses any multi-key command or script whose keys span slots, and a node answers MOVED for a
key it does not serve, so this proves that every operation keeps a user's keys inside the user's hash
tag and reaches the node serving it. (The cache tests of tests/integration/cache run on this cluster
too; this file holds what is the cluster client's own.)
"""

from __future__ import annotations

import time

import pytest
import redis
from portfolio.adapters.portfolio_cache import CacheKind, PortfolioCache
from portfolio.adapters.redis_connection import RECONNECT_FIRST_WAIT_S, ReconnectingCluster, make_redis_client
from portfolio.settings import Settings
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from local_stack.embedded_redis import RedisClusterNode, free_cluster_port


def test_given_cluster_mode_when_using_every_cache_operation_then_all_work_within_the_users_slot(
    cluster_url: str, user_id: str
) -> None:
    # Given
    settings = Settings(REDIS_URL=cluster_url, REDIS_CLUSTER_MODE=True)
    client = make_redis_client(settings)
    assert isinstance(client, ReconnectingCluster)
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


def test_given_no_reachable_node_at_cold_start_when_the_cluster_comes_up_then_the_cache_works_again(
    user_id: str,
) -> None:
    # Given: a container started while nothing listened on the cluster's port
    port = free_cluster_port()
    settings = Settings(REDIS_URL=f"redis://127.0.0.1:{port}", REDIS_CLUSTER_MODE=True)
    cache = PortfolioCache(make_redis_client(settings), settings)

    # When: it is used while the cluster is down, Then requests run uncached instead of failing
    assert cache.get_or_load(CacheKind.PORTFOLIO, user_id, lambda: b"from the table") == b"from the table"
    assert cache.set_many(user_id, {(CacheKind.PORTFOLIO, ""): b"p"}) is False
    assert cache.stats().errors >= 1

    # When: the cluster comes up on that port and the first wait has passed
    node = RedisClusterNode(port=port).start()
    try:
        time.sleep(RECONNECT_FIRST_WAIT_S + 0.2)

        # Then: the same client reaches it: writes land and reads hit
        assert cache.set_many(user_id, {(CacheKind.PORTFOLIO, ""): b"p"}) is True
        assert cache.get(CacheKind.PORTFOLIO, user_id) == b"p"
    finally:
        cache.close()
        node.stop()


def test_given_the_cluster_still_down_when_asked_again_before_the_wait_then_it_is_not_dialled() -> None:
    # Given a cluster client whose build failed at 100 s on its clock
    attempts = []
    now = [100.0]

    def build() -> RedisCluster:
        attempts.append(now[0])
        raise RedisClusterException("no node answered")

    client = ReconnectingCluster(build, clock=lambda: now[0])
    with pytest.raises(redis.ConnectionError):
        client.get("k")

    # When asked again within the wait, then after it, then after the doubled one
    for moment in (100.5, 101.0, 102.5, 103.0):
        now[0] = moment
        with pytest.raises(redis.ConnectionError):
            client.get("k")

    # Then it is dialled at 100 s, 101 s (1 s later) and 103 s (2 s more) only
    assert attempts == [100.0, 101.0, 103.0]
