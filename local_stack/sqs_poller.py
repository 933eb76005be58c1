"""What Lambda's SQS event source mapping does, for a queue on this machine.

Receive a batch, hand it to the handler in the event shape Lambda uses, then delete only what
succeeded: every message not named in `batchItemFailures` (ReportBatchItemFailures). If the
handler raises, nothing is deleted and the batch comes back after the visibility timeout, as in
AWS. Moving a message to the dead-letter queue is the queue's own RedrivePolicy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from local_stack.lambda_context import LocalLambdaContext

Handler = Callable[[dict[str, Any], Any], Any]
MAX_DELETE_ENTRIES = 10  # SQS's limit for DeleteMessageBatch


@dataclass(frozen=True)
class PollResult:
    received: list[str] = field(default_factory=list)  # message ids
    deleted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    handler_error: BaseException | None = None


def _lambda_message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """ReceiveMessage's MessageAttributes -> the camelCase form Lambda puts in the event."""
    converted = {}
    for name, value in attributes.items():
        entry: dict[str, Any] = {"dataType": value["DataType"], "stringListValues": [], "binaryListValues": []}
        if "StringValue" in value:
            entry["stringValue"] = value["StringValue"]
        if "BinaryValue" in value:
            entry["binaryValue"] = value["BinaryValue"]
        converted[name] = entry
    return converted


class SqsPoller:
    """Polls one queue and invokes `handler(event, context)` with Lambda's SQS event."""

    def __init__(
        self,
        sqs_client: Any,
        queue_url: str,
        handler: Handler,
        *,
        batch_size: int = 10,
        wait_time_s: int = 0,
        context_factory: Callable[[], Any] = lambda: LocalLambdaContext("price-updater"),
        region: str = "us-east-1",
    ) -> None:
        self._client = sqs_client
        self._queue_url = queue_url
        self._handler = handler
        self._batch_size = batch_size
        self._wait_time_s = wait_time_s
        self._context_factory = context_factory
        self._region = region
        attributes = sqs_client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        self._queue_arn = attributes["QueueArn"]

    def event_for(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {"Records": [self._record(message) for message in messages]}

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": dict(message.get("Attributes", {})),
            "messageAttributes": _lambda_message_attributes(message.get("MessageAttributes", {})),
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": self._region,
        }

    def receive(self, wait_time_s: int | None = None) -> list[dict[str, Any]]:
        return self._client.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=self._wait_time_s if wait_time_s is None else wait_time_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])

    def poll_once(self, wait_time_s: int | None = None) -> PollResult:
        """One receive and one invocation; an empty receive invokes nothing."""
        messages = self.receive(wait_time_s)
        if not messages:
            return PollResult()
        received = [message["MessageId"] for message in messages]
        try:
            response = self._handler(self.event_for(messages), self._context_factory())
        except Exception as error:  # the invocation failed: the whole batch comes back
            return PollResult(received=received, failed=received, handler_error=error)
        failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
        succeeded = [message for message in messages if message["MessageId"] not in failed]
        for start in range(0, len(succeeded), MAX_DELETE_ENTRIES):
            self._client.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(succeeded[start : start + MAX_DELETE_ENTRIES])
                ],
            )
        return PollResult(
            received=received,
            deleted=[message["MessageId"] for message in succeeded],
            failed=[message_id for message_id in received if message_id in failed],
        )

    def drain(self, *, max_polls: int = 100) -> list[PollResult]:
        """Poll without waiting until a receive comes back empty (or `max_polls` invocations ran)."""
        results = []
        for _ in range(max_polls):
            result = self.poll_once(wait_time_s=0)
            if not result.received:
                break
            results.append(result)
        return results


class QueueTurns:
    """Who may consume the queue: one consumer at a time, and an on-demand drain goes first.

    A plain lock would let the background poller take the queue again the moment it let go,
    keeping a waiting drain out for poll after poll; here the poller steps aside while one waits.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._drains_waiting = 0

    @contextmanager
    def drain_turn(self) -> Iterator[None]:
        with self._changed:
            self._drains_waiting += 1
        try:
            with self._lock:
                yield
        finally:
            with self._changed:
                self._drains_waiting -= 1
                self._changed.notify_all()

    @contextmanager
    def poll_turn(self) -> Iterator[None]:
        with self._changed:
            while self._drains_waiting:
                self._changed.wait()
        with self._lock:
            yield


class PollerThread(threading.Thread):
    """Long-polls in the background until stopped, taking its turns so a drain is never kept waiting long.

    Only one consumer works the queue at a time, so a batch is never split between two and the
    counts a drain reports are its own.
    """

    def __init__(
        self,
        poller: SqsPoller,
        turns: QueueTurns,
        *,
        wait_time_s: int = 1,
        on_result: Callable[[PollResult], None] = lambda _result: None,
        on_error: Callable[[BaseException], None] = lambda _error: None,
    ) -> None:
        super().__init__(name="sqs-poller", daemon=True)
        self._poller = poller
        self._turns = turns
        self._wait_time_s = wait_time_s
        self._on_result = on_result
        self._on_error = on_error
        self._stop_requested = threading.Event()

    def run(self) -> None:
        while not self._stop_requested.is_set():
            try:
                with self._turns.poll_turn():
                    result = self._poller.poll_once(wait_time_s=self._wait_time_s)
            except Exception as error:  # the queue is unreachable: report, wait a little, try again
                self._on_error(error)
                self._stop_requested.wait(1.0)
                continue
            if result.received:
                self._on_result(result)

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop_requested.set()
        if self.is_alive():
            self.join(timeout=timeout_s)
