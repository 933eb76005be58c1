"""A real HTTP proxy in front of moto's DynamoDB that leaves part of a BatchWriteItem unprocessed.

DynamoDB may accept a BatchWriteItem call yet leave some of its items unprocessed (throttling on a
hot partition) and hand them back under "UnprocessedItems". This proxy does that on the wire: the
held-back items never reach moto, and come back exactly as DynamoDB returns them. Every other
call is forwarded unchanged.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FORWARDED_HEADERS = ("Content-Type", "X-Amz-Target", "Authorization", "X-Amz-Date", "X-Amz-Security-Token")
BATCH_WRITE_TARGET = "DynamoDB_20120810.BatchWriteItem"


@dataclass
class UnprocessedItemsProxy:
    """Holds back the last `hold_back` items of the first `times` BatchWriteItem calls (times < 0: every call)."""

    upstream: str
    hold_back: int = 0
    times: int = 0
    url: str = ""
    batch_sizes: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _forward(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        request = urllib.request.Request(self.upstream + "/", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def _split(self, requests: list[dict]) -> tuple[list[dict], list[dict]]:
        with self._lock:
            self.batch_sizes.append(len(requests))
            holding = self.times < 0 or len(self.batch_sizes) <= self.times
        if not holding or self.hold_back <= 0:
            return requests, []
        cut = max(0, len(requests) - self.hold_back)
        return requests[:cut], requests[cut:]

    def handle(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if headers.get("X-Amz-Target") != BATCH_WRITE_TARGET:
            return self._forward(body, headers)
        request = json.loads(body)
        ((table, requests),) = request["RequestItems"].items()
        sent, held = self._split(requests)
        answer: dict = {"UnprocessedItems": {}}
        if sent:
            # Re-signing is not needed: moto does not verify signatures.
            status, raw = self._forward(json.dumps({**request, "RequestItems": {table: sent}}).encode(), headers)
            if status != 200:
                return status, raw
            answer = json.loads(raw)
        if held:
            answer["UnprocessedItems"] = {table: held}
        return 200, json.dumps(answer).encode()


@contextmanager
def unprocessed_items_proxy(upstream: str, *, hold_back: int, times: int) -> Iterator[UnprocessedItemsProxy]:
    proxy = UnprocessedItemsProxy(upstream, hold_back=hold_back, times=times)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {name: self.headers[name] for name in FORWARDED_HEADERS if self.headers.get(name)}
            status, answer = proxy.handle(body, headers)
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
