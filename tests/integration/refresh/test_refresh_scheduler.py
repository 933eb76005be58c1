"""RefreshSchedulerFunction on moto's SQS and DynamoDB: every due user queued once per window
(here every user is due: the test environment gives idle users a pass every cycle)."""

from __future__ import annotations

import json
import uuid

import pytest

from local_stack.functions import load_handler
from tests.integration.refresh.flaky_sqs import flaky_sqs
from tests.integration.refresh.seeding import seed_user, token
from tests.integration.refresh.sqs_helpers import queue_depth, receive_all

scheduler = load_handler("RefreshSchedulerFunction")


def scheduled_event(time: str = "2025-01-15T10:02:31Z", event_id: str | None = None) -> dict:
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time,
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/refresh-every-5-minutes"],
        "detail": {},
    }


@pytest.fixture
def users(store) -> list[str]:
    user_ids = [f"sched-{uuid.uuid4().hex[:10]}" for _ in range(23)]
    for index, user_id in enumerate(user_ids):
        seed_user(store, user_id, [token(index)])
    return user_ids


@pytest.fixture
def refresh_env(refresh_env, function_environment):
    return function_environment(
        REFRESH_QUEUE_URL=refresh_env.refresh_queue_url,
        PRICES_API_URL=refresh_env.prices_api_url,
        IDLE_REFRESH_EVERY_CYCLES="1",
        USERS_PER_MESSAGE="10",
    )


def test_given_23_users_when_the_schedule_fires_then_each_is_queued_once_in_messages_of_10(
    refresh_env, users, sqs_client, refresh_queues, lambda_context
):
    answer = scheduler(scheduled_event(), lambda_context)

    bodies = [json.loads(message["Body"]) for message in receive_all(sqs_client, refresh_queues.url)]
    assert sorted(user for body in bodies for user in body["userIds"]) == sorted(users)
    assert sorted(len(body["userIds"]) for body in bodies) == [3, 10, 10]
    assert {body["window"] for body in bodies} == {"2025-01-15T10:00:00Z"}
    assert answer["usersQueued"] == 23
    assert (answer["messages"], answer["sendMessageBatchCalls"]) == (3, 1)


def test_given_a_duplicate_event_in_the_same_window_when_it_fires_then_only_one_set_of_messages_is_queued(
    refresh_env, users, sqs_client, refresh_queues, lambda_context
):
    first = scheduler(scheduled_event("2025-01-15T10:00:00Z", event_id="event-a"), lambda_context)
    duplicate = scheduler(scheduled_event("2025-01-15T10:00:00Z", event_id="event-a"), lambda_context)
    later_in_window = scheduler(scheduled_event("2025-01-15T10:04:59Z", event_id="event-b"), lambda_context)

    assert first["started"] is True
    assert (duplicate["started"], duplicate["usersQueued"]) == (False, 0)
    assert (later_in_window["started"], later_in_window["usersQueued"]) == (False, 0)
    assert queue_depth(sqs_client, refresh_queues.url) == 3


def test_given_the_next_window_when_the_schedule_fires_then_users_are_queued_again(
    refresh_env, users, sqs_client, refresh_queues, lambda_context
):
    scheduler(scheduled_event("2025-01-15T10:00:00Z"), lambda_context)
    scheduler(scheduled_event("2025-01-15T10:05:00Z"), lambda_context)

    windows = [json.loads(message["Body"])["window"] for message in receive_all(sqs_client, refresh_queues.url)]
    assert sorted(set(windows)) == ["2025-01-15T10:00:00Z", "2025-01-15T10:05:00Z"]
    assert len(windows) == 6


def test_given_sqs_keeps_rejecting_a_message_when_the_schedule_fires_then_the_run_fails_and_a_retry_can_rerun_it(
    refresh_env, users, sqs_client, refresh_queues, lambda_context, monkeypatch, moto_endpoint
):
    from portfolio import wiring

    with flaky_sqs(moto_endpoint) as proxy:
        proxy.reject(users[0], times=-1)
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        wiring.reset()
        with pytest.raises(Exception, match="could not be queued"):
            scheduler(scheduled_event("2025-01-15T10:00:00Z", event_id="event-a"), lambda_context)

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    wiring.reset()
    retried = scheduler(scheduled_event("2025-01-15T10:00:00Z", event_id="event-a"), lambda_context)

    assert (retried["started"], retried["usersQueued"]) == (True, 23)
    bodies = [json.loads(message["Body"]) for message in receive_all(sqs_client, refresh_queues.url)]
    assert users[0] in {user for body in bodies for user in body["userIds"]}
