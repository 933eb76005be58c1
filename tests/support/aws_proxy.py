"""The plumbing of the HTTP proxies tests put in front of moto's server: a loopback server that hands
every AWS JSON-protocol request to a handler, and the forwarding of a request to moto unchanged.
Each proxy decides what to change on the wire (tests/support/faulty_dynamodb.py, ...)."""

from __future__ import annotations

import contextlib
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FORWARDED_HEADERS = ("Content-Type", "X-Amz-Target", "Authorization", "X-Amz-Date", "X-Amz-Security-Token")

Handle = Callable[[bytes, dict[str, str]], tuple[int, bytes]]


def forward(upstream: str, body: bytes, headers: dict[str, str], *, timeout_s: float = 30) -> tuple[int, bytes]:
    """Send the request on to moto as it came (moto does not check signatures, so none is redone)."""
    request = urllib.request.Request(upstream + "/", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@contextmanager
def serving(handle: Handle) -> Iterator[str]:
    """A server on 127.0.0.1 answering every POST with handle(body, headers); yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {name: self.headers[name] for name in FORWARDED_HEADERS if self.headers.get(name)}
            status, answer = handle(body, headers)
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            # A client that gave up on a late answer has closed the connection already.
            with contextlib.suppress(ConnectionError):
                self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
