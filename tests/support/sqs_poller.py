"""Does for a local queue what Lambda's SQS event source mapping does in AWS.

Receives a batch, hands it to a handler in the exact event shape Lambda uses, then deletes only
the messages that succeeded: everything not named in `batchItemFailures` (ReportBatchItemFailures).
If the handler raises, nothing is deleted and the whole batch comes back after the visibility
timeout, as in AWS. Redrive to a dead-letter queue is the queue's own business (RedrivePolicy).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support.lambda_context import LambdaContext

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True)
class PollResult:
    received: list[str] = field(default_factory=list)  # message ids
    deleted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    handler_error: BaseException | None = None


def _message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """ReceiveMessage's attribute shape -> the camelCase shape Lambda puts in the event."""
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
        context_factory: Callable[[], Any] = LambdaContext,
        region: str = "us-east-1",
    ) -> None:
        self._client = sqs_client
        self._queue_url = queue_url
        self._handler = handler
        self._batch_size = batch_size
        self._wait_time_s = wait_time_s
        self._context_factory = context_factory
        self._region = region
        self._queue_arn = sqs_client.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    def event_for(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {"Records": [self._record(message) for message in messages]}

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": dict(message.get("Attributes", {})),
            "messageAttributes": _message_attributes(message.get("MessageAttributes", {})),
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": self._region,
        }

    def receive(self) -> list[dict[str, Any]]:
        return self._client.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=self._wait_time_s,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])

    def poll_once(self) -> PollResult:
        """One receive and one invocation; an empty receive invokes nothing."""
        messages = self.receive()
        if not messages:
            return PollResult()
        received = [message["MessageId"] for message in messages]
        try:
            response = self._handler(self.event_for(messages), self._context_factory())
        except Exception as error:  # the invocation failed: the whole batch is retried
            return PollResult(received=received, failed=received, handler_error=error)
        failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
        succeeded = [message for message in messages if message["MessageId"] not in failed]
        for start in range(0, len(succeeded), 10):
            self._client.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(succeeded[start : start + 10])
                ],
            )
        return PollResult(
            received=received,
            deleted=[message["MessageId"] for message in succeeded],
            failed=[message_id for message_id in received if message_id in failed],
        )

    def drain(self, *, max_polls: int = 100) -> list[PollResult]:
        """Poll until a receive comes back empty (or `max_polls` invocations ran)."""
        results = []
        for _ in range(max_polls):
            result = self.poll_once()
            if not result.received:
                break
            results.append(result)
        return results
