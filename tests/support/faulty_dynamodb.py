"""A real HTTP proxy in front of moto's DynamoDB that misbehaves as DynamoDB can.

- throttle: the first `throttle` requests (every request when < 0) get DynamoDB's own 400
  ProvisionedThroughputExceededException and never reach moto, as on a hot table.
- answer_late: the first `answer_late` requests do reach moto, but their answer is held for
  `late_by_s` seconds, so the client times out on a write that did happen.
- only: a predicate on (operation, request body) choosing which requests the faults apply to,
  e.g. `only=lambda operation, _: operation == "TransactWriteItems"`; the others always pass.
- spare: the first `spare` requests chosen by `only` pass untouched before the faults start.
- one_at_a_time: forward one request at a time. moto's server runs requests in parallel threads and
  its TransactWriteItems is not atomic then (a cancelled transaction restores a copy of the whole
  table, undoing writes made meanwhile); DynamoDB applies each request atomically.

Everything else is forwarded unchanged. `operations` lists every operation seen, in order.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.support.aws_proxy import forward, serving

THROTTLED = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "The level of configured provisioned throughput for the table was exceeded.",
    }
).encode()


@dataclass
class FaultyDynamoDb:
    upstream: str
    throttle: int = 0
    answer_late: int = 0
    late_by_s: float = 0.0
    only: Callable[[str, dict[str, Any]], bool] | None = None
    spare: int = 0
    one_at_a_time: bool = False
    url: str = ""
    requests: int = 0
    throttled: int = 0
    answered_late: int = 0
    spared: int = 0
    operations: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _forwarding: threading.Lock = field(default_factory=threading.Lock)

    def _chosen(self, operation: str, body: bytes) -> bool:
        """Whether the faults apply to this request (after the spared ones)."""
        if self.only is not None and not self.only(operation, json.loads(body or b"{}")):
            return False
        if self.spared < self.spare:
            self.spared += 1
            return False
        return True

    def handle(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        operation = headers.get("X-Amz-Target", "").rpartition(".")[2]
        with self._lock:
            self.requests += 1
            self.operations.append(operation)
            chosen = self._chosen(operation, body)
            throttle = chosen and (self.throttle < 0 or self.throttled < self.throttle)
            self.throttled += throttle
            late = chosen and not throttle and self.answered_late < self.answer_late
            self.answered_late += late
        if throttle:
            return 400, THROTTLED
        if self.one_at_a_time:
            with self._forwarding:
                answer = forward(self.upstream, body, headers)
        else:
            answer = forward(self.upstream, body, headers)
        if late:
            time.sleep(self.late_by_s)
        return answer


@contextmanager
def faulty_dynamodb(upstream: str, **faults: Any) -> Iterator[FaultyDynamoDb]:
    proxy = FaultyDynamoDb(upstream, **faults)
    with serving(proxy.handle) as url:
        proxy.url = url
        yield proxy
