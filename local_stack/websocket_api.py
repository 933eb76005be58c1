"""The WebSocket API on the gateway's port: `ws://127.0.0.1:<port>/ws?token=<JWT>`, and the management
API the functions push through (`POST|GET|DELETE /ws/@connections/{connectionId}`, the callback URL
being `http://127.0.0.1:<port>/ws`, as `https://<api>.execute-api.<region>.amazonaws.com/<stage>`
is in AWS).

`LocalWebSocketApi` makes the decisions API Gateway makes, with what template.yaml wires:
- the opening handshake: no token in the identity source (`?token=`) is 401 without asking the
  authorizer; the REQUEST authorizer function runs next (raising "Unauthorized" is 401, a Deny
  policy 403, any other failure 500), then the $connect route's function, whose non-2xx answer
  refuses the connection; only then does the client get 101;
- a message is routed by the route selection expression (`$request.body.action`); an unknown action
  (no $default route) is answered `{"message": "Forbidden", ...}`; a route with a route response
  sends the function's body back;
- a closed or dropped connection runs the $disconnect route; a post to it afterwards is 410.

The WebSocket protocol itself is websockets' Sans-I/O ServerProtocol, fed from the request the HTTP
server already read and then from the socket.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import os
import socket
import threading
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote

from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from local_stack.http_events import HttpResponse, IncomingRequest, json_response
from local_stack.template_resources import load_template, resources_of_type
from local_stack.websocket_events import (
    CONNECT_ROUTE,
    DISCONNECT_ROUTE,
    EventOrigin,
    authorizer_context,
    authorizer_event,
    connect_event,
    disconnect_event,
    epoch_ms,
    message_event,
    method_arn,
)

WEBSOCKET_PATH = "/ws"
CONNECTIONS_PATH = f"{WEBSOCKET_PATH}/@connections/"
# API Gateway's limit for one WebSocket message (frames are limited to 32 KB there; not enforced here).
MAX_MESSAGE_BYTES = 128 * 1024
DEFAULT_ROUTE = "$default"
READ_SIZE = 65536
GOING_AWAY = 1001
NO_STATUS = 1005
ABNORMAL_CLOSURE = 1006
_QUERY_SOURCE = "route.request.querystring."
_BODY_SELECTION = "$request.body."

Invoke = Callable[[dict[str, Any]], Any]
Say = Callable[[str], None]


# What the template wires --------------------------------------------------------------------------


@dataclass(frozen=True)
class WebSocketRoute:
    key: str
    function: str  # the logical name of the function its integration invokes
    authorized: bool  # AuthorizationType CUSTOM: the REQUEST authorizer runs first ($connect only)
    two_way: bool  # a route response: the function's answer goes back to the client


@dataclass(frozen=True)
class WebSocketConfig:
    routes: dict[str, WebSocketRoute]
    selection_key: str  # $request.body.<key>
    authorizer_function: str | None
    token_parameter: str | None  # the query parameter the authorizer's identity source names

    @property
    def functions(self) -> set[str]:
        named = {route.function for route in self.routes.values()}
        return named | ({self.authorizer_function} if self.authorizer_function else set())


def _function_of(uri: Any) -> str:
    """The function an integration or authorizer URI invokes: `!Sub [..., {Alias: !Ref <Function>.Alias}]`."""
    if isinstance(uri, dict) and "Fn::Sub" in uri and isinstance(uri["Fn::Sub"], list):
        for value in uri["Fn::Sub"][1].values():
            if isinstance(value, dict) and "Ref" in value:
                return str(value["Ref"]).split(".", 1)[0]
    raise ValueError(f"cannot tell which function {uri!r} invokes")


def _ref(value: Any) -> str | None:
    return str(value["Ref"]) if isinstance(value, dict) and "Ref" in value else None


def websocket_config(template: dict[str, Any] | None = None) -> WebSocketConfig:
    """The template's WEBSOCKET API: its routes, the function behind each, and its authorizer."""
    template = template or load_template()
    apis = {
        name: properties
        for name, properties in resources_of_type(template, "AWS::ApiGatewayV2::Api").items()
        if properties.get("ProtocolType") == "WEBSOCKET"
    }
    if len(apis) != 1:
        raise ValueError(f"expected one WEBSOCKET API in the template, found {sorted(apis)}")
    ((api_name, api),) = apis.items()
    expression = str(api.get("RouteSelectionExpression", ""))
    if not expression.startswith(_BODY_SELECTION):
        raise ValueError(f"route selection {expression!r} is not $request.body.<key>")

    def of_api(resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            name: properties
            for name, properties in resources_of_type(template, resource_type).items()
            if _ref(properties.get("ApiId")) == api_name
        }

    integrations = {
        name: _function_of(props.get("IntegrationUri"))
        for name, props in of_api("AWS::ApiGatewayV2::Integration").items()
    }
    authorizers = of_api("AWS::ApiGatewayV2::Authorizer")
    routes = {}
    authorizer_function = token_parameter = None
    for properties in of_api("AWS::ApiGatewayV2::Route").values():
        target = properties.get("Target")
        text = target.get("Fn::Sub") if isinstance(target, dict) else target
        integration = str(text).removeprefix("integrations/").strip("${}")
        authorized = properties.get("AuthorizationType") == "CUSTOM"
        if authorized:
            authorizer = authorizers[str(_ref(properties.get("AuthorizerId")))]
            authorizer_function = _function_of(authorizer.get("AuthorizerUri"))
            sources = [str(source) for source in authorizer.get("IdentitySource", [])]
            token_parameter = next(
                (source.removeprefix(_QUERY_SOURCE) for source in sources if source.startswith(_QUERY_SOURCE)), None
            )
        key = str(properties["RouteKey"])
        routes[key] = WebSocketRoute(
            key=key,
            function=integrations[integration],
            authorized=authorized,
            two_way="RouteResponseSelectionExpression" in properties,
        )
    return WebSocketConfig(
        routes=routes,
        selection_key=expression.removeprefix(_BODY_SELECTION),
        authorizer_function=authorizer_function,
        token_parameter=token_parameter,
    )


# One open connection ------------------------------------------------------------------------------


def new_connection_id() -> str:
    """Shaped like API Gateway's: 16 characters of base64 (URL-safe here), ending in "="."""
    return base64.urlsafe_b64encode(os.urandom(11)).decode()


class LocalConnection:
    """An open WebSocket: anything may send to it from any thread; it never raises for a lost client."""

    def __init__(
        self,
        connection_id: str,
        protocol: ServerProtocol,
        sock: socket.socket,
        *,
        authorizer: dict[str, Any] | None,
        source_ip: str,
        user_agent: str | None,
    ) -> None:
        self.connection_id = connection_id
        self.authorizer = authorizer
        self.source_ip = source_ip
        self.user_agent = user_agent
        self.connected_at = datetime.now(UTC)
        self.connected_at_ms = epoch_ms()
        self.last_active_at = self.connected_at
        self._protocol = protocol
        self._socket = sock
        self._lock = threading.Lock()
        self._gone = False

    @property
    def gone(self) -> bool:
        return self._gone

    @property
    def user_id(self) -> str | None:
        return None if self.authorizer is None else self.authorizer.get("userId")

    def send(self, data: bytes) -> bool:
        """False when the connection is gone (closed, dropped, or the write failed)."""
        with self._lock:
            if self._gone or self._protocol.state is not State.OPEN:
                return False
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                self._protocol.send_binary(data)
            else:
                self._protocol.send_text(data)
            return self._flush()

    def close(self, code: int, reason: str = "") -> None:
        with self._lock:
            if self._gone or self._protocol.state is not State.OPEN:
                return
            self._protocol.send_close(code, reason)
            self._flush()

    def receive(self, data: bytes) -> list[Frame]:
        """Feeds what the client sent (b"": it closed); answers pings and closes; returns data frames."""
        with self._lock:
            if data:
                self._protocol.receive_data(data)
                self.last_active_at = datetime.now(UTC)
            else:
                self._protocol.receive_eof()
            events = self._protocol.events_received()
            self._flush()
        return [event for event in events if isinstance(event, Frame)]

    @property
    def closed(self) -> bool:
        return self._protocol.state is State.CLOSED

    def close_status(self) -> tuple[int, str]:
        received = self._protocol.close_rcvd
        if received is None:
            return ABNORMAL_CLOSURE, "Connection lost"
        return (received.code if received.code != NO_STATUS else NO_STATUS), received.reason or "Client closed"

    def mark_gone(self) -> None:
        with self._lock:
            self._gone = True

    def _flush(self) -> bool:
        try:
            for chunk in self._protocol.data_to_send():
                if chunk:
                    self._socket.sendall(chunk)
                else:  # the protocol is done writing: half-close, the client closes its side
                    self._socket.shutdown(socket.SHUT_WR)
        except OSError:
            self._gone = True
            return False
        return True


# The API ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Accepted:
    authorizer: dict[str, Any] | None


class LocalWebSocketApi:
    def __init__(
        self,
        config: WebSocketConfig,
        functions: Mapping[str, Invoke],
        *,
        stage: str,
        region: str,
        say: Say = lambda _text: None,
    ) -> None:
        missing = sorted(config.functions - set(functions))
        if missing:
            raise ValueError(f"the WebSocket API needs the functions {missing}")
        self._config = config
        self._functions = dict(functions)
        self._stage = stage
        self._region = region
        self._say = say
        self._connections: dict[str, LocalConnection] = {}
        self._lock = threading.Lock()

    # The opening handshake and the life of a connection -------------------------------------------

    def serve(self, request: IncomingRequest, raw_request: bytes, sock: socket.socket, reader: BinaryIO) -> int:
        """Runs one WebSocket from its opening handshake (already read: `raw_request`) until it closes;
        returns the handshake's HTTP status (101 when it opened)."""
        protocol = ServerProtocol(max_size=MAX_MESSAGE_BYTES)
        protocol.receive_data(raw_request)
        handshake = next((event for event in protocol.events_received() if isinstance(event, Request)), None)
        if handshake is None:
            return self._refuse(protocol, sock, 400, "Bad Request")
        response = protocol.accept(handshake)
        if response.status_code != 101:
            protocol.send_response(response)
            _write_all(protocol, sock)
            return response.status_code
        connection_id = new_connection_id()
        decision = self._open(request, connection_id)
        if not isinstance(decision, _Accepted):
            return self._refuse(protocol, sock, decision.status, json.loads(decision.body)["message"])
        protocol.send_response(response)
        connection = LocalConnection(
            connection_id,
            protocol,
            sock,
            authorizer=decision.authorizer,
            source_ip=request.source_ip,
            user_agent=request.header("user-agent"),
        )
        if not _write_all(protocol, sock):
            connection.mark_gone()
        with self._lock:
            self._connections[connection_id] = connection
        self._say(f"[ws] {connection.user_id or '-'} connected ({connection_id})")
        try:
            self._run(connection, reader, request.header("host") or "127.0.0.1")
        finally:
            connection.mark_gone()
            with self._lock:
                self._connections.pop(connection_id, None)
            code, reason = connection.close_status()
            self._say(f"[ws] {connection.user_id or '-'} disconnected ({connection_id}, {code})")
            self._invoke_route(
                DISCONNECT_ROUTE,
                lambda: disconnect_event(
                    EventOrigin(connection_id, request.header("host") or "127.0.0.1", self._stage, request.source_ip),
                    authorizer=connection.authorizer,
                    connected_at_ms=connection.connected_at_ms,
                    status_code=code,
                    reason=reason,
                ),
            )
        return 101

    def _open(self, request: IncomingRequest, connection_id: str) -> _Accepted | HttpResponse:
        """The authorizer, then $connect: what API Gateway decides before it answers the handshake."""
        route = self._config.routes.get(CONNECT_ROUTE)
        origin = EventOrigin(connection_id, request.header("host") or "127.0.0.1", self._stage, request.source_ip)
        authorizer: dict[str, Any] | None = None
        if route is not None and route.authorized and self._config.authorizer_function:
            token = self._query_value(request, self._config.token_parameter)
            if not token:
                return _message(401, "Unauthorized")
            event = authorizer_event(origin, headers=request.headers, raw_query=request.raw_query, region=self._region)
            try:
                result = self._functions[self._config.authorizer_function](event)
            except Exception as error:
                if str(error) == "Unauthorized":
                    return _message(401, "Unauthorized")
                self._say(f"[ws] the authorizer raised:\n{traceback.format_exc()}")
                return _message(500, "Internal Server Error")
            if not _allows(result, method_arn(self._region, self._stage, CONNECT_ROUTE)):
                return _message(403, "Forbidden")
            authorizer = authorizer_context(result)
        if route is None:
            return _Accepted(authorizer)
        event = connect_event(origin, headers=request.headers, raw_query=request.raw_query, authorizer=authorizer)
        try:
            result = self._functions[route.function](event)
        except Exception:
            self._say(f"[ws] $connect raised:\n{traceback.format_exc()}")
            return _message(500, "Internal Server Error")
        status = _status_of(result)
        if not 200 <= status < 300:
            return _message(status, "Forbidden" if status == 403 else "Connection refused")
        return _Accepted(authorizer)

    def _run(self, connection: LocalConnection, reader: BinaryIO, domain: str) -> None:
        parts: list[bytes] = []
        while True:
            try:
                data = reader.read1(READ_SIZE)  # type: ignore[attr-defined]
            except (OSError, ValueError):
                data = b""
            for frame in connection.receive(data):
                if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
                    parts = [frame.data]
                elif frame.opcode is Opcode.CONT:
                    parts.append(frame.data)
                else:
                    continue
                if frame.fin:
                    self._message(connection, b"".join(parts), domain)
                    parts = []
            if not data or connection.closed:
                return

    def _message(self, connection: LocalConnection, data: bytes, domain: str) -> None:
        body = data.decode("utf-8", errors="replace")
        route = self._route_of(body)
        request_id = uuid.uuid4().hex[:16]
        if route is None:
            reply = {"message": "Forbidden", "connectionId": connection.connection_id, "requestId": request_id}
            connection.send(json.dumps(reply).encode())
            return
        result = self._invoke_route(
            route.key,
            lambda: message_event(
                route.key,
                body,
                EventOrigin(connection.connection_id, domain, self._stage, connection.source_ip),
                authorizer=connection.authorizer,
                connected_at_ms=connection.connected_at_ms,
            ),
        )
        if isinstance(result, Exception):
            reply = {
                "message": "Internal server error",
                "connectionId": connection.connection_id,
                "requestId": request_id,
            }
            connection.send(json.dumps(reply).encode())
            return
        if route.two_way and isinstance(result, dict) and result.get("body") is not None:
            answer = result["body"]
            connection.send(answer.encode() if isinstance(answer, str) else json.dumps(answer).encode())

    def _route_of(self, body: str) -> WebSocketRoute | None:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        action = parsed.get(self._config.selection_key) if isinstance(parsed, dict) else None
        if isinstance(action, str) and action in self._config.routes and not action.startswith("$"):
            return self._config.routes[action]
        return self._config.routes.get(DEFAULT_ROUTE)

    def _invoke_route(self, key: str, event: Callable[[], dict[str, Any]]) -> Any:
        route = self._config.routes.get(key)
        if route is None:
            return None
        try:
            return self._functions[route.function](event())
        except Exception as error:
            self._say(f"[ws] {key} raised:\n{traceback.format_exc()}")
            return error

    @staticmethod
    def _query_value(request: IncomingRequest, name: str | None) -> str | None:
        if name is None:
            return None
        values = parse_qs(request.raw_query, keep_blank_values=True).get(name)
        return values[-1] if values else None

    @staticmethod
    def _refuse(protocol: ServerProtocol, sock: socket.socket, status: int, message: str) -> int:
        body = json.dumps({"message": message}).encode()
        headers = Headers(
            [("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("Connection", "close")]
        )
        protocol.send_response(Response(status, _reason(status), headers, body))
        _write_all(protocol, sock)
        return status

    # The management API ------------------------------------------------------------------------------

    def manage(self, request: IncomingRequest) -> HttpResponse:
        """`POST` (send the body), `GET` (describe) or `DELETE` (close) /ws/@connections/{id}: signed
        requests only, as in AWS (SigV4; any signature is taken here); 410 for a connection that is gone."""
        if not (request.header("authorization") or "").startswith("AWS4-HMAC-SHA256 "):
            return _error(403, "ForbiddenException", "Missing Authentication Token")
        connection_id = unquote(request.raw_path.removeprefix(CONNECTIONS_PATH))
        with self._lock:
            connection = self._connections.get(connection_id)
        if connection is None or connection.gone:
            return _error(410, "GoneException", None)
        method = request.method.upper()
        if method == "POST":
            if len(request.body) > MAX_MESSAGE_BYTES:
                return _error(413, "PayloadTooLargeException", "Message too long")
            if not connection.send(request.body):
                return _error(410, "GoneException", None)
            return HttpResponse(200, [("Content-Type", "application/json")], b"")
        if method == "GET":
            identity = {"sourceIp": connection.source_ip, "userAgent": connection.user_agent}
            return json_response(
                200,
                {
                    "connectedAt": connection.connected_at.isoformat(),
                    "identity": identity,
                    "lastActiveAt": connection.last_active_at.isoformat(),
                },
            )
        if method == "DELETE":
            connection.close(GOING_AWAY, "Closed by the server")
            return HttpResponse(204, [], b"")
        return _error(403, "ForbiddenException", "Forbidden")

    def open_connections(self, user_id: str | None = None) -> list[str]:
        with self._lock:
            return [
                connection_id
                for connection_id, connection in self._connections.items()
                if user_id is None or connection.user_id == user_id
            ]

    def close_all(self) -> None:
        """The stack is stopping: every client is told the server is going away."""
        with self._lock:
            connections = list(self._connections.values())
        for connection in connections:
            connection.close(GOING_AWAY, "Server stopping")


def is_websocket_upgrade(request: IncomingRequest) -> bool:
    upgrade = (request.header("upgrade") or "").lower()
    return request.method.upper() == "GET" and request.raw_path == WEBSOCKET_PATH and "websocket" in upgrade


def _allows(result: Any, resource: str) -> bool:
    """An authorizer's IAM policy: some Allow statement matches and no Deny does."""
    if not isinstance(result, dict):
        return False
    statements = (result.get("policyDocument") or {}).get("Statement") or []
    allowed = False
    for statement in statements if isinstance(statements, list) else [statements]:
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        if not any(fnmatch.fnmatchcase(resource, pattern) for pattern in resources):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _status_of(result: Any) -> int:
    if isinstance(result, dict) and "statusCode" in result:
        try:
            return int(result["statusCode"])
        except (TypeError, ValueError):
            return 500
    return 200


def _message(status: int, message: str) -> HttpResponse:
    return json_response(status, {"message": message})


def _error(status: int, error_type: str, message: str | None) -> HttpResponse:
    return json_response(status, {"message": message}, [("x-amzn-ErrorType", error_type)])


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _write_all(protocol: ServerProtocol, sock: socket.socket) -> bool:
    try:
        for chunk in protocol.data_to_send():
            if chunk:
                sock.sendall(chunk)
    except OSError:
        return False
    return True
