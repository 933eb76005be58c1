"""One refresh run per window: a conditional PutItem that only the first caller wins.

EventBridge delivers at least once and Lambda retries a failed async invocation, so the same
window can start twice. The lock item expires through the table's TTL once nobody needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

LOCK_SORT_KEY = "LOCK"
DEFAULT_LOCK_TTL = timedelta(days=1)


def lock_partition_key(window: datetime) -> str:
    return f"RUN#{window.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"


class RunLock:
    """Claims a refresh window in the PortfolioTable (pk=RUN#<window>, sk=LOCK)."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        ttl: timedelta = DEFAULT_LOCK_TTL,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._table_name = table_name
        self._ttl = ttl
        self._clock = clock

    def acquire(self, window: datetime, owner: str) -> bool:
        """True if this caller now owns the window; False if another run already claimed it."""
        now = self._clock()
        try:
            self._client.put_item(
                TableName=self._table_name,
                Item={
                    "pk": {"S": lock_partition_key(window)},
                    "sk": {"S": LOCK_SORT_KEY},
                    "owner": {"S": owner},
                    "acquiredAt": {"S": now.isoformat()},
                    "expiresAt": {"N": str(int((now + self._ttl).timestamp()))},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def release(self, window: datetime, owner: str) -> None:
        """Give the window back after a failed run, so a retry of the same event can run it again.

        Only the owner's lock is removed; a lock another run holds is left alone.
        """
        try:
            self._client.delete_item(
                TableName=self._table_name,
                Key={"pk": {"S": lock_partition_key(window)}, "sk": {"S": LOCK_SORT_KEY}},
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def owner(self, window: datetime) -> str | None:
        """Who claimed the window, if anyone (for logs and tests)."""
        item = self._client.get_item(
            TableName=self._table_name,
            Key={"pk": {"S": lock_partition_key(window)}, "sk": {"S": LOCK_SORT_KEY}},
            ConsistentRead=True,
        ).get("Item")
        return item["owner"]["S"] if item else None
