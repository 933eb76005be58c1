"""Composition root: the adapters and services of this container, created on first use and reused.

Lambda keeps a container warm between invocations, so clients built here (boto3, redis, httpx) are
reused across requests. Tests that change the environment call reset().
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from portfolio.settings import Settings

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from portfolio.adapters.portfolio_cache import PortfolioCache
    from portfolio.adapters.portfolio_store import PortfolioStore
    from portfolio.adapters.redis_connection import RedisClient
    from portfolio.services.portfolio_refresher import PortfolioRefresher
    from portfolio.services.price_service import PriceService
    from portfolio.services.refresh_planner import RefreshPlanner


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
def redis_client() -> RedisClient | None:
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


@cache
def sqs_client():  # type: ignore[no-untyped-def]
    from portfolio.adapters.refresh_queue import make_sqs_client

    return make_sqs_client(settings())


@cache
def refresh_planner() -> RefreshPlanner:
    from portfolio.adapters.refresh_queue import RefreshQueue
    from portfolio.adapters.run_lock import RunLock
    from portfolio.services.refresh_planner import RefreshPlanner

    config = settings()
    if not config.refresh_queue_url:
        raise RuntimeError("REFRESH_QUEUE_URL is not set")
    return RefreshPlanner(
        portfolio_store(),
        RefreshQueue(sqs_client(), config.refresh_queue_url),
        RunLock(dynamodb_client(), config.table_name),
        users_per_message=config.users_per_message,
    )


@cache
def portfolio_refresher() -> PortfolioRefresher:
    from portfolio.services.portfolio_refresher import PortfolioRefresher

    return PortfolioRefresher(portfolio_store(), price_service(), portfolio_cache())


@cache
def idempotency_store() -> DynamoDBPersistenceLayer:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return DynamoDBPersistenceLayer(table_name=settings().idempotency_table_name, boto3_client=dynamodb_client())


_FACTORIES = (
    settings,
    dynamodb_client,
    portfolio_store,
    redis_client,
    portfolio_cache,
    price_service,
    sqs_client,
    refresh_planner,
    portfolio_refresher,
    idempotency_store,
)


def reset() -> None:
    """Forget every instance, so the next call reads the environment again."""
    for factory in _FACTORIES:
        factory.cache_clear()
