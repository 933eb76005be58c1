"""The price updater's metrics count each invocation's users, however many invocations a container serves."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from portfolio.observability import metrics
from portfolio.services.refresh_message import RefreshMessage

from local_stack.functions import load_handler
from tests.integration.refresh.seeding import random_token, seed_user

EVENTS = Path(__file__).resolve().parents[3] / "events"
price_updater = load_handler("PriceUpdaterFunction")
FIRST_WINDOW = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)


def sqs_batch(*messages: RefreshMessage) -> dict:
    """events/sqs-refresh-batch.json with these messages as its records."""
    sample = json.loads((EVENTS / "sqs-refresh-batch.json").read_text())
    records = []
    for message in messages:
        record = copy.deepcopy(sample["Records"][0])
        record["messageId"] = str(uuid.uuid4())
        record["body"] = message.model_dump_json(by_alias=True)
        records.append(record)
    return {"Records": records}


def emitted(output: str, metric: str) -> list[float]:
    """The values of one metric in the EMF documents Powertools printed, one per flush."""
    documents = [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]
    values = []
    for document in documents:
        if metric in document:
            value = document[metric]
            values.append(sum(value) if isinstance(value, list) else value)
    return values


@pytest.fixture
def unreadable_user(store, refresh_env, dynamodb_client) -> str:
    """A user whose stored portfolio item no longer decodes: refreshing it fails every time."""
    user_id = f"unreadable-{uuid.uuid4().hex[:10]}"
    seed_user(store, user_id, [random_token()])
    dynamodb_client.update_item(
        TableName=refresh_env.table_name,
        Key={"pk": {"S": f"USER#{user_id}"}, "sk": {"S": "PROFILE"}},
        UpdateExpression="SET version = :broken",
        ExpressionAttributeValues={":broken": {"S": "not a number"}},
    )
    return user_id


def refresh_two_users_and_one_failure(store, unreadable_user: str, invocation: int, lambda_context) -> dict:
    """One invocation of the price updater: two healthy users in one message, the unreadable one in another."""
    healthy = [f"metrics-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    for user_id in healthy:
        seed_user(store, user_id, [random_token()])
    window = FIRST_WINDOW + timedelta(minutes=5 * invocation)
    event = sqs_batch(
        RefreshMessage(window=window, user_ids=healthy, tier="active"),
        RefreshMessage(window=window, user_ids=[unreadable_user], tier="active"),
    )
    return price_updater(event, lambda_context)


def carried(metric: str) -> float:
    """What the metric set holds for the next flush, once an invocation is over."""
    values = metrics.metric_set.get(metric, {}).get("Value", [])
    return sum(values)


def test_given_three_invocations_in_one_container_when_each_refreshes_two_users_then_each_reports_its_own_counts(
    store, coins_api, unreadable_user, lambda_context, capsys
):
    # Given one container (the handler imported once)
    capsys.readouterr()

    # When three invocations each refresh two users and fail one
    answers = [refresh_two_users_and_one_failure(store, unreadable_user, n, lambda_context) for n in range(3)]

    # Then every invocation reports its own two users refreshed and its own one failure: no running total
    output = capsys.readouterr().out
    assert [len(answer["batchItemFailures"]) for answer in answers] == [1, 1, 1]
    assert emitted(output, "UsersRefreshed") == [2, 2, 2]
    assert emitted(output, "RefreshFailures") == [1, 1, 1]


def test_given_metrics_disabled_as_make_dev_runs_them_when_three_invocations_refresh_users_then_none_carries_over(
    store, coins_api, unreadable_user, lambda_context, capsys, monkeypatch
):
    # Given one container with metrics disabled (POWERTOOLS_METRICS_DISABLED, as `make dev` sets it)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    metrics.clear_metrics()
    capsys.readouterr()

    # When three invocations each refresh two users and fail one
    left_behind = []
    for invocation in range(3):
        refresh_two_users_and_one_failure(store, unreadable_user, invocation, lambda_context)
        left_behind.append((carried("UsersRefreshed"), carried("RefreshFailures")))

    # Then nothing is printed, and no invocation leaves its counts for the next one to add to
    # (2, 4, 6 and 1, 2, 3 when the set was kept, printed as one running total at its 100th value)
    assert emitted(capsys.readouterr().out, "UsersRefreshed") == []
    assert left_behind == [(0, 0), (0, 0), (0, 0)]
