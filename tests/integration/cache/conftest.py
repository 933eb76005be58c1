"""Fixtures for the cache tests: settings and clients pointed at the session's real Redis.

The tests of the cache's own behaviour (`cache`, `cache_settings`, `counted_cache`, `redis_client` here,
and the rate limiter's and the invalidator's Redis) run twice: on the single node and on the session's
three-master cluster in cluster mode, so a key-slot mistake of the app (CROSSSLOT, a script touching a
key of another node, a command sent to the wrong node) fails the suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from portfolio.adapters.portfolio_cache import PortfolioCache
from portfolio.adapters.redis_connection import make_redis_client
from portfolio.settings import Settings
from redis.cluster import RedisCluster

from tests.support.redis_cluster import CLUSTER, SINGLE_NODE, RedisTarget


class RoundTripCounter:
    def __init__(self) -> None:
        self.count = 0


class CountingConnection(redis.Connection):
    """Counts what is written to the socket: one call per command or per pipeline, i.e. per round trip.
    The handshake of a new connection (CLIENT SETINFO, AUTH) is not counted: a cluster client opens one
    per node on first use, which is not the cost of the operation measured."""

    round_trips: RoundTripCounter
    _connecting = False

    def on_connect_check_health(self, check_health: bool = True) -> None:
        self._connecting = True
        try:
            super().on_connect_check_health(check_health)
        finally:
            self._connecting = False

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if not self._connecting:
            self.round_trips.count += 1
        super().send_packed_command(command, check_health)


@pytest.fixture(params=[SINGLE_NODE, CLUSTER])
def redis_target(request: pytest.FixtureRequest) -> RedisTarget:
    """The single node, then the three-master cluster (started once per session, when first asked)."""
    if request.param == CLUSTER:
        return RedisTarget(CLUSTER, request.getfixturevalue("cluster_url"), cluster_mode=True)
    return RedisTarget(SINGLE_NODE, request.getfixturevalue("redis_url"), cluster_mode=False)


@pytest.fixture
def redis_client(redis_target: RedisTarget) -> Iterator[redis.Redis | RedisCluster]:
    """The test's own look at the target (a cluster client on the cluster)."""
    client = redis_target.client()
    yield client
    client.close()


@pytest.fixture
def cache_settings(redis_target: RedisTarget) -> Settings:
    return redis_target.settings()


@pytest.fixture
def cache(cache_settings: Settings) -> Iterator[PortfolioCache]:
    portfolio_cache = PortfolioCache(make_redis_client(cache_settings), cache_settings)
    yield portfolio_cache
    portfolio_cache.close()


@pytest.fixture
def round_trips() -> RoundTripCounter:
    return RoundTripCounter()


@pytest.fixture
def counted_cache(
    redis_target: RedisTarget, cache_settings: Settings, round_trips: RoundTripCounter
) -> Iterator[PortfolioCache]:
    """A cache whose client counts its round trips to Redis (to every node of the cluster together)."""
    counting = type("CountingConnection", (CountingConnection,), {"round_trips": round_trips})
    client = redis_target.client(connection_class=counting)
    portfolio_cache = PortfolioCache(client, cache_settings)
    yield portfolio_cache
    client.close()
