"""API Gateway's management API (`POST /<stage>/@connections/{id}`) as a local stand-in that can be told
to misbehave per connection: answer 410 (gone), 500, or only after a stall."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import unquote

from local_stack.loopback_server import Answer, QuietHandler, ScriptedServer, send_answer

STAGE_PATH = "/test"


@dataclass(frozen=True)
class Post:
    connection_id: str
    data: bytes
    signed: bool


class ManagementApiStandIn(ScriptedServer[Post]):
    thread_name = "management-api"

    def __init__(self) -> None:
        super().__init__()
        self.gone: set[str] = set()
        self.failing: set[str] = set()
        self.stall_s = 0.0
        self.stalls_started = 0
        self._stall_lock = threading.Lock()

    @property
    def callback_url(self) -> str:
        """What WEBSOCKET_CALLBACK_URL would be: https://<api>.execute-api.<region>.amazonaws.com/<stage>."""
        return f"{self.url}{STAGE_PATH}"

    def delivered_to(self, connection_id: str) -> list[bytes]:
        return [
            post.data
            for post in self.requests
            if post.connection_id == connection_id and post.connection_id not in self.gone | self.failing
        ]

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length)
                connection_id = unquote(self.path.rsplit("/@connections/", 1)[-1])
                signed = (self.headers.get("Authorization") or "").startswith("AWS4-HMAC-SHA256 ")
                with server._lock:
                    server._record(Post(connection_id, data, signed))
                if server.stall_s:
                    with server._stall_lock:
                        server.stalls_started += 1
                    time.sleep(server.stall_s)
                if connection_id in server.gone:
                    answer = Answer(410, b'{"message":null}', {"x-amzn-ErrorType": "GoneException"})
                elif connection_id in server.failing:
                    answer = Answer(500, b'{"message":"Internal server error"}')
                else:
                    answer = Answer(200)
                try:
                    send_answer(self, answer)
                except OSError:  # the caller gave up waiting
                    self.close_connection = True

        return Handler
