"""Composition root: the adapters and services of this container, created on first use and reused.

Lambda keeps a container warm between invocations, so clients built here (boto3, redis, httpx) are
reused across requests. Tests that change the environment call reset().

With SnapStart, Lambda runs the init once, snapshots it and resumes many environments from that
snapshot. The hooks at the end of this module import ahead what the factories import on first use,
and after a restore drop what one environment must not share with the others (docs/deploy.md).
"""

from __future__ import annotations

import importlib
import pkgutil
import random
import time
from contextlib import AbstractContextManager
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from portfolio.observability import logger, trace_aws_sdk_calls

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

    from portfolio.adapters.activity_log import RedisActivityLog
    from portfolio.adapters.alert_events import EventBridgeAlertPublisher
    from portfolio.adapters.coins_api import CoinsApi
    from portfolio.adapters.connection_registry import DynamoConnectionRegistry
    from portfolio.adapters.dynamodb.alerts import AlertStore
    from portfolio.adapters.dynamodb.store import PortfolioStore
    from portfolio.adapters.portfolio_cache import PortfolioCache
    from portfolio.adapters.price_history import PriceHistoryStore
    from portfolio.adapters.pushed_figures import RedisPushedFigures
    from portfolio.adapters.redis_connection import RedisClient
    from portfolio.adapters.wallet_sync_board import RedisWalletSyncBoard
    from portfolio.services.alert_evaluation import AlertEvaluation
    from portfolio.services.alert_rules import AlertRules
    from portfolio.services.history_backfill import HistoryBackfill
    from portfolio.services.live_connections import LiveConnections
    from portfolio.services.live_updates import LiveUpdatePublisher
    from portfolio.services.portfolio_reader import PortfolioReader
    from portfolio.services.portfolio_refresher import PortfolioRefresher
    from portfolio.services.ports import ChainReader, PushOutcome, RateLimiter, TokenVerifier
    from portfolio.services.price_service import PriceService
    from portfolio.services.price_sweep import PriceSweep
    from portfolio.services.refresh_planner import RefreshPlanner
    from portfolio.services.stale_views import StaleViewRetirement
    from portfolio.services.transaction_recorder import TransactionRecorder
    from portfolio.services.wallet_links import WalletLinks
    from portfolio.services.wallet_sync import WalletSync
    from portfolio.settings import ChainNode, Settings


@cache
def settings() -> Settings:
    from portfolio.settings import Settings

    return Settings()  # type: ignore[call-arg]


@cache
def dynamodb_client():  # type: ignore[no-untyped-def]
    from portfolio.adapters.dynamodb_client import make_dynamodb_client

    trace_aws_sdk_calls()
    return make_dynamodb_client(settings())


def dynamodb_deadline(remaining_ms: int) -> AbstractContextManager[None]:
    """DynamoDB calls in this block give up in time for the invocation to answer (503) by itself."""
    from portfolio.adapters.dynamodb_deadline import within_invocation

    return within_invocation(remaining_ms)


@cache
def portfolio_store() -> PortfolioStore:
    from portfolio.adapters.dynamodb.store import PortfolioStore
    from portfolio.adapters.secrets import SecretValue

    config = settings()
    if config.cursor_signing_key_secret_id:
        secret = SecretValue(config.cursor_signing_key_secret_id, max_age_s=config.secrets_max_age_s)
        keys: dict[str, Any] = {"cursor_signing_key": secret, "previous_cursor_key": secret.previous}
    else:
        keys = {"cursor_signing_key": config.cursor_signing_key.get_secret_value()}
    return PortfolioStore(
        dynamodb_client(),
        config.table_name,
        **keys,
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
def stale_view_retirement() -> StaleViewRetirement:
    from portfolio.services.stale_views import StaleViewRetirement

    return StaleViewRetirement(portfolio_cache())


@cache
def coins_api() -> CoinsApi:
    from portfolio.adapters.coins_api import make_coins_api

    return make_coins_api(settings())


@cache
def price_service() -> PriceService:
    from portfolio.adapters.last_known_prices import LastKnownPriceStore
    from portfolio.adapters.price_redis_tier import PriceRedisTier
    from portfolio.services.price_service import PriceService

    config = settings()
    client = redis_client()
    return PriceService(
        coins_api(),
        PriceRedisTier(client, config) if client is not None else None,
        LastKnownPriceStore(dynamodb_client(), config.table_name),
        config,
    )


@cache
def price_history_store() -> PriceHistoryStore:
    from portfolio.adapters.price_history import PriceHistoryStore

    return PriceHistoryStore(dynamodb_client(), settings().table_name)


@cache
def activity_log() -> RedisActivityLog:
    from portfolio.adapters.activity_log import RedisActivityLog

    return RedisActivityLog(redis_client())


@cache
def rate_limiter() -> RateLimiter:
    """Per-caller token buckets in Redis (a rate of 0 lifts that limit; no Redis, no limit)."""
    from portfolio.adapters.rate_limiter import BucketLimit, RedisRateLimiter
    from portfolio.services.ports import RequestKind

    config = settings()
    return RedisRateLimiter(
        redis_client(),
        {
            RequestKind.WRITE: BucketLimit(config.user_write_rate_per_s, config.user_write_burst),
            RequestKind.READ: BucketLimit(config.user_read_rate_per_s, config.user_read_burst),
        },
    )


@cache
def history_backfill() -> HistoryBackfill | None:
    """None when HISTORY_BACKFILL_BUDGET_S is 0: performance then shows the swept prices only."""
    from portfolio.services.history_backfill import HistoryBackfill

    config = settings()
    if config.history_backfill_budget_s <= 0:
        return None
    return HistoryBackfill(
        coins_api(),
        price_history_store(),
        budget_s=config.history_backfill_budget_s,
        batch_size=config.price_batch_size,
        max_concurrency=config.price_max_concurrency,
        min_confidence=config.price_min_confidence,
        no_data_ttl_s=config.history_backfill_no_data_ttl_s,
    )


@cache
def portfolio_reader() -> PortfolioReader:
    from portfolio.services.portfolio_reader import PortfolioReader

    return PortfolioReader(
        portfolio_store(),
        price_service(),
        portfolio_cache(),
        price_history_store(),
        activity=activity_log(),
        backfill=history_backfill(),
    )


@cache
def transaction_recorder() -> TransactionRecorder:
    from portfolio.services.transaction_recorder import Limits, TransactionRecorder

    config = settings()
    return TransactionRecorder(
        portfolio_store(),
        price_service(),
        portfolio_cache(),
        activity=activity_log(),
        historical=price_service(),
        limits=Limits(max_transactions=config.max_transactions_per_user, max_tokens=config.max_tokens_per_user),
        live=live_updates(),
    )


@cache
def chain_nodes() -> dict[str, ChainNode]:
    from portfolio.adapters.chain_readers import configured_nodes

    return configured_nodes(settings())


@cache
def chain_readers() -> dict[str, ChainReader]:
    from portfolio.adapters.chain_readers import make_chain_readers

    return make_chain_readers(settings(), chain_nodes())


@cache
def wallet_sync_board() -> RedisWalletSyncBoard:
    from portfolio.adapters.wallet_sync_board import RedisWalletSyncBoard

    return RedisWalletSyncBoard(redis_client())


@cache
def wallet_sync() -> WalletSync:
    from portfolio.services.wallet_sync import WalletSync

    return WalletSync(
        chain_readers(),
        transaction_recorder(),
        price_service(),
        board=wallet_sync_board(),
        start_blocks={chain: node.start_block for chain, node in chain_nodes().items()},
        checkpoint=timedelta(minutes=settings().wallet_checkpoint_minutes),
    )


@cache
def wallet_links() -> WalletLinks:
    from portfolio.services.wallet_links import WalletLinks

    config = settings()
    return WalletLinks(
        portfolio_store(),
        transaction_recorder(),
        wallet_sync(),
        board=wallet_sync_board(),
        on_demand_every_s=config.wallet_sync_on_demand_every_s,
        max_wallets=config.max_wallets_per_user,
    )


@cache
def price_sweep() -> PriceSweep:
    from portfolio.services.price_sweep import PriceSweep

    return PriceSweep(portfolio_store(), price_service(), price_history_store())


@cache
def sqs_client():  # type: ignore[no-untyped-def]
    from portfolio.adapters.refresh_queue import make_sqs_client

    trace_aws_sdk_calls()
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
        sweep=price_sweep(),
        activity=activity_log(),
        alerting=alert_store(),
        active_for=timedelta(hours=config.active_user_hours),
        idle_every_cycles=config.idle_refresh_every_cycles,
        interval_s=config.refresh_interval_s,
    )


@cache
def portfolio_refresher() -> PortfolioRefresher:
    from portfolio.services.portfolio_refresher import PortfolioRefresher

    return PortfolioRefresher(
        portfolio_store(),
        price_service(),
        portfolio_cache(),
        wallets=_wallet_sync_when_configured,
        wallet_budget_s=settings().wallet_sync_budget_s,
        user_budget_s=settings().refresh_user_budget_ms / 1000,
        live=live_updates(),
        alerts=alert_evaluation(),
    )


@cache
def alert_store() -> AlertStore:
    from portfolio.adapters.dynamodb.alerts import AlertStore

    return AlertStore(dynamodb_client(), settings().table_name)


@cache
def alert_rules() -> AlertRules:
    from portfolio.services.alert_rules import AlertRules

    return AlertRules(alert_store(), max_rules=settings().max_alert_rules_per_user)


@cache
def events_client():  # type: ignore[no-untyped-def]
    from portfolio.adapters.alert_events import make_events_client

    trace_aws_sdk_calls()
    return make_events_client(settings())


@cache
def alert_publisher() -> EventBridgeAlertPublisher | None:
    """None without ALERT_EVENT_BUS_NAME: fired alerts then reach WebSocket connections only."""
    from portfolio.adapters.alert_events import EventBridgeAlertPublisher

    bus_name = settings().alert_event_bus_name
    return None if not bus_name else EventBridgeAlertPublisher(events_client(), bus_name)


@cache
def alert_evaluation() -> AlertEvaluation:
    from portfolio.adapters.past_prices import PastPriceStore
    from portfolio.services.alert_evaluation import AlertEvaluation

    return AlertEvaluation(
        alert_store(),
        price_service(),
        PastPriceStore(dynamodb_client(), settings().table_name),
        publisher=alert_publisher(),
        live=live_updates,
    )


_WALLET_SYNC_RETRY_S = 60.0
_wallet_sync_failed_at: list[float] = []


def _wallet_sync_when_configured() -> WalletSync | None:
    """Wallet sync, or None while its node configuration cannot be read (a bad variable, the secret
    out of reach): that stops wallet sync, never the valuation of everyone else, and is tried again
    a minute later."""
    if _wallet_sync_failed_at and time.monotonic() - _wallet_sync_failed_at[-1] < _WALLET_SYNC_RETRY_S:
        return None
    try:
        return wallet_sync()
    except Exception:
        logger.exception("wallet sync unavailable; tried again in a minute")
        _wallet_sync_failed_at[:] = [time.monotonic()]
        return None


@cache
def connection_registry() -> DynamoConnectionRegistry:
    from portfolio.adapters.connection_registry import DynamoConnectionRegistry

    config = settings()
    return DynamoConnectionRegistry(
        dynamodb_client(),
        config.table_name,
        redis_client(),
        region=config.aws_region,
        max_connections=config.max_connections_per_user,
    )


@cache
def live_connections() -> LiveConnections:
    from portfolio.services.live_connections import LiveConnections

    return LiveConnections(
        connection_registry(),
        activity=activity_log(),
        pushed=pushed_figures(),
        max_connections=settings().max_connections_per_user,
    )


@cache
def live_updates() -> LiveUpdatePublisher | None:
    """Pushes to users' WebSocket connections; None without WEBSOCKET_CALLBACK_URL (nothing is pushed)."""
    from portfolio.adapters.management_api import ManagementApiPusher, make_management_client
    from portfolio.services.live_updates import LiveUpdatePublisher

    config = settings()
    if not config.websocket_callback_url:
        return None
    budget_s = config.live_update_budget_ms / 1000
    client = make_management_client(
        config.websocket_callback_url,
        config.aws_region,
        timeout_s=budget_s,
        max_connections=config.live_update_concurrency,
    )
    return LiveUpdatePublisher(
        connection_registry(),
        ManagementApiPusher(client),
        budget_s=budget_s,
        max_concurrency=config.live_update_concurrency,
        pushed=pushed_figures(),
    )


@cache
def pushed_figures() -> RedisPushedFigures:
    """What each user's connections were last told (`forget(user_id)` makes the next update's changeUsd null)."""
    from portfolio.adapters.pushed_figures import RedisPushedFigures

    return RedisPushedFigures(redis_client())


def finish_live_updates(timeout_s: float | None = None) -> PushOutcome | None:
    """Waits (at most the push budget, or `timeout_s`) for the pushes this invocation started, so none
    is left frozen with the container; costs nothing when none was started. The handlers that push
    call it last."""
    if live_updates.cache_info().currsize == 0:
        return None
    publisher = live_updates()
    return None if publisher is None else publisher.drain(timeout_s)


@cache
def token_verifier() -> TokenVerifier:
    """The WebSocket authorizer's: JWT_ISSUER's JWKS, or the local stack's key where STAGE is local."""
    from portfolio.adapters.token_verifier import JwtVerifier

    config = settings()
    config.check_local_jwt_secret()
    if not config.jwt_issuer or not config.jwt_audience:
        raise RuntimeError("JWT_ISSUER and JWT_AUDIENCE must be set")
    secret = config.local_jwt_secret
    return JwtVerifier(
        issuer=config.jwt_issuer,
        audience=config.jwt_audience,
        local_secret=None if secret is None else secret.get_secret_value(),
    )


@cache
def idempotency_store() -> BasePersistenceLayer | None:
    """Refresh messages are deduplicated in Redis: a refresh that writes nothing to DynamoDB should
    not write there to remember it ran. None without Redis (a repeated refresh is harmless)."""
    from aws_lambda_powertools.utilities.idempotency.persistence.cache import CachePersistenceLayer

    client = redis_client()
    return None if client is None else CachePersistenceLayer(client=client)  # type: ignore[arg-type]


_FACTORIES = (
    settings,
    dynamodb_client,
    portfolio_store,
    redis_client,
    portfolio_cache,
    stale_view_retirement,
    coins_api,
    price_service,
    sqs_client,
    refresh_planner,
    portfolio_refresher,
    idempotency_store,
    price_history_store,
    activity_log,
    rate_limiter,
    history_backfill,
    portfolio_reader,
    transaction_recorder,
    price_sweep,
    chain_nodes,
    chain_readers,
    wallet_sync_board,
    wallet_sync,
    wallet_links,
    connection_registry,
    live_connections,
    live_updates,
    pushed_figures,
    token_verifier,
    alert_store,
    alert_rules,
    events_client,
    alert_publisher,
    alert_evaluation,
)


def reset() -> None:
    """Forget every instance, so the next call reads the environment again."""
    for factory in _FACTORIES:
        factory.cache_clear()
    _wallet_sync_failed_at.clear()


# Kept across a SnapStart restore: the settings, the node URLs (resolved on first use, never in the
# snapshot), and the boto3 clients, the costly ones to build (botocore reconnects and refreshes its
# credentials by itself). Everything else is rebuilt on next
# use: Redis and httpx connections, the cache's own PRNG, and whatever holds one of them.
_KEPT_ACROSS_RESTORES = (settings, dynamodb_client, sqs_client, events_client, chain_nodes)

# What the factories import on first use, beyond the modules below.
_FIRST_USE_MODULES = ("boto3", "portfolio.settings", "aws_lambda_powertools.utilities.idempotency")
_FIRST_USE_PACKAGES = ("portfolio.adapters", "portfolio.services")


def preload_for_snapshot() -> None:
    """SnapStart, before the snapshot: import what the first invocation would, so no restored
    environment pays for it. Builds no client: the snapshot holds no connection and no credentials."""
    trace_aws_sdk_calls()  # creates the Tracer, importing the X-Ray SDK and botocore
    for module in _FIRST_USE_MODULES:
        importlib.import_module(module)
    for package in _FIRST_USE_PACKAGES:
        for found in pkgutil.iter_modules(importlib.import_module(package).__path__, f"{package}."):
            importlib.import_module(found.name)


def refresh_after_restore() -> None:
    """SnapStart, after a restore: every environment resumed from one snapshot starts with the same
    memory, so each gets connections and a random sequence of its own (retry and TTL jitter)."""
    for factory in _FACTORIES:
        if factory not in _KEPT_ACROSS_RESTORES:
            factory.cache_clear()
    random.seed()
    from portfolio.adapters.secrets import forget_secrets

    forget_secrets()


def _register_snapstart_hooks() -> None:
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:  # only Lambda's Python runtime ships it; elsewhere nothing is ever snapshotted
        return
    register_before_snapshot(preload_for_snapshot)
    register_after_restore(refresh_after_restore)


_register_snapstart_hooks()
