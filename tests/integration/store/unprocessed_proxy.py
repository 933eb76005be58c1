"""A real HTTP proxy in front of moto's DynamoDB that leaves part of a batch call unprocessed.

DynamoDB may accept a BatchWriteItem (BatchGetItem) call yet leave some of its items (keys)
unprocessed (throttling on a hot partition) and hand them back under "UnprocessedItems"
("UnprocessedKeys"). This proxy does that on the wire: the held-back items or keys never reach
moto, and come back exactly as DynamoDB returns them. Every other call is forwarded unchanged.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.support.aws_proxy import forward, serving

BATCH_WRITE_TARGET = "DynamoDB_20120810.BatchWriteItem"
BATCH_GET_TARGET = "DynamoDB_20120810.BatchGetItem"


@dataclass
class UnprocessedItemsProxy:
    """Holds back the last `hold_back` items (keys) of the first `times` batch calls (times < 0: every call)."""

    upstream: str
    hold_back: int = 0
    times: int = 0
    url: str = ""
    batch_sizes: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _split(self, requests: list[dict]) -> tuple[list[dict], list[dict]]:
        with self._lock:
            self.batch_sizes.append(len(requests))
            holding = self.times < 0 or len(self.batch_sizes) <= self.times
        if not holding or self.hold_back <= 0:
            return requests, []
        cut = max(0, len(requests) - self.hold_back)
        return requests[:cut], requests[cut:]

    def handle(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        target = headers.get("X-Amz-Target")
        if target == BATCH_GET_TARGET:
            return self._batch_get(body, headers)
        if target != BATCH_WRITE_TARGET:
            return forward(self.upstream, body, headers, timeout_s=10)
        request = json.loads(body)
        ((table, requests),) = request["RequestItems"].items()
        sent, held = self._split(requests)
        answer: dict = {"UnprocessedItems": {}}
        if sent:
            trimmed = json.dumps({**request, "RequestItems": {table: sent}}).encode()
            status, raw = forward(self.upstream, trimmed, headers)
            if status != 200:
                return status, raw
            answer = json.loads(raw)
        if held:
            answer["UnprocessedItems"] = {table: held}
        return 200, json.dumps(answer).encode()

    def _batch_get(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        request = json.loads(body)
        ((table, wanted),) = request["RequestItems"].items()
        sent, held = self._split(wanted["Keys"])
        answer: dict = {"Responses": {table: []}, "UnprocessedKeys": {}}
        if sent:
            trimmed = json.dumps({**request, "RequestItems": {table: {**wanted, "Keys": sent}}}).encode()
            status, raw = forward(self.upstream, trimmed, headers)
            if status != 200:
                return status, raw
            answer = json.loads(raw)
        if held:
            answer["UnprocessedKeys"] = {table: {**wanted, "Keys": held}}
        return 200, json.dumps(answer).encode()


@contextmanager
def unprocessed_items_proxy(upstream: str, *, hold_back: int, times: int) -> Iterator[UnprocessedItemsProxy]:
    proxy = UnprocessedItemsProxy(upstream, hold_back=hold_back, times=times)
    with serving(proxy.handle) as url:
        proxy.url = url
        yield proxy
