"""The cache invalidator on a transaction item's record, with a real Redis (single node and cluster): in a
global table's replica the transactions may arrive after their portfolio item, so their arrival
retires the views read from them (transaction pages, performance) and keeps the others."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from portfolio import wiring
from portfolio.adapters.portfolio_cache import CacheKind
from portfolio.settings import Settings

from local_stack.functions import load_handler
from tests.support.redis_cluster import RedisTarget

invalidator = load_handler("CacheInvalidatorFunction")
SUMMARY = b'{"costBasisUsd": "2"}'
PAGE = b'{"transactions": [{"id": "t-1"}]}'
PERFORMANCE = b'{"period": "24h"}'


@pytest.fixture
def invalidator_cache(function_environment: Callable[..., Settings], redis_target: RedisTarget) -> Any:
    """The function's environment pointed at the target Redis; the cache it uses."""
    function_environment(REDIS_URL=redis_target.url, REDIS_CLUSTER_MODE=str(redis_target.cluster_mode).lower())
    return wiring.portfolio_cache()


def replicated_transaction(user_id: str, transaction_id: str, event_name: str = "INSERT") -> dict[str, Any]:
    keys = {"pk": {"S": f"USER#{user_id}"}, "sk": {"S": f"TX#{transaction_id}"}}
    image = {**keys, "id": {"S": transaction_id}, "type": {"S": "buy"}}
    stream: dict[str, Any] = {
        "ApproximateCreationDateTime": 1736935500,
        "Keys": keys,
        "SequenceNumber": "111100000000012345678902",
        "SizeBytes": 200,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    stream["OldImage" if event_name == "REMOVE" else "NewImage"] = image
    record = {
        "eventID": "a87ff679a2f3e71d9181a67b7542122c",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "dynamodb": stream,
        "eventSourceARN": "arn:aws:dynamodb:eu-west-1:123456789012:table/portfolio/stream/2025-01-15T10:00:00.000",
    }
    return {"Records": [record]}


@pytest.mark.parametrize("event_name", ["INSERT", "REMOVE"])
def test_given_views_cached_when_a_transaction_item_arrives_then_its_pages_and_performance_are_retired(
    invalidator_cache: Any, user_id: str, lambda_context: Any, event_name: str
) -> None:
    # Given: the summary (of the portfolio item already replicated), a transaction page and a
    # performance view, all cached in this region
    cache = invalidator_cache
    assert cache.replace_views(user_id, 2, {(CacheKind.PORTFOLIO, ""): SUMMARY})
    assert cache.set(CacheKind.TRANSACTIONS, user_id, PAGE, filter_key="limit=50")
    assert cache.set(CacheKind.PERFORMANCE, user_id, PERFORMANCE, filter_key="24h")

    # When: a transaction item of the user arrives (written, or deleted)
    answer = invalidator(replicated_transaction(user_id, "t-2", event_name), lambda_context)

    # Then: the views read from transaction items are no longer served; the summary still is
    assert answer == {"batchItemFailures": []}
    assert cache.get(CacheKind.TRANSACTIONS, user_id, "limit=50") is None
    assert cache.get(CacheKind.PERFORMANCE, user_id, "24h") is None
    assert cache.get(CacheKind.PORTFOLIO, user_id) == SUMMARY


def test_given_another_users_transaction_arrives_then_this_users_views_stay(
    invalidator_cache: Any, user_id: str, lambda_context: Any
) -> None:
    cache = invalidator_cache
    assert cache.set(CacheKind.TRANSACTIONS, user_id, PAGE, filter_key="limit=50")

    invalidator(replicated_transaction(f"{user_id}-other", "t-1"), lambda_context)

    assert cache.get(CacheKind.TRANSACTIONS, user_id, "limit=50") == PAGE
