"""Pushing through a real management API client (boto3) to a local stand-in of API Gateway's management
API: what reaches whom, a gone connection (410) forgotten, and a management API that fails or stalls
never failing a write or a refresh, nor holding it past the push budget."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from portfolio import wiring
from portfolio.adapters.connection_registry import INDEXED, connection_key, connections_key
from portfolio.services.ports import PushOutcome
from portfolio.services.refresh_message import RefreshMessage

from local_stack.functions import load_handler
from local_stack.http_events import http_event
from local_stack.lambda_context import LocalLambdaContext
from tests.integration.live.conftest import BUDGET_MS, load_event
from tests.integration.refresh.seeding import random_token, seed_user

api = load_handler("ApiFunction")
price_updater = load_handler("PriceUpdaterFunction")
# What a bounded push may add to an invocation, with room for a busy machine.
BOUND_S = BUDGET_MS / 1000 + 1.5


def refresh_event(*user_ids: str) -> dict:
    """events/sqs-refresh-batch.json's first record, carrying one active message of these users."""
    event = load_event("sqs-refresh-batch.json")
    record = event["Records"][0]
    record["messageId"] = str(uuid.uuid4())
    record["body"] = RefreshMessage.model_validate(
        {"window": "2025-01-15T10:00:00Z", "userIds": list(user_ids), "tier": "active"}
    ).model_dump_json(by_alias=True)
    return {"Records": [record]}


def buy_body() -> dict:
    return {
        "id": f"buy-{uuid.uuid4().hex[:8]}",
        "type": "buy",
        "chain": "ethereum",
        "tokenAddress": "0x0000000000000000000000000000000000000000",
        "amount": "1.5",
        "priceUsd": "3000",
        "timestamp": "2025-01-01T00:00:00Z",
    }


def test_given_connections_when_sent_then_each_gets_the_json_through_a_signed_post(registry, management_api, user_id):
    registry.add(user_id, "conn-a")
    registry.add(user_id, "conn-b")

    outcome = wiring.live_updates().send(user_id, {"type": "alert.triggered", "userId": user_id})

    assert outcome == PushOutcome(delivered=2)
    posts = management_api.requests
    assert sorted(post.connection_id for post in posts) == ["conn-a", "conn-b"]
    assert all(post.signed for post in posts)
    assert all(json.loads(post.data) == {"type": "alert.triggered", "userId": user_id} for post in posts)


def test_given_a_connection_answering_410_then_it_is_deleted_and_unindexed(
    registry, management_api, user_id, dynamodb_client, redis_client, live_env
):
    registry.add(user_id, "conn-live")
    registry.add(user_id, "conn-gone")
    management_api.gone.add("conn-gone")

    outcome = wiring.live_updates().send(user_id, {"type": "x"})

    assert outcome == PushOutcome(delivered=1, gone=1)
    gone = dynamodb_client.get_item(TableName=live_env.table_name, Key=connection_key(user_id, "conn-gone"))
    assert "Item" not in gone
    assert redis_client.smembers(connections_key(user_id)) == {INDEXED.encode(), b"conn-live"}
    assert registry.connections_of(user_id) == ["conn-live"]


def test_given_a_connection_answering_410_when_a_refresh_pushes_then_its_item_and_index_entry_are_removed(
    live_env, registry, management_api, user_id, dynamodb_client, redis_client
):
    seed_user(wiring.portfolio_store(), user_id, [random_token()])
    registry.add(user_id, "conn-gone")
    assert redis_client.sismember(connections_key(user_id), "conn-gone")
    management_api.gone.add("conn-gone")

    response = price_updater(refresh_event(user_id), LocalLambdaContext("price-updater", timeout_s=60))

    assert response == {"batchItemFailures": []}
    assert [post.connection_id for post in management_api.requests] == ["conn-gone"]
    gone = dynamodb_client.get_item(TableName=live_env.table_name, Key=connection_key(user_id, "conn-gone"))
    assert "Item" not in gone
    assert not redis_client.sismember(connections_key(user_id), "conn-gone")
    # The index now says "none": the next refresh asks Redis only
    assert redis_client.smembers(connections_key(user_id)) == {INDEXED.encode()}


def test_given_more_stored_connections_than_the_cap_then_one_message_is_posted_to_no_more_than_the_cap(
    function_environment, live_env, management_api, user_id
):
    for number in range(5):
        wiring.connection_registry().add(user_id, f"conn-{number}")  # the cap is 10 here
    function_environment(
        WEBSOCKET_CALLBACK_URL=management_api.callback_url,
        LIVE_UPDATE_BUDGET_MS=str(BUDGET_MS),
        MAX_CONNECTIONS_PER_USER="3",
    )

    outcome = wiring.live_updates().send(user_id, {"type": "x"})

    assert outcome == PushOutcome(delivered=3)
    assert len({post.connection_id for post in management_api.requests}) == 3


def test_given_a_connection_answering_500_then_it_is_kept_and_the_failure_counted(registry, management_api, user_id):
    registry.add(user_id, "conn-ok")
    registry.add(user_id, "conn-broken")
    management_api.failing.add("conn-broken")

    outcome = wiring.live_updates().send(user_id, {"type": "x"})

    assert outcome == PushOutcome(delivered=1, failed=1)
    assert sorted(registry.connections_of(user_id)) == ["conn-broken", "conn-ok"]


def test_given_a_stalling_management_api_when_sending_then_the_caller_waits_the_budget_only(
    registry, management_api, user_id
):
    registry.add(user_id, "conn-a")
    management_api.stall_s = 5.0

    started = time.monotonic()
    outcome = wiring.live_updates().send(user_id, {"type": "x"})

    assert time.monotonic() - started < BOUND_S
    assert outcome == PushOutcome(failed=1)


@pytest.mark.parametrize("fault", ["stall", "500"])
def test_given_a_failing_management_api_when_a_refresh_runs_then_it_completes_and_warms_the_views(
    live_env, registry, management_api, user_id, fault
):
    seed_user(wiring.portfolio_store(), user_id, [random_token()])
    registry.add(user_id, "conn-a")
    if fault == "stall":
        management_api.stall_s = 5.0
    else:
        management_api.failing.add("conn-a")

    started = time.monotonic()
    response = price_updater(refresh_event(user_id), LocalLambdaContext("price-updater", timeout_s=60))
    elapsed = time.monotonic() - started

    assert response == {"batchItemFailures": []}
    assert elapsed < BOUND_S + 2
    assert management_api.request_count == 1  # the update was attempted
    assert wiring.portfolio_refresher().counts.users_valued == 1
    assert registry.connections_of(user_id) == ["conn-a"]  # a failure is not a goodbye


def test_given_a_healthy_management_api_when_a_refresh_values_a_connected_user_then_it_is_told(
    live_env, registry, management_api, user_id
):
    seed_user(wiring.portfolio_store(), user_id, [random_token()])
    registry.add(user_id, "conn-a")

    price_updater(refresh_event(user_id), LocalLambdaContext("price-updater", timeout_s=60))

    (update,) = [json.loads(data) for data in management_api.delivered_to("conn-a")]
    assert update["type"] == "portfolio.updated"
    assert update["userId"] == user_id
    assert update["changeUsd"] is None


def test_given_a_stalling_management_api_when_a_user_writes_then_the_write_succeeds_within_the_bound(
    live_env, registry, management_api, user_id
):
    registry.add(user_id, "conn-a")
    management_api.stall_s = 5.0

    started = time.monotonic()
    answer = api(
        http_event("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=buy_body()),
        LocalLambdaContext("api"),
    )

    assert answer["statusCode"] == 201, answer
    assert time.monotonic() - started < BOUND_S + 2
    assert management_api.request_count == 1


def test_given_a_write_then_only_the_writers_connections_hear_of_it(live_env, registry, management_api, user_id):
    other = f"{user_id}-other"
    registry.add(user_id, "mine")
    registry.add(other, "theirs")

    api(
        http_event("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=buy_body()),
        LocalLambdaContext("api"),
    )

    assert [post.connection_id for post in management_api.requests] == ["mine"]
    (update,) = [json.loads(data) for data in management_api.delivered_to("mine")]
    assert (update["type"], update["userId"]) == ("portfolio.updated", user_id)
