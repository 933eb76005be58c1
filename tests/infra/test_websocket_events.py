"""The WebSocket sample events (events/websocket-*.json) parse as API Gateway's, and match the template."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
)

from local_stack.websocket_api import websocket_config

EVENTS = Path(__file__).resolve().parents[2] / "events"
USER = "user-alice"
CONNECTION = "L0SM9cOFvHcCIhw="


def _load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


def test_given_the_authorizer_event_then_it_carries_the_token_where_the_identity_source_reads_it():
    event = _load("websocket-authorizer.json")
    parameter = websocket_config().token_parameter

    assert event["type"] == "REQUEST"
    assert event["methodArn"].endswith("/dev/$connect")
    assert event["queryStringParameters"][parameter]
    assert event["requestContext"]["routeKey"] == "$connect"


def test_given_the_route_events_then_each_parses_as_api_gateways_with_the_authorizers_user():
    connect = APIGatewayWebSocketConnectEventModel.model_validate(_load("websocket-connect.json"))
    ping = APIGatewayWebSocketMessageEventModel.model_validate(_load("websocket-ping.json"))
    disconnect = APIGatewayWebSocketDisconnectEventModel.model_validate(_load("websocket-disconnect.json"))

    assert {connect.request_context.connection_id, ping.request_context.connection_id} == {CONNECTION}
    assert disconnect.request_context.connection_id == CONNECTION
    assert ping.request_context.route_key in websocket_config().routes
    assert json.loads(str(ping.body)) == {"action": "ping"}
    for name in ("websocket-connect.json", "websocket-ping.json", "websocket-disconnect.json"):
        assert _load(name)["requestContext"]["authorizer"]["userId"] == USER
