"""The open WebSocket connections of each user: DynamoDB holds them, Redis says who has any.

- DynamoDB, the record: one item per connection in a partition of the user's connections,
  pk="CONN#<userId>", sk="<connectionId>", with `connectedAt` and `expiresAt` (the table's TTL
  attribute). The partition is not the user's own (USER#<userId>): IAM can only scope a grant by
  partition key, and the functions that put and delete connection items must never be able to touch
  a portfolio item or a transaction. API Gateway closes every connection after two hours, so an item
  whose $disconnect never came (API Gateway does not promise one) expires by itself; until DynamoDB's
  TTL sweep gets to it, the Query leaves it out. Listing a user's connections is one Query of that
  partition, and never lists more than `max_connections` of them (one push addresses no more).
- Redis, the index: `live-connections:{<userId>}`, a set of the user's connection ids with the same
  lifetime, plus the member INDEXED once the set is known to hold every connection the user has.
  A refresh asks for every user it values, nearly all with no connection: one SRANDMEMBER answers
  them. Only the set {INDEXED} means "none"; a missing key (never indexed, evicted, lost by a Redis
  failover or restart, or a $connect whose index write failed on a Redis that came back empty) is
  "not known", and so is a set without INDEXED (started by a $connect or ping on a missing key): the
  Query answers and the set is filled from it, with INDEXED, so the next ask is one Redis call again.
  Redis down or unset means the Query is asked every time. What is left: a $connect whose index
  write failed on a Redis that kept an {INDEXED} set for the user; the connection's next ping adds it
  (clients must send within API Gateway's 10-minute idle timeout anyway).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum
from typing import Any

from portfolio.adapters.dynamodb.items import connections_partition_key
from portfolio.adapters.redis_connection import REDIS_FAILURES
from portfolio.observability import logger

# The table's TimeToLiveSpecification attribute (template.yaml).
TTL_ATTRIBUTE = "expiresAt"
# API Gateway ends every WebSocket connection after 2 hours; the margin covers clock differences.
CONNECTION_TTL_S = 2 * 3600 + 15 * 60
CONNECTIONS_KEY_PREFIX = "live-connections:"
# The index member that says the set lists every connection of the user. API Gateway's connection
# ids are base64 text: never "*".
INDEXED = "*"
# The region whose WebSocket API holds the connection.
REGION_ATTRIBUTE = "region"
DEFAULT_MAX_CONNECTIONS = 10


class _Index(Enum):
    NONE = "no connection"
    SOME = "some connection"
    NOT_KNOWN = "not known: the key is missing or incomplete"
    UNREADABLE = "Redis failed or is unset"


def connection_key(user_id: str, connection_id: str) -> dict[str, Any]:
    return {"pk": {"S": connections_partition_key(user_id)}, "sk": {"S": connection_id}}


def connections_key(user_id: str) -> str:
    # The braces are a cluster hash tag: one user's keys share a slot. User ids hold no braces.
    return f"{CONNECTIONS_KEY_PREFIX}{{{user_id}}}"


class DynamoConnectionRegistry:
    def __init__(
        self,
        dynamodb_client: Any,
        table_name: str,
        redis_client: Any | None,
        *,
        region: str,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        ttl_s: int = CONNECTION_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._dynamodb = dynamodb_client
        self._table = table_name
        self._redis = redis_client
        # The table is global: the other regions' connections are replicated here too, and this
        # region's management API knows none of them (it would answer 410, and the push delete them).
        self._region = region
        self._max_connections = max_connections
        self._ttl_s = ttl_s
        self._clock = clock

    def add(self, user_id: str, connection_id: str) -> None:
        """Raises the store's error: a connection that cannot be recorded is refused. Redis failing
        does not: the connection is on record, and the index is read as "not known" once it is back."""
        now = int(self._clock())
        self._dynamodb.put_item(
            TableName=self._table,
            Item={
                **connection_key(user_id, connection_id),
                "connectionId": {"S": connection_id},
                REGION_ATTRIBUTE: {"S": self._region},
                "connectedAt": {"N": str(now)},
                TTL_ATTRIBUTE: {"N": str(now + self._ttl_s)},
            },
        )
        self._index_add(user_id, connection_id)

    def remove(self, user_id: str, connection_id: str) -> None:
        """Raises the store's error (the item then expires by itself)."""
        self._index_remove(user_id, connection_id)
        self._dynamodb.delete_item(TableName=self._table, Key=connection_key(user_id, connection_id))

    def keep_alive(self, user_id: str, connection_id: str) -> None:
        self._index_add(user_id, connection_id)

    def connections_of(self, user_id: str) -> list[str]:
        """At most `max_connections` of the user's open connections."""
        index = self._index_of(user_id)
        if index is _Index.NONE:
            return []
        connections = self._query(user_id)
        if index is _Index.NOT_KNOWN:
            self._index_fill(user_id, connections)
        return connections

    def open_count(self, user_id: str) -> int:
        """How many open connections the record holds for the user, counted up to `max_connections`
        (DynamoDB's word, not the index's: this decides whether one more is allowed)."""
        return len(self._query(user_id))

    # The record --------------------------------------------------------------------------------------

    def _query(self, user_id: str) -> list[str]:
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            # Items recorded before connections carried their region count as this region's.
            "FilterExpression": "#expires > :now AND (#region = :region OR attribute_not_exists(#region))",
            "ExpressionAttributeNames": {"#expires": TTL_ATTRIBUTE, "#region": REGION_ATTRIBUTE},
            "ProjectionExpression": "connectionId",
            "ExpressionAttributeValues": {
                ":pk": {"S": connections_partition_key(user_id)},
                ":now": {"N": str(int(self._clock()))},
                ":region": {"S": self._region},
            },
            # Items read per page: a partition full of connections is never read whole.
            "Limit": self._max_connections,
            # A connection recorded a moment ago must be found by the write that follows it.
            "ConsistentRead": True,
        }
        connections: list[str] = []
        while len(connections) < self._max_connections:
            response = self._dynamodb.query(**arguments)
            connections.extend(item["connectionId"]["S"] for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return connections[: self._max_connections]

    # The Redis index ---------------------------------------------------------------------------------

    def _index_of(self, user_id: str) -> _Index:
        if self._redis is None:
            return _Index.UNREADABLE
        try:
            members = {_text(member) for member in self._redis.srandmember(connections_key(user_id), 2)}
        except REDIS_FAILURES as error:
            logger.debug("connection index not read", extra={"error": type(error).__name__})
            return _Index.UNREADABLE
        if INDEXED not in members:
            return _Index.NOT_KNOWN
        return _Index.NONE if members == {INDEXED} else _Index.SOME

    def _index_fill(self, user_id: str, connections: list[str]) -> None:
        """Adds, never replaces: a $connect that lands meanwhile keeps its id in the set."""
        if self._redis is None:
            return
        key = connections_key(user_id)
        try:
            self._redis.sadd(key, INDEXED, *connections)
            self._redis.expire(key, self._ttl_s)
        except REDIS_FAILURES as error:
            logger.debug("connection index not filled", extra={"error": type(error).__name__})

    def _index_add(self, user_id: str, connection_id: str) -> None:
        if self._redis is None:
            return
        key = connections_key(user_id)
        try:
            self._redis.sadd(key, connection_id)
            self._redis.expire(key, self._ttl_s)
        except REDIS_FAILURES as error:
            # On record in DynamoDB: a Redis that lost the key reads "not known" and the Query finds it.
            logger.warning("connection not indexed", extra={"user_id": user_id, "error": type(error).__name__})

    def _index_remove(self, user_id: str, connection_id: str) -> None:
        if self._redis is None:
            return
        try:
            self._redis.srem(connections_key(user_id), connection_id)
        except REDIS_FAILURES as error:  # the id stays listed: its user's pushes Query and find it gone
            logger.debug("connection not unindexed", extra={"error": type(error).__name__})


def _text(member: bytes | str) -> str:
    return member.decode() if isinstance(member, bytes) else member
