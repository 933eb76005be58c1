"""DynamoDB throttling (ProvisionedThroughputExceeded, injected by an HTTP proxy in front of moto's server).

Writes are retried by the client; a write that still fails leaves nothing of itself behind: a batch
of transactions lands whole or not at all, and a throttled refresh keeps the previous record.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from portfolio.adapters.dynamodb.items import PROFILE_SK

from local_stack.coins_api import CoinsApiServer
from local_stack.functions import load_handler
from local_stack.sqs_poller import SqsPoller
from tests.faults.conftest import FunctionEnv
from tests.faults.handlers import (
    WINDOW,
    RefreshQueues,
    buy,
    call_api,
    drain_with_price_updater,
    partition_items,
    random_address,
    run_scheduler,
    total_value,
)
from tests.support.faulty_dynamodb import FaultyDynamoDb, faulty_dynamodb


def is_commit(operation: str, _request: dict[str, Any]) -> bool:
    return operation == "TransactWriteItems"


def is_portfolio_batch_load(operation: str, request: dict[str, Any]) -> bool:
    keys = [key for table in request.get("RequestItems", {}).values() for key in table.get("Keys", [])]
    return operation == "BatchGetItem" and any(key.get("sk", {}).get("S") == PROFILE_SK for key in keys)


@pytest.fixture
def throttled_commits(moto_endpoint: str) -> Iterator[FaultyDynamoDb]:
    with faulty_dynamodb(moto_endpoint, only=is_commit) as proxy:
        yield proxy


def batch(prefix: str, token: str, count: int) -> dict[str, Any]:
    return {"transactions": [buy(f"{prefix}-{index}", token, "1") for index in range(count)]}


def transaction_ids(user_id: str) -> set[str]:
    return {item["id"]["S"] for item in partition_items(user_id) if item["sk"]["S"].startswith("TX#")}


def holder(user_id: str, coins_api: CoinsApiServer) -> str:
    """A user holding 3 units of a token priced 10; returns the token address."""
    token = random_address()
    coins_api.set_price(f"ethereum:{token}", "10")
    answer = call_api("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=batch("seed", token, 3))
    assert answer.status == 201
    return token


def test_given_commits_throttled_twice_when_a_batch_is_posted_then_the_retries_land_it_whole(
    function_env: FunctionEnv,
    throttled_commits: FaultyDynamoDb,
    coins_api: CoinsApiServer,
    user_id: str,
    fault_figures: dict,
) -> None:
    # Given
    function_env(AWS_ENDPOINT_URL=throttled_commits.url, DYNAMODB_MAX_ATTEMPTS="3")
    token = holder(user_id, coins_api)
    throttled_commits.throttle, throttled_commits.throttled = 2, 0

    # When
    answer = call_api("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=batch("bulk", token, 20))

    # Then
    assert answer.status == 201
    assert throttled_commits.throttled == 2
    assert total_value(call_api("GET", f"/portfolios/{user_id}", sub=user_id).json) == 230
    fault_figures.update(throttled_commits=2, commit_attempts=throttled_commits.operations.count("TransactWriteItems"))


def test_given_commits_always_throttled_when_a_batch_is_posted_then_it_fails_and_nothing_of_it_is_stored(
    function_env: FunctionEnv, throttled_commits: FaultyDynamoDb, coins_api: CoinsApiServer, user_id: str
) -> None:
    # Given
    function_env(AWS_ENDPOINT_URL=throttled_commits.url, DYNAMODB_MAX_ATTEMPTS="2")
    token = holder(user_id, coins_api)
    items_before = partition_items(user_id)
    read_before = call_api("GET", f"/portfolios/{user_id}", sub=user_id).json
    throttled_commits.throttle = -1

    # When
    answer = call_api("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=batch("bulk", token, 20))

    # Then: 503 with the error shape and a hint to retry, after the client's two attempts
    assert answer.status == 503
    assert answer.json["error"]["code"] == "service_unavailable"
    assert answer.headers["retry-after"] == "1"
    assert throttled_commits.throttled == 2
    # And: nothing of the batch is stored or shown
    assert partition_items(user_id) == items_before
    assert call_api("GET", f"/portfolios/{user_id}", sub=user_id).json == read_before


def test_given_a_bulk_import_larger_than_one_commit_when_its_second_step_is_throttled_then_a_repeat_completes_it(
    function_env: FunctionEnv, throttled_commits: FaultyDynamoDb, coins_api: CoinsApiServer, user_id: str
) -> None:
    # Given: 150 transactions, more than one DynamoDB transaction holds (imports are committed in steps)
    function_env(AWS_ENDPOINT_URL=throttled_commits.url, DYNAMODB_MAX_ATTEMPTS="2")
    token = holder(user_id, coins_api)
    seed_ids = transaction_ids(user_id)
    import_body = batch("bulk", token, 150)
    all_ids = seed_ids | {item["id"] for item in import_body["transactions"]}
    # The seed was one commit; the import's first step passes, everything after it is throttled.
    throttled_commits.spare, throttled_commits.spared, throttled_commits.throttle = 1, 0, -1

    # When
    failed = call_api("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=import_body)

    # Then: it failed visibly; what is stored is the seed plus whole steps of the import (98 transactions
    # and the token's holder count fill one DynamoDB transaction beside the portfolio item), and reads answer
    assert failed.status >= 500 and set(failed.json["error"]) >= {"code", "message"}
    stored = transaction_ids(user_id)
    assert seed_ids <= stored <= all_ids and len(stored - seed_ids) in (0, 98)
    assert call_api("GET", f"/portfolios/{user_id}", sub=user_id).status == 200

    # When: the throttling ends and the client sends the same request again
    throttled_commits.throttle = 0
    repeated = call_api("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=import_body)

    # Then: the import is complete, once
    assert repeated.status == 201
    assert transaction_ids(user_id) == all_ids
    assert total_value(call_api("GET", f"/portfolios/{user_id}", sub=user_id).json) == 1530


def test_given_portfolio_loads_throttled_when_a_refresh_runs_then_nothing_changes_and_the_redelivery_succeeds(
    function_env: FunctionEnv,
    moto_endpoint: str,
    coins_api: CoinsApiServer,
    sqs_client: Any,
    refresh_queues: RefreshQueues,
    user_id: str,
    fault_figures: dict,
) -> None:
    from portfolio import wiring

    price_updater = load_handler("PriceUpdaterFunction")

    with faulty_dynamodb(moto_endpoint, only=is_portfolio_batch_load) as proxy:
        # Given: a reader's portfolio refreshed once, then a price move
        function_env(AWS_ENDPOINT_URL=proxy.url, DYNAMODB_MAX_ATTEMPTS="2")
        token = holder(user_id, coins_api)
        run_scheduler(WINDOW)
        drain_with_price_updater(sqs_client, refresh_queues.url)
        items_before = partition_items(user_id)
        read_before = call_api("GET", f"/portfolios/{user_id}", sub=user_id).json
        coins_api.set_price(f"ethereum:{token}", "12")
        wiring.price_service().clear_cache()
        wiring.redis_client().delete(f"price:v1:ethereum:{token}")

        # When: loading the users' portfolios is throttled during the next refresh
        proxy.throttle = -1
        run_scheduler(WINDOW + timedelta(minutes=5))
        poller = SqsPoller(sqs_client, refresh_queues.url, price_updater)
        throttled_run = poller.poll_once()

        # Then: the message is reported failed, nothing was written, and the views stay as they were
        assert throttled_run.failed == throttled_run.received != []
        assert partition_items(user_id) == items_before
        assert call_api("GET", f"/portfolios/{user_id}", sub=user_id).json == read_before
        throttled_loads = proxy.throttled

        # When: the throttling ends and SQS redelivers the message
        proxy.throttle = 0
        retried = poller.drain()

        # Then: the redelivery values the portfolio at the new price
        assert [result.failed for result in retried] == [[]]
        assert total_value(call_api("GET", f"/portfolios/{user_id}", sub=user_id).json) == 36
    fault_figures.update(throttled_loads=throttled_loads)
