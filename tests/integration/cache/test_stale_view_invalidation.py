"""The cache invalidator on the table's stream (events/dynamodb-portfolio-change.json), with a real Redis:
views older than a committed change are retired, newer ones kept, and a Redis it cannot reach makes
the record fail so the stream delivers it again. On the single node and on the three-master cluster."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from portfolio import wiring
from portfolio.adapters.portfolio_cache import CacheKind
from portfolio.settings import Settings

from local_stack.functions import load_handler
from local_stack.ports import free_port
from tests.support.redis_cluster import RedisTarget

EVENTS = Path(__file__).resolve().parents[3] / "events"
invalidator = load_handler("CacheInvalidatorFunction")
VIEW = {(CacheKind.PORTFOLIO, ""): b'{"totalValueUsd": "100"}'}


@pytest.fixture
def invalidator_environment(
    function_environment: Callable[..., Settings], redis_target: RedisTarget
) -> Callable[..., Settings]:
    """The function's environment pointed at the target Redis, in its mode, plus `variables`."""

    def configure(**variables: str) -> Settings:
        target = {"REDIS_URL": redis_target.url, "REDIS_CLUSTER_MODE": str(redis_target.cluster_mode).lower()}
        return function_environment(**{**target, **variables})

    return configure


def committed(user_id: str, version: int, *, sort_key: str = "PROFILE") -> dict[str, Any]:
    """The sample stream event, for this user at this version."""
    event = json.loads((EVENTS / "dynamodb-portfolio-change.json").read_text())
    record = copy.deepcopy(event["Records"][0])
    record["dynamodb"]["Keys"] = {"pk": {"S": f"USER#{user_id}"}, "sk": {"S": sort_key}}
    record["dynamodb"]["NewImage"].update(
        pk={"S": f"USER#{user_id}"}, sk={"S": sort_key}, userId={"S": user_id}, version={"N": str(version)}
    )
    return {"Records": [record]}


def test_given_views_of_an_older_version_when_a_change_is_delivered_then_they_are_retired(
    invalidator_environment: Callable[..., Settings], user_id: str, lambda_context: Any
) -> None:
    # Given the views of version 6 cached (the writer of version 7 could not reach Redis)
    invalidator_environment()
    cache = wiring.portfolio_cache()
    assert cache.replace_views(user_id, 6, VIEW)

    # When the stream delivers version 7
    answer = invalidator(committed(user_id, 7), lambda_context)

    # Then no record failed and the old view is no longer served
    assert answer == {"batchItemFailures": []}
    assert cache.get(CacheKind.PORTFOLIO, user_id) is None


def test_given_views_the_writer_already_warmed_when_its_change_is_delivered_then_they_stay(
    invalidator_environment: Callable[..., Settings], user_id: str, lambda_context: Any
) -> None:
    # Given the writer of version 7 warmed its views
    invalidator_environment()
    cache = wiring.portfolio_cache()
    assert cache.replace_views(user_id, 7, VIEW)

    # When the stream delivers version 7 (or, late, version 6)
    invalidator(committed(user_id, 7), lambda_context)
    invalidator(committed(user_id, 6), lambda_context)

    # Then the fresh views are still hits
    assert cache.get(CacheKind.PORTFOLIO, user_id) == VIEW[(CacheKind.PORTFOLIO, "")]


def test_given_redis_unreachable_when_a_change_is_delivered_then_its_record_fails_to_be_delivered_again(
    invalidator_environment: Callable[..., Settings], user_id: str, lambda_context: Any
) -> None:
    # Given a Redis nobody answers for
    invalidator_environment(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", REDIS_CONNECT_TIMEOUT_MS="200")
    event = committed(user_id, 7)

    # When the change is delivered
    answer = invalidator(event, lambda_context)

    # Then the record is reported failed (by its sequence number), not dropped
    sequence_number = event["Records"][0]["dynamodb"]["SequenceNumber"]
    assert answer == {"batchItemFailures": [{"itemIdentifier": sequence_number}]}


def test_given_a_record_of_another_item_when_delivered_then_it_is_skipped(
    invalidator_environment: Callable[..., Settings], user_id: str, lambda_context: Any
) -> None:
    # Given cached views, When the record of an item no view is read from slips past the stream's filter
    invalidator_environment()
    cache = wiring.portfolio_cache()
    assert cache.replace_views(user_id, 6, VIEW)
    answer = invalidator(committed(user_id, 9, sort_key="NOTE#n-1"), lambda_context)

    # Then it succeeds without touching the views
    assert answer == {"batchItemFailures": []}
    assert cache.get(CacheKind.PORTFOLIO, user_id) is not None
