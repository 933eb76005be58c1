"""Fixtures of the local stack's tests."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest

# The shared test Redis holds other tests' prices and portfolios under the same keys (price:v1:<coin>,
# portfolio:cross-chain:{alice}); a database of its own keeps these tests' data their own.
LOCAL_STACK_REDIS_DB = 13


@pytest.fixture(scope="session")
def local_stack_redis_url(redis_url: str) -> str:
    """The test Redis, in a database no other suite uses."""
    return urlunsplit(urlsplit(redis_url)._replace(path=f"/{LOCAL_STACK_REDIS_DB}"))
