"""Fixtures for the cache tests: settings and clients pointed at the session's real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from portfolio.adapters.portfolio_cache import PortfolioCache
from portfolio.adapters.redis_connection import make_redis_client
from portfolio.settings import Settings


class RoundTripCounter:
    def __init__(self) -> None:
        self.count = 0


class CountingConnection(redis.Connection):
    """Counts what is written to the socket: one call per command or per pipeline, i.e. per round trip."""

    def __init__(self, *, round_trips: RoundTripCounter, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._round_trips = round_trips

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        self._round_trips.count += 1
        super().send_packed_command(command, check_health)


@pytest.fixture
def cache_settings(redis_url: str) -> Settings:
    return Settings(REDIS_URL=redis_url)


@pytest.fixture
def cache(cache_settings: Settings) -> Iterator[PortfolioCache]:
    portfolio_cache = PortfolioCache(make_redis_client(cache_settings), cache_settings)
    yield portfolio_cache
    portfolio_cache.close()


@pytest.fixture
def round_trips() -> RoundTripCounter:
    return RoundTripCounter()


@pytest.fixture
def counted_cache(redis_url: str, cache_settings: Settings, round_trips: RoundTripCounter) -> Iterator[PortfolioCache]:
    """A cache whose client counts its round trips to Redis."""
    pool = redis.ConnectionPool.from_url(
        redis_url, connection_class=CountingConnection, round_trips=round_trips, socket_timeout=1
    )
    client = redis.Redis(connection_pool=pool)
    portfolio_cache = PortfolioCache(client, cache_settings)
    yield portfolio_cache
    client.close()
    pool.disconnect()
