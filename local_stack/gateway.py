"""The HTTP API in front of the API function: routing, the JWT authorizer, size limit, event translation;
and, on the same port, the WebSocket API at /ws with its management API (websocket_api.py).

`Gateway.dispatch` makes every decision API Gateway makes before and after the function runs;
`GatewayServer` only moves bytes between a socket and it (and hands a WebSocket upgrade over).
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local_stack.http_events import (
    HttpResponse,
    IncomingRequest,
    Route,
    gateway_error,
    http_api_event,
    http_response,
    json_response,
    match_route,
)
from local_stack.jwt_auth import JwtAuthorizer
from local_stack.websocket_api import CONNECTIONS_PATH, WEBSOCKET_PATH, LocalWebSocketApi, is_websocket_upgrade

# API Gateway's payload limit for HTTP APIs.
MAX_REQUEST_BYTES = 10 * 1024 * 1024
# The methods an HTTP API route can declare; any other (TRACE, CONNECT, ...) is answered 405 here.
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})

Handler = Callable[[dict[str, Any], Any], Any]
LocalRoute = Callable[[IncomingRequest], HttpResponse]


@dataclass(frozen=True)
class Exchange:
    """One request and its answer, for the access log."""

    method: str
    path: str
    status: int
    duration_ms: float


class Gateway:
    def __init__(
        self,
        api_handler: Handler,
        routes: tuple[Route, ...],
        authorizer: JwtAuthorizer,
        context_factory: Callable[[], Any],
        *,
        local_routes: dict[tuple[str, str], LocalRoute] | None = None,
        on_error: Callable[[str], None] = lambda _text: None,
        websocket: LocalWebSocketApi | None = None,
    ) -> None:
        self.websocket = websocket
        self._api_handler = api_handler
        self._routes = routes
        self._authorizer = authorizer
        self._context_factory = context_factory
        self._local_routes = dict(local_routes or {})
        self._on_error = on_error

    def dispatch(self, request: IncomingRequest) -> HttpResponse:
        if request.method.upper() not in HTTP_METHODS:
            return self._method_not_allowed(request)
        if len(request.body) > MAX_REQUEST_BYTES:
            return gateway_error(413, "Request Entity Too Large")
        local_route = self._local_routes.get((request.method.upper(), request.raw_path))
        if local_route is not None:
            return local_route(request)
        if self.websocket is not None and request.raw_path.startswith(CONNECTIONS_PATH):
            return self.websocket.manage(request)
        if self.websocket is not None and request.raw_path == WEBSOCKET_PATH:
            return gateway_error(426, "Upgrade Required")
        match = match_route(request.method, request.raw_path, self._routes)
        if match is None:
            return gateway_error(404, "Not Found")
        caller = None
        if match.route.authorized:
            caller = self._authorizer.authorize(request.header("authorization"))
            if caller is None:
                return gateway_error(401, "Unauthorized")
        event = http_api_event(request, match, caller)
        try:
            result = self._api_handler(event, self._context_factory())
        except Exception:
            # The function crashed: API Gateway answers 500 and the details go to the function's log.
            self._on_error(traceback.format_exc())
            return gateway_error(500, "Internal Server Error")
        return http_response(result)

    def _method_not_allowed(self, request: IncomingRequest) -> HttpResponse:
        """405 in the API's error shape, with the methods the path's routes declare in Allow."""
        allowed = {route.method for route in self._routes if match_route(route.method, request.raw_path, (route,))}
        allowed |= {method for method, path in self._local_routes if path == request.raw_path}
        body = {"error": {"code": "method_not_allowed", "message": f"{request.method} is not allowed here"}}
        return json_response(HTTPStatus.METHOD_NOT_ALLOWED.value, body, [("Allow", ", ".join(sorted(allowed)))])


class _RequestHandler(BaseHTTPRequestHandler):
    server: GatewayServer
    protocol_version = "HTTP/1.1"
    server_version = "local-http-api"
    sys_version = ""

    def __getattr__(self, name: str) -> Callable[[], None]:
        # http.server serves a method through do_<METHOD> and answers any other with its own 501 HTML
        # page; here every method reaches the gateway, which decides (405 JSON for one it does not route).
        if name.startswith("do_"):
            return self._serve
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a malformed request line, a line or headers too long) in API
        Gateway's JSON, like every other answer here, never its HTML error page."""
        self.close_connection = True
        self._write(gateway_error(code, HTTPStatus(code).phrase))

    def _serve(self) -> None:
        started = time.perf_counter()
        path, _, query = self.path.partition("?")
        declared_length = self._declared_length()
        if declared_length is None:
            response = gateway_error(400, "Bad Request")
            self.close_connection = True
        elif declared_length > MAX_REQUEST_BYTES:
            # Answer without reading the body: nobody should have to upload 10 MB to hear "too large".
            response = gateway_error(413, "Request Entity Too Large")
            self.close_connection = True
        else:
            request = IncomingRequest(
                method=self.command,
                raw_path=path,
                raw_query=query,
                headers=list(self.headers.items()),
                body=self.rfile.read(declared_length) if declared_length else b"",
                source_ip=self.client_address[0],
                protocol=self.request_version,
            )
            websocket = self.server.gateway.websocket
            if websocket is not None and is_websocket_upgrade(request):
                # The socket is the WebSocket's until it closes; the query (the token) is never logged.
                self.close_connection = True
                status = websocket.serve(request, self._raw_request(), self.connection, self.rfile)
                self.server.on_exchange(Exchange(self.command, path, status, (time.perf_counter() - started) * 1000))
                return
            response = self.server.gateway.dispatch(request)
        self._write(response)
        self.server.on_exchange(Exchange(self.command, path, response.status, (time.perf_counter() - started) * 1000))

    def _raw_request(self) -> bytes:
        """The request line and headers as the client sent them (http.server has read them already)."""
        lines = [self.requestline, *(f"{name}: {value}" for name, value in self.headers.items()), "", ""]
        return "\r\n".join(lines).encode("latin-1")

    def _declared_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        if value is None:
            return 0
        try:
            length = int(value)
        except ValueError:
            return None
        return length if length >= 0 else None

    def _write(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Exchanges are reported through the server's on_exchange; the base class's log line is not needed."""


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    # The functions push to the management API on this port many connections at once (socketserver's
    # backlog of 5 would drop the rest of a burst, which then waits a second for its SYN again).
    request_queue_size = 128
    # Restarting right after Ctrl-C should not fail on a port stuck in TIME_WAIT.
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        gateway: Gateway,
        on_exchange: Callable[[Exchange], None] = lambda _exchange: None,
    ) -> None:
        super().__init__(address, _RequestHandler)
        self.gateway = gateway
        self.on_exchange = on_exchange

    @property
    def port(self) -> int:
        return self.server_address[1]
