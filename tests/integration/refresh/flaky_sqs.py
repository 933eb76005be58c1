"""A real HTTP proxy in front of moto's SQS that rejects chosen SendMessageBatch entries.

SQS can accept a SendMessageBatch call and still reject some of its entries (throttling, an
internal error); this proxy makes that happen on the wire: the rejected entries never reach the
queue and come back under "Failed", exactly as SQS reports them.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.support.aws_proxy import forward, serving


@dataclass
class RejectionRule:
    """Reject an entry whose body contains `marker` on its first `times` attempts (times < 0: always)."""

    marker: str
    times: int
    code: str = "InternalError"
    seen: Counter[str] = field(default_factory=Counter)

    def rejects(self, entry: dict) -> bool:
        if self.marker not in entry["MessageBody"]:
            return False
        self.seen[entry["Id"]] += 1
        return self.times < 0 or self.seen[entry["Id"]] <= self.times


@dataclass
class FlakySqs:
    upstream: str
    rules: list[RejectionRule] = field(default_factory=list)
    batch_calls: int = 0
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reject(self, marker: str, *, times: int, code: str = "InternalError") -> None:
        self.rules.append(RejectionRule(marker, times, code))

    def _split(self, entries: list[dict]) -> tuple[list[dict], list[dict]]:
        kept, failed = [], []
        with self._lock:
            self.batch_calls += 1
            for entry in entries:
                rule = next((rule for rule in self.rules if rule.rejects(entry)), None)
                if rule is None:
                    kept.append(entry)
                else:
                    failed.append({"Id": entry["Id"], "Code": rule.code, "Message": "rejected", "SenderFault": False})
        return kept, failed

    def handle(self, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if headers.get("X-Amz-Target") != "AmazonSQS.SendMessageBatch":
            return forward(self.upstream, body, headers, timeout_s=10)
        request = json.loads(body)
        kept, failed = self._split(request["Entries"])
        successful: list[dict] = []
        if kept:
            status, answer = forward(self.upstream, json.dumps({**request, "Entries": kept}).encode(), headers)
            if status != 200:
                return status, answer
            successful = json.loads(answer).get("Successful", [])
        return 200, json.dumps({"Successful": successful, "Failed": failed}).encode()


@contextmanager
def flaky_sqs(upstream: str) -> Iterator[FlakySqs]:
    proxy = FlakySqs(upstream)
    with serving(proxy.handle) as url:
        proxy.url = url
        yield proxy
