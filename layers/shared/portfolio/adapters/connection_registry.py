"""The open WebSocket connections of each user: DynamoDB holds them, Redis says who has any.

- DynamoDB, the record: one item per connection in the user's own partition, pk="USER#<userId>",
  sk="CONN#<connectionId>", with `connectedAt` and `expiresAt` (the table's TTL attribute). API
  Gateway closes every connection after two hours, so an item whose $disconnect never came (API
  Gateway does not promise one) expires by itself; until DynamoDB's TTL sweep gets to it, the
  Query leaves it out. Listing a user's connections is one Query of the user's partition.
- Redis, the index: `live-connections:{<userId>}`, a set of the user's connection ids with the same
  lifetime. A refresh asks for every user it values, nearly all with no connection: one SCARD
  answers them, and only a user with connections costs the Query. Redis being down or unset means
  the Query is asked instead. A connection whose id the index lost (a Redis failover) is added
  again by its next ping.
- `live-pushed:{<userId>}`: what the connections were last told (PushedFigures), so an unchanged
  refresh pushes nothing and the next update measures its change from it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from portfolio.adapters.dynamodb.items import user_partition_key
from portfolio.adapters.redis_connection import REDIS_FAILURES
from portfolio.observability import logger
from portfolio.services.ports import PushedFigures

CONNECTION_PREFIX = "CONN#"
# The table's TimeToLiveSpecification attribute (template.yaml).
TTL_ATTRIBUTE = "expiresAt"
# API Gateway ends every WebSocket connection after 2 hours; the margin covers clock differences.
CONNECTION_TTL_S = 2 * 3600 + 15 * 60
CONNECTIONS_KEY_PREFIX = "live-connections:"
PUSHED_KEY_PREFIX = "live-pushed:"


def connection_key(user_id: str, connection_id: str) -> dict[str, Any]:
    return {"pk": {"S": user_partition_key(user_id)}, "sk": {"S": f"{CONNECTION_PREFIX}{connection_id}"}}


def connections_key(user_id: str) -> str:
    # The braces are a cluster hash tag: one user's keys share a slot. User ids hold no braces.
    return f"{CONNECTIONS_KEY_PREFIX}{{{user_id}}}"


def pushed_key(user_id: str) -> str:
    return f"{PUSHED_KEY_PREFIX}{{{user_id}}}"


class DynamoConnectionRegistry:
    def __init__(
        self,
        dynamodb_client: Any,
        table_name: str,
        redis_client: Any | None,
        *,
        ttl_s: int = CONNECTION_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._dynamodb = dynamodb_client
        self._table = table_name
        self._redis = redis_client
        self._ttl_s = ttl_s
        self._clock = clock

    def add(self, user_id: str, connection_id: str) -> None:
        """Raises the store's error: a connection that cannot be recorded is refused."""
        now = int(self._clock())
        self._dynamodb.put_item(
            TableName=self._table,
            Item={
                **connection_key(user_id, connection_id),
                "connectionId": {"S": connection_id},
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
        if self._index_says_none(user_id):
            return []
        now = int(self._clock())
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :conn)",
            "FilterExpression": "#expires > :now",
            "ExpressionAttributeNames": {"#expires": TTL_ATTRIBUTE},
            "ProjectionExpression": "connectionId",
            "ExpressionAttributeValues": {
                ":pk": {"S": user_partition_key(user_id)},
                ":conn": {"S": CONNECTION_PREFIX},
                ":now": {"N": str(now)},
            },
            # A connection recorded a moment ago must be found by the write that follows it.
            "ConsistentRead": True,
        }
        connections: list[str] = []
        while True:
            response = self._dynamodb.query(**arguments)
            connections.extend(item["connectionId"]["S"] for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return connections
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def last_pushed(self, user_id: str) -> PushedFigures | None:
        if self._redis is None:
            return None
        try:
            raw = self._redis.get(pushed_key(user_id))
        except REDIS_FAILURES as error:
            logger.debug("last pushed figures not read", extra={"error": type(error).__name__})
            return None
        return None if raw is None else _figures_from_json(raw)

    def remember_pushed(self, user_id: str, figures: PushedFigures) -> None:
        if self._redis is None:
            return
        value = json.dumps(
            {
                "totalValueUsd": str(figures.total_value_usd),
                "totalPnlUsd": str(figures.total_pnl_usd),
                "stalePriceCount": figures.stale_price_count,
            }
        )
        try:
            self._redis.set(pushed_key(user_id), value, ex=self._ttl_s)
        except REDIS_FAILURES as error:
            logger.debug("pushed figures not kept", extra={"error": type(error).__name__})

    # The Redis index ---------------------------------------------------------------------------------

    def _index_says_none(self, user_id: str) -> bool:
        """True only when Redis answers that the user has no connection."""
        if self._redis is None:
            return False
        try:
            return int(self._redis.scard(connections_key(user_id))) == 0
        except REDIS_FAILURES as error:
            logger.debug("connection index not read", extra={"error": type(error).__name__})
            return False

    def _index_add(self, user_id: str, connection_id: str) -> None:
        if self._redis is None:
            return
        key = connections_key(user_id)
        try:
            self._redis.sadd(key, connection_id)
            self._redis.expire(key, self._ttl_s)
        except REDIS_FAILURES as error:
            # The user's pushes wait for the next ping to add it again; the record is in DynamoDB.
            logger.warning("connection not indexed", extra={"user_id": user_id, "error": type(error).__name__})

    def _index_remove(self, user_id: str, connection_id: str) -> None:
        if self._redis is None:
            return
        try:
            self._redis.srem(connections_key(user_id), connection_id)
        except REDIS_FAILURES as error:  # the id stays listed: its user's pushes Query and find it gone
            logger.debug("connection not unindexed", extra={"error": type(error).__name__})


def _figures_from_json(raw: bytes | str) -> PushedFigures | None:
    try:
        stored = json.loads(raw)
        return PushedFigures(
            total_value_usd=Decimal(stored["totalValueUsd"]),
            total_pnl_usd=Decimal(stored["totalPnlUsd"]),
            stale_price_count=int(stored["stalePriceCount"]),
        )
    except (ValueError, KeyError, TypeError, InvalidOperation):
        return None
