"""Redis down when a client connects, then back (empty, as a restarted or failed-over node comes back):
the connection is on record in DynamoDB, and the next update reaches it without waiting for a ping."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from portfolio import wiring
from portfolio.services.ports import PushOutcome

from local_stack.embedded_redis import RedisServer
from local_stack.functions import load_handler
from local_stack.lambda_context import LocalLambdaContext
from tests.integration.live.conftest import BUDGET_MS, load_event
from tests.support.management_api import ManagementApiStandIn

connections = load_handler("WebSocketConnectionsFunction")


@pytest.fixture
def functions_on_own_redis(
    function_environment: Callable[..., object], management_api: ManagementApiStandIn, own_redis: RedisServer
) -> None:
    """The connections function and the pushers, as deployed, on this test's Redis."""
    function_environment(
        REDIS_URL=own_redis.url,
        WEBSOCKET_CALLBACK_URL=management_api.callback_url,
        LIVE_UPDATE_BUDGET_MS=str(BUDGET_MS),
    )


def connect(user_id: str, connection_id: str) -> dict:
    event = load_event("websocket-connect.json")
    event["requestContext"]["connectionId"] = connection_id
    event["requestContext"]["authorizer"].update(userId=user_id, principalId=user_id)
    return connections(event, LocalLambdaContext("websocket-connections"))


@pytest.mark.usefixtures("functions_on_own_redis")
def test_given_redis_down_at_connect_when_it_is_back_then_the_next_update_reaches_the_connection(
    own_redis, management_api, user_id
):
    # Given: the user was valued before (the index knows them: no connection), then Redis dies
    assert wiring.connection_registry().connections_of(user_id) == []
    own_redis.kill()

    # When: the client connects while Redis is down
    assert connect(user_id, "conn-1=") == {"statusCode": 200}

    # Then: once Redis is back (empty), the next update reaches the connection, no ping needed
    own_redis.start()
    outcome = wiring.live_updates().send(user_id, {"type": "alert.triggered", "userId": user_id})

    assert outcome == PushOutcome(delivered=1)
    assert [json.loads(data)["userId"] for data in management_api.delivered_to("conn-1=")] == [user_id]


@pytest.mark.usefixtures("functions_on_own_redis")
def test_given_redis_down_while_pushing_then_the_connections_are_read_from_dynamodb(own_redis, management_api, user_id):
    assert connect(user_id, "conn-1=") == {"statusCode": 200}
    own_redis.kill()

    outcome = wiring.live_updates().send(user_id, {"type": "alert.triggered", "userId": user_id})

    assert outcome == PushOutcome(delivered=1)
