"""The refresh functions run on the sample events in events/, as `sam local invoke -e` would pass them."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from portfolio import wiring
from portfolio.adapters.portfolio_cache import CacheKind

from local_stack.functions import load_handler
from tests.integration.refresh.seeding import random_token, seed_user
from tests.integration.refresh.sqs_helpers import receive_all

EVENTS = Path(__file__).resolve().parents[3] / "events"
scheduler = load_handler("RefreshSchedulerFunction")
price_updater = load_handler("PriceUpdaterFunction")


def sample(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_given_the_sample_scheduled_event_when_the_scheduler_runs_then_every_user_is_queued_for_its_window(
    store, sqs_client, refresh_queues, lambda_context
):
    # Given two users with holdings
    users = [f"sample-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    for user_id in users:
        seed_user(store, user_id, [random_token()])

    # When the scheduler gets events/scheduler-event.json
    answer = scheduler(sample("scheduler-event.json"), lambda_context)

    # Then one message carries both users, for the window the event time falls in
    assert answer["started"] is True
    assert answer["usersQueued"] == 2
    [message] = receive_all(sqs_client, refresh_queues.url)
    body = json.loads(message["Body"])
    assert sorted(body["userIds"]) == sorted(users)
    assert body["window"] == answer["window"].replace("+00:00", "Z")


def test_given_sam_clis_generated_scheduled_event_without_a_version_when_the_scheduler_runs_then_it_is_taken(
    store, sqs_client, refresh_queues, lambda_context
):
    # Given a user with holdings, and events/scheduled-event-sam.json: what `sam local generate-event
    # cloudwatch scheduled-event` prints, with no "version" (EventBridge itself sends "0")
    event = sample("scheduled-event-sam.json")
    assert "version" not in event
    user_id = f"sample-{uuid.uuid4().hex[:10]}"
    seed_user(store, user_id, [random_token()])

    # When the scheduler gets it
    answer = scheduler(event, lambda_context)

    # Then it runs the window of the event's time and queues the user
    assert answer["window"] == "1970-01-01T00:00:00+00:00"
    assert (answer["started"], answer["usersQueued"]) == (True, 1)
    [message] = receive_all(sqs_client, refresh_queues.url)
    assert json.loads(message["Body"])["userIds"] == [user_id]


def test_given_the_sample_sqs_batch_when_the_updater_runs_then_every_message_succeeds(store, coins_api, lambda_context):
    # Given events/sqs-refresh-batch.json, its users renamed so no other test shares their cache keys
    event = sample("sqs-refresh-batch.json")
    for record in event["Records"]:
        body = json.loads(record["body"])
        body["userIds"] = [f"{user_id}-{uuid.uuid4().hex[:8]}" for user_id in body["userIds"]]
        for user_id in body["userIds"]:
            seed_user(store, user_id, [random_token()])
        record["body"] = json.dumps(body)

    # When the price updater gets the batch
    answer = price_updater(event, lambda_context)

    # Then no message is reported failed and every user's views are warm and priced
    assert answer == {"batchItemFailures": []}
    for record in event["Records"]:
        for user_id in json.loads(record["body"])["userIds"]:
            summary = json.loads(wiring.portfolio_cache().get(CacheKind.PORTFOLIO, user_id))
            assert (summary["holdingCount"], summary["unpricedCount"]) == (1, 0)
