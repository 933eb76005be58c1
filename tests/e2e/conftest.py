"""Fixtures of the local stack's tests."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

# The shared test Redis holds other tests' prices and portfolios under the same keys (price:v1:<coin>,
# portfolio:cross-chain:{alice}); a database of its own keeps these tests' data their own.
LOCAL_STACK_REDIS_DB = 13


@pytest.fixture(scope="session")
def local_stack_redis_url(redis_url: str) -> str:
    """The test Redis, in a database no other suite uses."""
    return _database(redis_url, LOCAL_STACK_REDIS_DB)


# The wallet demo's stack runs the demo users (alice, bob, carol) through refreshes: a database of its
# own, emptied before it starts, so no refresh message remembered from an earlier run is taken for a repeat.
LOCAL_WALLETS_REDIS_DB = 12


@pytest.fixture(scope="session")
def local_wallets_redis_url(redis_url: str) -> str:
    """The test Redis, in a database of the wallet demo's stack alone, emptied."""
    return _emptied_database(redis_url, LOCAL_WALLETS_REDIS_DB)


# The live-update stack's users and refresh records stay apart from other suites'.
LIVE_UPDATES_REDIS_DB = 11


@pytest.fixture(scope="session")
def live_updates_redis_url(redis_url: str) -> str:
    """The test Redis, in a database of the live-update stack alone, emptied."""
    return _emptied_database(redis_url, LIVE_UPDATES_REDIS_DB)


def _database(redis_url: str, database: int) -> str:
    return urlunsplit(urlsplit(redis_url)._replace(path=f"/{database}"))


def _emptied_database(redis_url: str, database: int) -> str:
    url = _database(redis_url, database)
    client = redis.Redis.from_url(url, socket_timeout=2)
    try:
        client.flushdb()
    finally:
        client.close()
    return url
