"""Composition root: the adapters and services of this container, created on first use and reused.

Lambda keeps a container warm between invocations, so clients built here (boto3, redis, httpx) are
reused across requests. Tests that change the environment call reset().
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from portfolio.settings import Settings

if TYPE_CHECKING:
    import redis

    from portfolio.adapters.portfolio_cache import PortfolioCache
    from portfolio.adapters.portfolio_store import PortfolioStore
    from portfolio.services.price_service import PriceService


@cache
def settings() -> Settings:
    return Settings()  # type: ignore[call-arg]


@cache
def dynamodb_client():  # type: ignore[no-untyped-def]
    from portfolio.adapters.dynamodb_client import make_dynamodb_client

    return make_dynamodb_client(settings())


@cache
def portfolio_store() -> PortfolioStore:
    from portfolio.adapters.portfolio_store import PortfolioStore

    config = settings()
    return PortfolioStore(
        dynamodb_client(),
        config.table_name,
        cursor_signing_key=config.cursor_signing_key.get_secret_value(),
        shards=config.user_index_shards,
    )


@cache
def redis_client() -> redis.Redis | None:
    from portfolio.adapters.redis_connection import make_redis_client

    return make_redis_client(settings())


@cache
def portfolio_cache() -> PortfolioCache:
    from portfolio.adapters.portfolio_cache import PortfolioCache

    return PortfolioCache(redis_client(), settings())


@cache
def price_service() -> PriceService:
    from portfolio.adapters.coins_api import make_coins_api
    from portfolio.adapters.last_known_prices import LastKnownPriceStore
    from portfolio.adapters.price_redis_tier import PriceRedisTier
    from portfolio.services.price_service import PriceService

    config = settings()
    client = redis_client()
    return PriceService(
        make_coins_api(config),
        PriceRedisTier(client, config) if client is not None else None,
        LastKnownPriceStore(dynamodb_client(), config.table_name),
        config,
    )


def reset() -> None:
    """Forget every instance, so the next call reads the environment again."""
    for factory in (settings, dynamodb_client, portfolio_store, redis_client, portfolio_cache, price_service):
        factory.cache_clear()
