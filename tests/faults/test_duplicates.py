"""At-least-once delivery everywhere: the same message, schedule event or POST twice leaves the state of once."""

from __future__ import annotations

from typing import Any

from portfolio import wiring
from portfolio.adapters.portfolio_cache import CacheKind

from local_stack.coins_api import CoinsApiServer
from local_stack.functions import load_handler
from tests.faults.conftest import FunctionEnv
from tests.faults.handlers import (
    WINDOW,
    RefreshQueues,
    buy,
    call_api,
    drain_with_price_updater,
    partition_items,
    random_address,
    refresh_body,
    run_scheduler,
    scheduled_event,
)


def users_holding_a_token(count: int, coins_api: CoinsApiServer) -> list[str]:
    users = []
    for index in range(count):
        user_id = f"dup-{index}-{random_address()[-12:]}"
        token = random_address()
        coins_api.set_price(f"ethereum:{token}", "7")
        answer = call_api("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=buy("t-1", token, "3"))
        assert answer.status == 201
        users.append(user_id)
    return users


def state_of(users: list[str]) -> dict[str, Any]:
    """Every stored item and the cached summary of each user."""
    cache = wiring.portfolio_cache()
    return {user: (partition_items(user), cache.get(CacheKind.PORTFOLIO, user)) for user in users}


def test_given_a_refresh_message_delivered_twice_when_both_are_processed_then_the_state_is_as_after_one(
    function_env: FunctionEnv, coins_api: CoinsApiServer, sqs_client: Any, refresh_queues: RefreshQueues
) -> None:
    # Given
    function_env()
    users = users_holding_a_token(3, coins_api)
    sqs_client.send_message(QueueUrl=refresh_queues.url, MessageBody=refresh_body(users))
    drain_with_price_updater(sqs_client, refresh_queues.url)
    once = state_of(users)

    # When: SQS delivers the same body again, twice in one batch
    for _ in range(2):
        sqs_client.send_message(QueueUrl=refresh_queues.url, MessageBody=refresh_body(users))
    results = drain_with_price_updater(sqs_client, refresh_queues.url)

    # Then: both deliveries succeed and nothing stored or cached moved
    assert sum(len(result.deleted) for result in results) == 2
    assert state_of(users) == once


def test_given_the_same_schedule_event_twice_when_both_run_then_users_are_queued_and_refreshed_once(
    function_env: FunctionEnv,
    coins_api: CoinsApiServer,
    sqs_client: Any,
    refresh_queues: RefreshQueues,
    lambda_context: Any,
) -> None:
    # Given: a fresh table with 12 readers (one message)
    function_env()
    users = users_holding_a_token(12, coins_api)
    scheduler = load_handler("RefreshSchedulerFunction")

    event = scheduled_event(WINDOW)

    # When: EventBridge delivers the event twice, and a late retry of it comes with another id
    first = scheduler(event, lambda_context)
    second = scheduler(event, lambda_context)
    third = run_scheduler(WINDOW.replace(minute=4, second=59))
    results = drain_with_price_updater(sqs_client, refresh_queues.url)

    # Then: one run queued every user once, in one message; nothing about a user was rewritten
    assert (first["started"], second["started"], third["started"]) == (True, False, False)
    assert first["usersQueued"] == 12 and second["usersQueued"] == third["usersQueued"] == 0
    assert sum(len(result.deleted) for result in results) == 1
    cache = wiring.portfolio_cache()
    for user in users:
        [profile] = [item for item in partition_items(user) if item["sk"]["S"] == "PROFILE"]
        assert profile["version"]["N"] == "1"  # recorded once, never rewritten by the refresh
        assert cache.get(CacheKind.PORTFOLIO, user) is not None


def test_given_the_same_transactions_posted_twice_when_read_then_the_state_is_as_after_one(
    function_env: FunctionEnv, coins_api: CoinsApiServer, user_id: str
) -> None:
    # Given
    function_env()
    token = random_address()
    coins_api.set_price(f"ethereum:{token}", "7")
    single = buy("single", token, "1")
    bulk = {"transactions": [buy(f"bulk-{index}", token, "2") for index in range(5)]}
    path = f"/portfolios/{user_id}/transactions"
    first_single = call_api("POST", path, sub=user_id, body=single)
    first_bulk = call_api("POST", path, sub=user_id, body=bulk)
    items_once = partition_items(user_id)
    reads_once = [
        call_api("GET", f"/portfolios/{user_id}{view}", sub=user_id).raw_body
        for view in ("", "/assets", "/transactions")
    ]

    # When: a client retries both requests
    again_single = call_api("POST", path, sub=user_id, body=single)
    again_bulk = call_api("POST", path, sub=user_id, body=bulk)

    # Then: the same records are answered (200: nothing new), and nothing stored or shown changed
    assert (first_single.status, first_bulk.status, again_single.status, again_bulk.status) == (201, 201, 200, 200)
    assert (again_single.json, again_bulk.json) == (first_single.json, first_bulk.json)
    assert partition_items(user_id) == items_once
    assert [
        call_api("GET", f"/portfolios/{user_id}{view}", sub=user_id).raw_body
        for view in ("", "/assets", "/transactions")
    ] == reads_once
