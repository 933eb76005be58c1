"""An HTTP server on 127.0.0.1 in a thread of its own: what every local stand-in (the coins API, the
Solana node, the node proxy) is built on; ScriptedServer adds what the stand-ins share: the requests
they received, and answers scripted to misbehave.

    class Echo(LoopbackServer):
        thread_name = "echo"

        def handler_class(self) -> type[BaseHTTPRequestHandler]: ...

    with Echo() as server:   # port 0: the OS picks a free one
        httpx.get(server.url)
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class LoopbackServer:
    thread_name = "loopback-server"

    def __init__(self, *, port: int = 0) -> None:
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self) -> Self:
        server = ThreadingHTTPServer(("127.0.0.1", self._port), self.handler_class())
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name=self.thread_name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class QuietHandler(BaseHTTPRequestHandler):
    """The stand-ins' request handler: HTTP/1.1 keep-alive, one segment per answer, no access log
    (the clients log what they asked and got)."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in one segment, not two held back by Nagle and delayed ACKs.
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


def decimal_json(value: Any) -> str:
    """JSON with Decimals written as number literals, digit for digit, as the real services write them."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(key)}:{decimal_json(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(decimal_json(item) for item in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value)


@dataclass
class Answer:
    """One HTTP answer a stand-in gives, or a connection it closes without one."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop_connection: bool = False


def send_answer(handler: BaseHTTPRequestHandler, answer: Answer, *, delay_s: float = 0.0) -> None:
    """Write `answer` (JSON unless its headers say otherwise) after `delay_s`, or drop the connection."""
    if delay_s:
        time.sleep(delay_s)
    if answer.drop_connection:
        handler.close_connection = True
        handler.connection.shutdown(socket.SHUT_RDWR)
        return
    handler.send_response(answer.status)
    for name, value in ({"Content-Type": "application/json"} | answer.headers).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(answer.body)))
    handler.end_headers()
    handler.wfile.write(answer.body)


class ScriptedServer[Received](LoopbackServer):
    """A stand-in that keeps what it received and can be told what to answer next: a scripted answer
    for the next requests, one for every request until `heal`, a dropped connection, a delay.

    `request_log_size` bounds the requests kept for `requests` (None: all); `request_count` counts
    every one. Subclasses hold `_lock` while they answer, and call `_scripted_answer` and `_record`.
    """

    def __init__(self, *, port: int = 0, request_log_size: int | None = None) -> None:
        super().__init__(port=port)
        self.delay_s = 0.0
        self._lock = threading.Lock()
        self._scripted: deque[Answer] = deque()
        self._always: Answer | None = None
        self._requests: deque[Received] = deque(maxlen=request_log_size)
        self._request_count = 0

    def drop_next(self, count: int = 1) -> None:
        """Close the next `count` connections without answering."""
        self._script(Answer(drop_connection=True), count)

    def heal(self) -> None:
        """Back to answering every request correctly and promptly."""
        with self._lock:
            self._scripted.clear()
            self._always = None
            self.delay_s = 0.0

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return self._request_count

    def reset_counters(self) -> None:
        with self._lock:
            self._requests.clear()
            self._request_count = 0

    def _script(self, answer: Answer, count: int = 1) -> None:
        with self._lock:
            self._scripted.extend(replace(answer, headers=dict(answer.headers)) for _ in range(count))

    def _answer_always(self, answer: Answer) -> None:
        with self._lock:
            self._always = answer

    def _scripted_answer(self) -> Answer | None:
        """The answer scripted for this request, if any (the caller holds `_lock`)."""
        if self._scripted:
            return self._scripted.popleft()
        return self._always

    def _record(self, received: Received) -> None:
        """Counts and keeps one request (the caller holds `_lock`)."""
        self._requests.append(received)
        self._request_count += 1
