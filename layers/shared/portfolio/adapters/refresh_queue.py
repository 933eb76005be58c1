"""The refresh queue: SendMessageBatch, ten entries a call, failed entries retried, never dropped.

SendMessageBatch can succeed as a call while rejecting some entries (throttling, an internal
error); those come back under "Failed" and are sent again with backoff. An entry that still fails
after the last attempt raises, so the run shows as failed instead of silently missing users.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

from portfolio.adapters.retry import RetryPolicy
from portfolio.services.ports import MAX_ENTRIES_PER_CALL, QueueEntry, SendStats

if TYPE_CHECKING:
    from portfolio.settings import Settings

DEFAULT_SEND_CONCURRENCY = 8
# SQS answers in tens of milliseconds; a call that takes seconds is better retried than waited for.
SQS_CONNECT_TIMEOUT_S = 1.0
SQS_READ_TIMEOUT_S = 5.0


def make_sqs_client(settings: Settings, *, max_pool_connections: int = DEFAULT_SEND_CONCURRENCY) -> Any:
    # boto3 is imported with the first client, not with this module: see wiring.preload_for_snapshot.
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sqs",
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=Config(
            connect_timeout=SQS_CONNECT_TIMEOUT_S,
            read_timeout=SQS_READ_TIMEOUT_S,
            retries={"mode": "standard", "total_max_attempts": 4},
            max_pool_connections=max_pool_connections,
        ),
    )


@dataclass(frozen=True, slots=True)
class EntryFailure:
    id: str
    code: str
    message: str
    sender_fault: bool


class SendFailedError(Exception):
    """Some entries were still rejected after every attempt."""

    def __init__(self, failures: Sequence[EntryFailure]) -> None:
        described = ", ".join(f"{failure.id} ({failure.code})" for failure in failures[:10])
        super().__init__(f"{len(failures)} refresh message(s) could not be queued: {described}")
        self.failures = list(failures)


class RefreshQueue:
    def __init__(
        self,
        sqs_client: Any,
        queue_url: str,
        *,
        max_attempts: int = 5,
        backoff_base_s: float = 0.1,
        backoff_cap_s: float = 2.0,
        concurrency: int = DEFAULT_SEND_CONCURRENCY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = sqs_client
        self._queue_url = queue_url
        # Jittered: spreads the retries of concurrent senders apart.
        self._retry = RetryPolicy(max_attempts, backoff_base_s, backoff_cap_s, sleep=sleep)
        self._concurrency = concurrency

    def send_batch(self, entries: Sequence[QueueEntry]) -> SendStats:
        """Send up to ten entries; entries SQS reports as failed are sent again, with backoff."""
        if not 0 < len(entries) <= MAX_ENTRIES_PER_CALL:
            raise ValueError(f"a batch holds 1 to {MAX_ENTRIES_PER_CALL} entries, not {len(entries)}")
        pending = {entry.id: entry for entry in entries}
        calls = retried = 0
        failures: list[EntryFailure] = []
        for attempt in self._retry.attempts():
            if attempt > 1:
                retried += len(pending)
            response = self._client.send_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": entry.id, "MessageBody": entry.body} for entry in pending.values()],
            )
            calls += 1
            failures = [
                EntryFailure(item["Id"], item.get("Code", ""), item.get("Message", ""), item.get("SenderFault", False))
                for item in response.get("Failed", [])
            ]
            # A sender fault (a malformed entry) fails the same way every time: no point retrying it.
            if not failures or any(failure.sender_fault for failure in failures):
                break
            pending = {failure.id: pending[failure.id] for failure in failures}
        if failures:
            raise SendFailedError(failures)
        return SendStats(messages=len(entries), calls=calls, retried_entries=retried)

    def send_all(self, entries: Iterable[QueueEntry]) -> SendStats:
        """Send every entry, ten a call, several calls at once; raises on the first batch that fails."""
        batches = _chunks(entries, MAX_ENTRIES_PER_CALL)
        if self._concurrency <= 1:
            total = SendStats()
            for batch in batches:
                total += self.send_batch(batch)
            return total
        return self._send_concurrently(batches)

    def _send_concurrently(self, batches: Iterator[list[QueueEntry]]) -> SendStats:
        total = SendStats()
        # Bounded look-ahead: memory stays flat however many users there are.
        in_flight: deque[Future[SendStats]] = deque()
        with ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="refresh-send") as pool:
            try:
                for batch in batches:
                    while len(in_flight) >= 2 * self._concurrency:
                        total += _collect_done(in_flight)
                    in_flight.append(pool.submit(self.send_batch, batch))
                while in_flight:
                    total += _collect_done(in_flight)
            except BaseException:
                for future in in_flight:
                    future.cancel()
                raise
        return total


def _collect_done(in_flight: deque[Future[SendStats]]) -> SendStats:
    done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
    total = SendStats()
    for future in done:
        in_flight.remove(future)
        total += future.result()
    return total


def _chunks(entries: Iterable[QueueEntry], size: int) -> Iterator[list[QueueEntry]]:
    iterator = iter(entries)
    while batch := list(islice(iterator, size)):
        yield batch
