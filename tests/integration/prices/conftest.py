"""Price service wiring for integration tests: the local coins API, the real Redis, moto's DynamoDB."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from portfolio.adapters.coins_api import make_coins_api
from portfolio.adapters.last_known_prices import LastKnownPriceStore
from portfolio.adapters.price_redis_tier import PriceRedisTier
from portfolio.services.price_service import PriceService
from portfolio.settings import Settings

from local_stack.coins_api import CoinsApiServer

# Fast failure handling, so retries and backoff cost milliseconds in tests.
FAST_RETRIES = {
    "PRICE_BACKOFF_BASE_S": 0.01,
    "PRICE_BACKOFF_CAP_S": 0.05,
    "PRICE_CONNECT_TIMEOUT_S": 0.5,
    "PRICE_READ_TIMEOUT_S": 2.0,
}


def unique_evm_tokens(count: int, chain: str = "ethereum") -> list[str]:
    """Token keys no other test asks for, so the shared Redis holds nothing for them yet."""
    return [f"{chain}:0x{uuid.uuid4().hex}{uuid.uuid4().hex[:8]}" for _ in range(count)]


@pytest.fixture
def coins_api_server() -> Iterator[CoinsApiServer]:
    with CoinsApiServer(prices={}, price_every_coin=True) as server:
        yield server


@pytest.fixture
def price_settings(coins_api_server: CoinsApiServer, redis_url: str) -> Settings:
    """Settings for tests that need no DynamoDB."""
    return Settings(PRICES_API_URL=coins_api_server.url, REDIS_URL=redis_url, **FAST_RETRIES)


@pytest.fixture
def price_settings_with_tables(settings: Settings, coins_api_server: CoinsApiServer) -> Settings:
    """The shared `settings` (moto tables, test Redis) pointed at the local coins API."""
    return Settings(
        AWS_ENDPOINT_URL=settings.aws_endpoint_url,
        TABLE_NAME=settings.table_name,
        REDIS_URL=settings.redis_url,
        PRICES_API_URL=coins_api_server.url,
        **FAST_RETRIES,
    )


@pytest.fixture
def price_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, socket_timeout=0.05, socket_connect_timeout=0.1)
    yield client
    client.close()


@pytest.fixture
def redis_key_prefix() -> str:
    """A tier-2 key prefix of this test alone: other tests on the shared Redis never see its prices."""
    return f"price-test-{uuid.uuid4().hex[:10]}:"


@pytest.fixture
def redis_tier(price_redis: redis.Redis, redis_key_prefix: str, price_settings: Settings) -> PriceRedisTier:
    return PriceRedisTier(price_redis, price_settings, key_prefix=redis_key_prefix)


@pytest.fixture
def last_known_store(dynamodb_client: Any, table_names: dict[str, str]) -> LastKnownPriceStore:
    return LastKnownPriceStore(dynamodb_client, table_names["PortfolioTable"])


ServiceFactory = Callable[..., PriceService]


@pytest.fixture
def make_service() -> Iterator[ServiceFactory]:
    """Builds a PriceService over a fresh coins API client; `api_options` reach make_coins_api (sleep, rng)."""
    apis = []

    def build(
        settings: Settings,
        *,
        redis_tier: Any = None,
        last_known: Any = None,
        api_options: dict[str, Any] | None = None,
        **service_options: Any,
    ) -> PriceService:
        api = make_coins_api(settings, **(api_options or {}))
        apis.append(api)
        return PriceService(api, redis_tier, last_known, settings, **service_options)

    yield build
    for api in apis:
        api.close()
