"""Which figures a user's connections are told, when writes and refreshes overlap and when posts fail,
through the real functions, DynamoDB (moto), Redis and a stand-in of API Gateway's management API."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from portfolio import wiring
from portfolio.services.refresh_message import RefreshMessage

from local_stack.http_events import http_event
from local_stack.lambda_context import LocalLambdaContext
from tests.integration.live.conftest import load_event
from tests.integration.live.test_push_faults import api, buy_body, price_updater
from tests.integration.refresh.seeding import random_token, seed_user

FIRST_WINDOW = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)


def refresh_event(window: datetime, *user_ids: str) -> dict:
    """One active message of these users for `window` (the same message twice is a duplicate)."""
    event = load_event("sqs-refresh-batch.json")
    record = event["Records"][0]
    record["messageId"] = str(uuid.uuid4())
    record["body"] = RefreshMessage(window=window, user_ids=list(user_ids)).model_dump_json(by_alias=True)
    return {"Records": [record]}


def refresh(window: datetime, user_id: str) -> None:
    response = price_updater(refresh_event(window, user_id), LocalLambdaContext("price-updater", timeout_s=60))
    assert response == {"batchItemFailures": []}


def buy(user_id: str) -> None:
    answer = api(
        http_event("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=buy_body()),
        LocalLambdaContext("api"),
    )
    assert answer["statusCode"] == 201, answer


def summary(user_id: str) -> dict:
    answer = api(http_event("GET", f"/portfolios/{user_id}", sub=user_id), LocalLambdaContext("api"))
    return json.loads(answer["body"])


def posted(management_api, connection_id: str) -> list[dict]:
    """Every message posted to the connection, answered 200 or not."""
    return [json.loads(post.data) for post in management_api.requests if post.connection_id == connection_id]


def test_given_a_refresh_that_read_before_a_write_when_it_finishes_after_it_then_its_older_figures_are_not_sent(
    live_env, registry, management_api, user_id
):
    seed_user(wiring.portfolio_store(), user_id, [random_token()])
    registry.add(user_id, "conn-a")
    refresher = wiring.portfolio_refresher()
    batch = refresher.prefetch([user_id])  # the refresh reads the portfolio ...

    buy(user_id)  # ... a write saves a later version and tells the connection ...
    refresher.refresh_message(RefreshMessage(window=FIRST_WINDOW, user_ids=[user_id]), batch)  # ... then it ends
    wiring.finish_live_updates()

    current = summary(user_id)
    (update,) = posted(management_api, "conn-a")
    assert (update["totalValueUsd"], update["changeUsd"]) == (current["totalValueUsd"], None)
    refresh(FIRST_WINDOW + timedelta(minutes=1), user_id)  # the write's figures again: nothing to tell
    assert len(posted(management_api, "conn-a")) == 1


def test_given_an_update_no_connection_received_when_the_next_refresh_finds_the_same_figures_then_it_is_sent(
    live_env, registry, management_api, user_id
):
    seed_user(wiring.portfolio_store(), user_id, [random_token()])
    registry.add(user_id, "conn-a")
    management_api.failing.add("conn-a")
    refresh(FIRST_WINDOW, user_id)

    management_api.failing.clear()
    refresh(FIRST_WINDOW + timedelta(minutes=1), user_id)

    value = summary(user_id)["totalValueUsd"]
    # The same figures again, and no change measured from figures the client never saw.
    assert [(update["totalValueUsd"], update["changeUsd"]) for update in posted(management_api, "conn-a")] == [
        (value, None),
        (value, None),
    ]


def test_given_the_figures_forgotten_when_the_next_write_is_told_then_it_carries_no_change(
    live_env, registry, management_api, user_id
):
    registry.add(user_id, "conn-a")
    buy(user_id)

    wiring.pushed_figures().forget(user_id)  # what a new connection does
    buy(user_id)

    assert [update["changeUsd"] for update in posted(management_api, "conn-a")] == [None, None]
