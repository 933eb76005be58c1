"""The cache invalidator on records a global table's replica stream carries: portfolio and transaction
items arriving one by one, in any order, with or without their old image."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from portfolio import wiring
from portfolio.services.ports import CacheKind, CacheUnavailableError
from portfolio.services.stale_views import (
    TRANSACTION_VIEWS,
    PortfolioChange,
    StaleViewRetirement,
    TransactionChange,
)

from local_stack.functions import handler_locations, load_handler
from local_stack.lambda_context import LocalLambdaContext


@pytest.fixture(scope="module")
def invalidator() -> ModuleType:
    load_handler("CacheInvalidatorFunction")  # puts functions/ on the import path, as Lambda has it
    return importlib.import_module(handler_locations()["CacheInvalidatorFunction"].module)


@dataclass
class RecordingCache:
    """The cache as the invalidator sees it (ViewRetirement), recording what it was asked."""

    answering: bool = True
    calls: list[tuple[str, str, Any]] = field(default_factory=list)

    def retire_views_before(self, user_id: str, version: int) -> bool:
        self.calls.append(("retire_views_before", user_id, version))
        return self.answering

    def invalidate(self, user_id: str, kinds: Iterable[CacheKind]) -> bool:
        self.calls.append(("invalidate", user_id, tuple(kinds)))
        return self.answering

    def invalidate_user(self, user_id: str) -> bool:
        self.calls.append(("invalidate_user", user_id, None))
        return self.answering


def stream_record(
    event_name: str,
    user_id: str,
    sort_key: str,
    *,
    new_image: dict[str, Any] | None = None,
    old_image: dict[str, Any] | None = None,
    sequence: int = 1,
) -> dict[str, Any]:
    """A record as Lambda delivers it from a NEW_AND_OLD_IMAGES stream (a global table's replica)."""
    keys = {"pk": {"S": f"USER#{user_id}"}, "sk": {"S": sort_key}}
    stream: dict[str, Any] = {
        "ApproximateCreationDateTime": 1736935500,
        "Keys": keys,
        "SequenceNumber": f"{sequence:024d}",
        "SizeBytes": 100,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if new_image is not None:
        stream["NewImage"] = {**keys, **new_image}
    if old_image is not None:
        stream["OldImage"] = {**keys, **old_image}
    return {
        "eventID": f"event-{sequence}",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "dynamodb": stream,
        "eventSourceARN": "arn:aws:dynamodb:eu-west-1:123456789012:table/portfolio/stream/2025-01-15T10:00:00.000",
    }


def transaction_image(transaction_id: str) -> dict[str, Any]:
    return {"id": {"S": transaction_id}, "type": {"S": "buy"}, "amount": {"S": "1"}}


def portfolio_image(user_id: str, version: int) -> dict[str, Any]:
    return {"userId": {"S": user_id}, "version": {"N": str(version)}}


def test_given_a_replicated_transaction_item_when_read_then_it_is_a_transaction_change_of_its_user(
    invalidator: ModuleType,
) -> None:
    record = DynamoDBRecord(stream_record("INSERT", "alice", "TX#t-1", new_image=transaction_image("t-1")))

    assert invalidator.portfolio_change(record) == TransactionChange(user_id="alice")


def test_given_a_deleted_transaction_item_with_its_old_image_only_when_read_then_its_user_comes_from_the_keys(
    invalidator: ModuleType,
) -> None:
    record = DynamoDBRecord(stream_record("REMOVE", "bob", "TX#t-9", old_image=transaction_image("t-9")))

    assert invalidator.portfolio_change(record) == TransactionChange(user_id="bob")


def test_given_a_portfolio_item_with_its_old_image_when_read_then_the_new_version_is_the_change(
    invalidator: ModuleType,
) -> None:
    record = DynamoDBRecord(
        stream_record(
            "MODIFY",
            "carol",
            "PROFILE",
            new_image=portfolio_image("carol", 8),
            old_image=portfolio_image("carol", 7),
        )
    )

    assert invalidator.portfolio_change(record) == PortfolioChange(user_id="carol", version=8)


def test_given_an_item_of_no_view_when_read_then_it_is_no_change(invalidator: ModuleType) -> None:
    other_sort_key = DynamoDBRecord(stream_record("INSERT", "alice", "NOTE#1", new_image={}))
    other_partition = stream_record("INSERT", "x", "TX#1", new_image={})
    other_partition["dynamodb"]["Keys"]["pk"] = {"S": "TOKENS#1"}

    assert invalidator.portfolio_change(other_sort_key) is None
    assert invalidator.portfolio_change(DynamoDBRecord(other_partition)) is None


def test_given_a_transaction_change_when_retired_then_only_the_views_read_from_transactions_are() -> None:
    cache = RecordingCache()

    StaleViewRetirement(cache).retire(TransactionChange(user_id="alice"))

    assert cache.calls == [("invalidate", "alice", TRANSACTION_VIEWS)]
    assert set(TRANSACTION_VIEWS) == {CacheKind.TRANSACTIONS, CacheKind.PERFORMANCE}


def test_given_redis_unreachable_when_a_transaction_change_is_retired_then_it_must_be_delivered_again() -> None:
    with pytest.raises(CacheUnavailableError):
        StaleViewRetirement(RecordingCache(answering=False)).retire(TransactionChange(user_id="alice"))


def test_given_an_import_replicated_as_a_hundred_records_when_delivered_then_each_users_views_are_retired_once(
    invalidator: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: a batch as a replica's stream brings an import: 100 transaction items of alice, one of
    # bob, then alice's portfolio item
    cache = RecordingCache()
    monkeypatch.setattr(wiring, "stale_view_retirement", lambda: StaleViewRetirement(cache))
    records = [
        stream_record("INSERT", "alice", f"TX#t-{index}", new_image=transaction_image(f"t-{index}"), sequence=index)
        for index in range(1, 101)
    ]
    records.append(stream_record("INSERT", "bob", "TX#t-1", new_image=transaction_image("t-1"), sequence=101))
    records.append(stream_record("MODIFY", "alice", "PROFILE", new_image=portfolio_image("alice", 3), sequence=102))

    # When
    answer = invalidator.process_stream_event({"Records": records}, LocalLambdaContext("cache-invalidator"))

    # Then: nothing failed, and Redis was asked three times, not 102
    assert answer == {"batchItemFailures": []}
    assert cache.calls == [
        ("invalidate", "alice", TRANSACTION_VIEWS),
        ("invalidate", "bob", TRANSACTION_VIEWS),
        ("retire_views_before", "alice", 3),
    ]


def test_given_redis_unreachable_when_transaction_records_are_delivered_then_each_is_reported_failed(
    invalidator: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: Redis does not answer
    monkeypatch.setattr(wiring, "stale_view_retirement", lambda: StaleViewRetirement(RecordingCache(answering=False)))
    records = [
        stream_record("INSERT", "alice", f"TX#t-{index}", new_image=transaction_image(f"t-{index}"), sequence=index)
        for index in (1, 2)
    ]

    # When
    answer = invalidator.process_stream_event({"Records": records}, LocalLambdaContext("cache-invalidator"))

    # Then: no record is taken as done because an earlier one of the same user failed
    failed = [failure["itemIdentifier"] for failure in answer["batchItemFailures"]]
    assert failed == [record["dynamodb"]["SequenceNumber"] for record in records]
