"""An HTTP proxy on loopback in front of a JSON-RPC node: it counts what reaches the node (benchmarks)
and can be told to misbehave (tests).

    with RpcProxy(anvil.url) as proxy:
        reader = make_reader(proxy.url)
        proxy.fail_next(2, status=429, retry_after="0.05")   # then forward again
        proxy.drop_next()                                     # close the connection without an answer
        proxy.error_calls(lambda call: call["method"] == "eth_getLogs", code=-32005, message="limit exceeded")
        proxy.before_next("eth_getBalance", action)           # run action, then forward that request

Everything not scripted is forwarded to the node unchanged, and the node's answer comes back as it is.
A call answered by `error_calls` is not forwarded; the rest of its batch is, and the answers are merged.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx

from local_stack.loopback_server import LoopbackServer

CallMatcher = Callable[[dict[str, Any]], bool]


@dataclass
class _Scripted:
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    drop_connection: bool = False


@dataclass
class _CallError:
    matches: CallMatcher
    code: int
    message: str


class RpcProxy(LoopbackServer):
    """Forwards POSTs on 127.0.0.1:<port> to `upstream`; start with `start()` or `with`."""

    thread_name = "rpc-proxy"

    def __init__(self, upstream: str) -> None:
        super().__init__()
        self.upstream = upstream
        self._http = httpx.Client(timeout=30)
        self._lock = threading.Lock()
        self._scripted: deque[_Scripted] = deque()
        self._call_errors: list[_CallError] = []
        self._before: list[tuple[str, Callable[[], None]]] = []
        self.requests: list[list[dict[str, Any]]] = []  # every request's calls, as received
        self.statuses: list[int | None] = []  # what each request got (None: dropped)

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _handler_for(self)

    def stop(self) -> None:
        super().stop()
        self._http.close()

    def take(self) -> list[list[dict[str, Any]]]:
        """The requests received since the last take (each as its calls), forgotten here."""
        with self._lock:
            taken, self.requests = self.requests, []
        return taken

    # -- what to do ------------------------------------------------------------------------------

    def fail_next(self, count: int = 1, *, status: int = 500, retry_after: str | None = None) -> None:
        """The next `count` requests get this HTTP status (and Retry-After when given), not forwarded."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self._lock:
            self._scripted.extend(_Scripted(status, dict(headers)) for _ in range(count))

    def drop_next(self, count: int = 1) -> None:
        """Close the next `count` connections without answering."""
        with self._lock:
            self._scripted.extend(_Scripted(drop_connection=True) for _ in range(count))

    def error_calls(self, matches: CallMatcher, *, code: int = -32005, message: str = "limit exceeded") -> None:
        """From now on, calls for which `matches(call)` holds are answered with this error object."""
        with self._lock:
            self._call_errors.append(_CallError(matches, code, message))

    def before_next(self, method: str, action: Callable[[], None]) -> None:
        """Run `action` once, just before forwarding the next request holding a call of `method`."""
        with self._lock:
            self._before.append((method, action))

    def heal(self) -> None:
        with self._lock:
            self._scripted.clear()
            self._call_errors.clear()
            self._before.clear()

    # -- answering -------------------------------------------------------------------------------

    def _answer(self, body: bytes) -> tuple[_Scripted | None, bytes]:
        """(a scripted failure, or None and the answer body)."""
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        calls = parsed if isinstance(parsed, list) else [parsed] if isinstance(parsed, dict) else []
        with self._lock:
            self.requests.append(calls)
            scripted = self._scripted.popleft() if self._scripted else None
            if scripted is not None:
                self.statuses.append(None if scripted.drop_connection else scripted.status)
                return scripted, b""
            methods = {call.get("method") for call in calls}
            actions = [action for method, action in self._before if method in methods]
            self._before = [(method, action) for method, action in self._before if method not in methods]
            call_errors = list(self._call_errors)
        for action in actions:
            action()
        answer = self._forward(body, parsed, calls, call_errors)
        with self._lock:
            self.statuses.append(200)
        return None, answer

    def _forward(self, body: bytes, parsed: Any, calls: list[dict[str, Any]], call_errors: list[_CallError]) -> bytes:
        errors: dict[Any, dict[str, Any]] = {}
        for call in calls:
            failing = next((error for error in call_errors if error.matches(call)), None)
            if failing is not None:
                errors[call.get("id")] = {"code": failing.code, "message": failing.message}
        if not errors:
            return self._http.post(self.upstream, content=body, headers={"Content-Type": "application/json"}).content
        forwarded = [call for call in calls if call.get("id") not in errors]
        answers: list[Any] = []
        if forwarded:
            answered = self._http.post(self.upstream, json=forwarded).json()
            answers = answered if isinstance(answered, list) else [answered]
        answers += [{"jsonrpc": "2.0", "id": call_id, "error": error} for call_id, error in errors.items()]
        return json.dumps(answers if isinstance(parsed, list) else answers[0]).encode()


def _handler_for(proxy: RpcProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            scripted, answer = proxy._answer(body)
            if scripted is not None and scripted.drop_connection:
                self.close_connection = True
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            status = 200 if scripted is None else scripted.status
            if scripted is not None:
                answer = json.dumps(
                    {"jsonrpc": "2.0", "id": None, "error": {"code": -32000, "message": "busy"}}
                ).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            for name, value in ({} if scripted is None else scripted.headers).items():
                self.send_header(name, value)
            self.end_headers()
            with contextlib.suppress(ConnectionError):
                self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    return Handler
