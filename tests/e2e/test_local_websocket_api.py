"""The local WebSocket API decides like API Gateway's: the routes and authorizer template.yaml wires,
the handshake refused before the socket opens, events in API Gateway's shapes, and the management
API (POST, GET, DELETE @connections/{id}; 410 once gone; signed requests only)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import httpx
import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
)
from botocore.exceptions import ClientError
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from local_stack.api_routes import api_routes
from local_stack.gateway import Gateway, GatewayServer
from local_stack.jwt_auth import JwtAuthorizer
from local_stack.lambda_context import LocalLambdaContext
from local_stack.websocket_api import MAX_MESSAGE_BYTES, LocalWebSocketApi, websocket_config

SECRET = "a-test-signing-key-that-is-long-enough-for-hs256"
AUTHORIZER = "WebSocketAuthorizerFunction"
CONNECTIONS = "WebSocketConnectionsFunction"


class Functions:
    """Stand-ins for the two functions: the authorizer allows `?token=<user>` (or answers as told), the
    connections function records every event and answers ping."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.authorizer_answer: Callable[[dict[str, Any]], Any] | None = None
        self.connect_status = 200
        self.disconnected = threading.Event()

    def authorizer(self, event: dict[str, Any]) -> Any:
        if self.authorizer_answer is not None:
            return self.authorizer_answer(event)
        user = event["queryStringParameters"]["token"]
        statement = {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}
        return {"principalId": user, "policyDocument": {"Statement": [statement]}, "context": {"userId": user}}

    def connections(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        route = event["requestContext"]["routeKey"]
        if route == "$connect":
            return {"statusCode": self.connect_status}
        if route == "$disconnect":
            self.disconnected.set()
        return {"statusCode": 200, "body": json.dumps({"type": "pong"})}

    def of_route(self, route: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["requestContext"]["routeKey"] == route]


@pytest.fixture
def functions() -> Functions:
    return Functions()


@pytest.fixture
def server(functions: Functions) -> Iterator[GatewayServer]:
    websocket = LocalWebSocketApi(
        websocket_config(),
        {AUTHORIZER: functions.authorizer, CONNECTIONS: functions.connections},
        stage="local",
        region="us-east-1",
    )

    def api(_event: dict[str, Any], _context: Any) -> dict[str, Any]:
        return {"statusCode": 200, "body": "{}"}

    gateway = Gateway(api, api_routes(), JwtAuthorizer(SECRET), lambda: LocalLambdaContext("api"), websocket=websocket)
    server = GatewayServer(("127.0.0.1", 0), gateway)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    websocket.close_all()
    server.shutdown()
    server.server_close()


def url(server: GatewayServer, query: str = "") -> str:
    return f"ws://127.0.0.1:{server.port}/ws{query}"


def open_as(server: GatewayServer, user: str) -> ClientConnection:
    return connect(url(server, f"?token={user}"), open_timeout=5)


def management(server: GatewayServer):
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=f"http://127.0.0.1:{server.port}/ws",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def connection_id_of(functions: Functions) -> str:
    return functions.of_route("$connect")[-1]["requestContext"]["connectionId"]


def test_given_the_template_then_the_routes_functions_and_identity_source_are_its_own():
    config = websocket_config()

    assert set(config.routes) == {"$connect", "$disconnect", "ping"}
    assert config.routes["$connect"].authorized and config.routes["$connect"].function == CONNECTIONS
    assert not config.routes["$disconnect"].authorized
    assert config.routes["ping"].two_way and not config.routes["$disconnect"].two_way
    assert (config.authorizer_function, config.token_parameter, config.selection_key) == (AUTHORIZER, "token", "action")


def test_given_a_connection_then_its_events_are_api_gateways_shapes_with_the_authorizer_context(server, functions):
    with open_as(server, "alice") as client:
        client.send(json.dumps({"action": "ping"}))
        assert json.loads(client.recv(timeout=5)) == {"type": "pong"}
    assert functions.disconnected.wait(5)

    connect_event = APIGatewayWebSocketConnectEventModel.model_validate(functions.of_route("$connect")[0])
    message = APIGatewayWebSocketMessageEventModel.model_validate(functions.of_route("ping")[0])
    disconnect = APIGatewayWebSocketDisconnectEventModel.model_validate(functions.of_route("$disconnect")[0])
    assert connect_event.request_context.connection_id == message.request_context.connection_id
    assert disconnect.request_context.disconnect_status_code == 1000
    assert json.loads(message.body) == {"action": "ping"}
    for event in functions.events:
        assert event["requestContext"]["authorizer"]["userId"] == "alice"
        assert event["requestContext"]["authorizer"]["principalId"] == "alice"


def test_given_no_token_then_401_and_neither_function_runs(server, functions):
    functions.authorizer_answer = lambda _event: pytest.fail("the authorizer should not run")

    with pytest.raises(InvalidStatus) as refusal:
        connect(url(server), open_timeout=5)

    assert refusal.value.response.status_code == 401
    assert json.loads(refusal.value.response.body) == {"message": "Unauthorized"}
    assert functions.events == []


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        pytest.param("unauthorized", 401, id="raises-unauthorized"),
        pytest.param("deny", 403, id="deny-policy"),
        pytest.param("other-resource", 403, id="allow-for-another-route"),
        pytest.param("crash", 500, id="raises-anything-else"),
    ],
)
def test_given_the_authorizer_refuses_then_the_handshake_fails_and_connect_never_runs(
    server, functions, answer, status
):
    def authorizer(event: dict[str, Any]) -> Any:
        if answer == "unauthorized":
            raise Exception("Unauthorized")
        if answer == "crash":
            raise RuntimeError("boom")
        effect = "Deny" if answer == "deny" else "Allow"
        resource = event["methodArn"] if answer == "deny" else event["methodArn"].replace("$connect", "other")
        return {"principalId": "x", "policyDocument": {"Statement": [{"Effect": effect, "Resource": resource}]}}

    functions.authorizer_answer = authorizer

    with pytest.raises(InvalidStatus) as refusal:
        connect(url(server, "?token=alice"), open_timeout=5)

    assert refusal.value.response.status_code == status
    assert functions.of_route("$connect") == []


def test_given_connect_answering_non_2xx_then_the_connection_is_refused(server, functions):
    functions.connect_status = 500

    with pytest.raises(InvalidStatus) as refusal:
        connect(url(server, "?token=alice"), open_timeout=5)

    assert refusal.value.response.status_code == 500


def test_given_an_unknown_action_then_api_gateways_forbidden_message_comes_back(server, functions):
    with open_as(server, "alice") as client:
        client.send(json.dumps({"action": "subscribe"}))
        answer = json.loads(client.recv(timeout=5))

    assert answer["message"] == "Forbidden"
    assert answer["connectionId"] == connection_id_of(functions)


def test_given_an_open_connection_then_the_management_api_posts_describes_and_closes_it(server, functions):
    api = management(server)
    with open_as(server, "alice") as client:
        connection_id = connection_id_of(functions)

        api.post_to_connection(ConnectionId=connection_id, Data=b'{"type":"portfolio.updated"}')
        assert json.loads(client.recv(timeout=5)) == {"type": "portfolio.updated"}
        described = api.get_connection(ConnectionId=connection_id)
        assert described["Identity"]["SourceIp"] == "127.0.0.1"

        api.delete_connection(ConnectionId=connection_id)
        with pytest.raises(ConnectionClosed):
            client.recv(timeout=5)

    assert functions.disconnected.wait(5)
    with pytest.raises(ClientError) as gone:
        api.post_to_connection(ConnectionId=connection_id, Data=b"{}")
    assert gone.value.response["Error"]["Code"] == "GoneException"
    assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410


def test_given_an_id_never_connected_then_410(server):
    with pytest.raises(ClientError) as gone:
        management(server).post_to_connection(ConnectionId="NoSuchConnection=", Data=b"{}")

    assert gone.value.response["Error"]["Code"] == "GoneException"


def test_given_a_message_over_128_kb_then_413(server, functions):
    with open_as(server, "alice"), pytest.raises(ClientError) as too_large:
        management(server).post_to_connection(
            ConnectionId=connection_id_of(functions), Data=b"x" * (MAX_MESSAGE_BYTES + 1)
        )

    assert too_large.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_given_an_unsigned_request_then_the_management_api_refuses_it(server, functions):
    with open_as(server, "alice") as client:
        connection_id = connection_id_of(functions)
        answer = httpx.post(f"http://127.0.0.1:{server.port}/ws/@connections/{connection_id}", content=b"{}")

        assert answer.status_code == 403
        with pytest.raises(TimeoutError):
            client.recv(timeout=0.3)


def test_given_a_plain_get_of_the_websocket_path_then_426(server):
    assert httpx.get(f"http://127.0.0.1:{server.port}/ws").status_code == 426


def test_given_a_client_that_vanishes_then_disconnect_runs_with_an_abnormal_closure(server, functions):
    client = open_as(server, "alice")
    connection_id = connection_id_of(functions)

    client.socket.shutdown(socket.SHUT_RDWR)  # no close frame: the network just ends

    assert functions.disconnected.wait(5)
    (event,) = functions.of_route("$disconnect")
    assert event["requestContext"]["disconnectStatusCode"] == 1006
    with pytest.raises(ClientError) as gone:
        management(server).post_to_connection(ConnectionId=connection_id, Data=b"{}")
    assert gone.value.response["Error"]["Code"] == "GoneException"
