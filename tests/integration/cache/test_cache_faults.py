"""Redis failing for real under the cache: killed, cut off, black-holed. Reads miss, nothing raises, hits come back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from portfolio.adapters.portfolio_cache import CacheKind, PortfolioCache
from portfolio.adapters.redis_connection import make_redis_client
from portfolio.settings import Settings

from local_stack.embedded_redis import RedisServer
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.faults

BODY = b'{"totalValueUsd":"42.00"}'


@pytest.fixture
def proxy(redis_url: str) -> Iterator[TcpProxy]:
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    with TcpProxy(target_port=port) as running:
        yield running


def _cache_for(url: str) -> PortfolioCache:
    settings = Settings(REDIS_URL=url)
    return PortfolioCache(make_redis_client(settings), settings)


def test_given_redis_is_killed_mid_test_when_reading_and_writing_then_misses_and_no_errors_until_it_returns(
    own_redis: RedisServer, user_id: str
) -> None:
    # Given: a warm cache
    cache = _cache_for(own_redis.url)
    cache.set(CacheKind.PORTFOLIO, user_id, BODY)
    assert cache.get(CacheKind.PORTFOLIO, user_id) == BODY

    # When: the Redis process dies
    own_redis.kill()

    # Then: reads miss, writes are skipped, loads still answer, nothing raises
    assert cache.get(CacheKind.PORTFOLIO, user_id) is None
    assert cache.set(CacheKind.PORTFOLIO, user_id, BODY) is False
    assert cache.invalidate_user(user_id) is False
    assert cache.get_or_load(CacheKind.ASSETS, user_id, lambda: b"from-db", "chain=base") == b"from-db"
    assert cache.stats().errors >= 4

    # When: Redis is back (empty, on the same port), with the same cache object
    own_redis.start()
    cache.set(CacheKind.PORTFOLIO, user_id, BODY)

    # Then: hits resume
    assert cache.get(CacheKind.PORTFOLIO, user_id) == BODY
    cache.close()


def test_given_the_network_to_redis_is_cut_when_reading_then_misses_and_hits_resume_after_it_heals(
    proxy: TcpProxy, user_id: str
) -> None:
    # Given: a warm cache reached through the proxy
    cache = _cache_for(f"redis://127.0.0.1:{proxy.port}/0")
    cache.set(CacheKind.TRANSACTIONS, user_id, BODY, filter_key="page=1")
    assert cache.get(CacheKind.TRANSACTIONS, user_id, "page=1") == BODY

    # When: every connection is reset and new ones are refused
    proxy.cut()

    # Then
    assert cache.get(CacheKind.TRANSACTIONS, user_id, "page=1") is None
    assert cache.get_or_load(CacheKind.TRANSACTIONS, user_id, lambda: b"from-db", "page=1") == b"from-db"
    errors_while_cut = cache.stats().kinds[CacheKind.TRANSACTIONS].errors
    assert errors_while_cut >= 2

    # When: the network heals
    proxy.resume()

    # Then: the value that stayed in Redis is served again by the same cache
    assert cache.get(CacheKind.TRANSACTIONS, user_id, "page=1") == BODY
    assert cache.stats().kinds[CacheKind.TRANSACTIONS].errors == errors_while_cut
    cache.close()


def test_given_redis_stops_answering_when_reading_then_the_socket_timeout_turns_it_into_a_miss(
    proxy: TcpProxy, user_id: str
) -> None:
    # Given
    cache = _cache_for(f"redis://127.0.0.1:{proxy.port}/0")
    cache.set(CacheKind.PERFORMANCE, user_id, BODY)

    # When: connections are accepted but never answered
    proxy.stall()

    # Then
    assert cache.get(CacheKind.PERFORMANCE, user_id) is None
    assert cache.set(CacheKind.PERFORMANCE, user_id, BODY) is False
    assert cache.stats().kinds[CacheKind.PERFORMANCE].errors == 2

    # When / Then: answers again after the route is back
    proxy.resume()
    assert cache.get(CacheKind.PERFORMANCE, user_id) == BODY
    cache.close()
