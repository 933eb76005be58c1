"""The WebSocket routes (functions/websocket_connections) with API Gateway's own event shapes (events/):
a connection recorded under the authorizer's userId, its user marked active, ping answered,
$disconnect forgetting it, and one connection past MAX_CONNECTIONS_PER_USER refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from portfolio import wiring
from portfolio.adapters.connection_registry import connection_key
from portfolio.services.ports import PushedFigures

from local_stack.functions import load_handler
from local_stack.lambda_context import LocalLambdaContext
from tests.integration.live.conftest import load_event

connections = load_handler("WebSocketConnectionsFunction")


def invoke(name: str, user_id: str | None, connection_id: str) -> dict:
    event = load_event(name)
    event["requestContext"]["connectionId"] = connection_id
    if user_id is None:
        del event["requestContext"]["authorizer"]
    else:
        event["requestContext"]["authorizer"].update(userId=user_id, principalId=user_id)
    return connections(event, LocalLambdaContext("websocket-connections"))


def active(user_id: str) -> bool:
    since = datetime.now(UTC) - timedelta(minutes=1)
    return any(user_id in page for page in wiring.activity_log().active_since(since))


@pytest.fixture(autouse=True)
def _environment(live_env) -> None:
    """The connections function's environment (the test's table and Redis)."""


def test_given_a_connect_then_the_connection_is_the_authorizers_user_and_the_user_is_active(
    user_id, dynamodb_client, live_env
):
    answer = invoke("websocket-connect.json", user_id, "conn-1=")

    assert answer == {"statusCode": 200}
    assert wiring.connection_registry().connections_of(user_id) == ["conn-1="]
    item = dynamodb_client.get_item(TableName=live_env.table_name, Key=connection_key(user_id, "conn-1="))["Item"]
    assert item["connectionId"] == {"S": "conn-1="}
    assert active(user_id)


def test_given_a_disconnect_then_the_connection_is_forgotten(user_id):
    invoke("websocket-connect.json", user_id, "conn-1=")

    answer = invoke("websocket-disconnect.json", user_id, "conn-1=")

    assert answer == {"statusCode": 200}
    assert wiring.connection_registry().connections_of(user_id) == []


def test_given_a_ping_then_it_is_answered_pong(user_id):
    invoke("websocket-connect.json", user_id, "conn-1=")

    answer = invoke("websocket-ping.json", user_id, "conn-1=")

    assert answer == {"statusCode": 200, "body": '{"type": "pong"}'}


@pytest.mark.parametrize("user_id", [None, "not a user id", ""])
def test_given_no_valid_authorizer_user_then_nothing_is_recorded(user_id, dynamodb_client, live_env):
    answer = invoke("websocket-connect.json", user_id, "conn-x=")

    assert answer["statusCode"] in (400, 403)
    assert dynamodb_client.scan(TableName=live_env.table_name)["Items"] == []


def test_given_an_unknown_route_then_400(user_id):
    event = load_event("websocket-ping.json")
    event["requestContext"]["routeKey"] = "$default"

    assert connections(event, LocalLambdaContext("websocket-connections")) == {"statusCode": 400}


def test_given_the_table_unreachable_on_connect_then_the_connection_is_refused(function_environment, user_id):
    function_environment(TABLE_NAME="no-such-table", DYNAMODB_MAX_ATTEMPTS="1")

    with pytest.raises(Exception, match="ResourceNotFound"):
        invoke("websocket-connect.json", user_id, "conn-1=")


def test_given_a_user_at_the_connection_cap_when_one_more_connects_then_it_is_refused_with_429(
    function_environment, live_env, user_id, dynamodb_client
):
    function_environment(MAX_CONNECTIONS_PER_USER="2")
    assert invoke("websocket-connect.json", user_id, "conn-1=") == {"statusCode": 200}
    assert invoke("websocket-connect.json", user_id, "conn-2=") == {"statusCode": 200}

    answer = invoke("websocket-connect.json", user_id, "conn-3=")

    assert answer == {"statusCode": 429}
    assert "Item" not in dynamodb_client.get_item(TableName=live_env.table_name, Key=connection_key(user_id, "conn-3="))
    assert sorted(wiring.connection_registry().connections_of(user_id)) == ["conn-1=", "conn-2="]
    # Another user is not affected by this one's connections
    assert invoke("websocket-connect.json", f"{user_id}-other", "conn-4=") == {"statusCode": 200}


def test_given_a_user_at_the_cap_when_one_connection_closes_then_a_new_one_is_allowed(function_environment, user_id):
    function_environment(MAX_CONNECTIONS_PER_USER="1")
    invoke("websocket-connect.json", user_id, "conn-1=")
    assert invoke("websocket-connect.json", user_id, "conn-2=") == {"statusCode": 429}

    invoke("websocket-disconnect.json", user_id, "conn-1=")

    assert invoke("websocket-connect.json", user_id, "conn-2=") == {"statusCode": 200}


def test_given_figures_pushed_before_when_a_client_connects_then_its_first_update_has_no_previous_figures(user_id):
    pushed = wiring.pushed_figures()
    figures = PushedFigures(total_value_usd=Decimal("100"), total_pnl_usd=Decimal("5"), stale_price_count=0)
    pushed.claim(user_id, 1)
    pushed.remember(user_id, 1, figures)
    assert pushed.claim(user_id, 2).delivered == figures

    invoke("websocket-connect.json", user_id, "conn-1=")

    assert pushed.claim(user_id, 3).delivered is None
