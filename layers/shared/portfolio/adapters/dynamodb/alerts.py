"""Users' alert rules in the PortfolioTable, and the listing of who has any.

Items:
- pk="USER#<userId>", sk="ALERTS": every rule of the user with its state (`rules`, a JSON document:
  a few hundred bytes a rule, 20 rules by default), `version` (a Number, checked by every write, so the
  API editing rules and a refresh recording a firing never overwrite each other) and `userId`. One
  item, so a refresh reads the rules of a whole message with one BatchGetItem. The table's stream
  carries it, but the cache invalidator's filter (sk = PROFILE) keeps it out: rules change no view.
- pk="ALERTING#<0-3>", sk="<userId>": the user has at least one rule. The scheduler Queries these few
  partitions every cycle to queue users with rules even when they read nothing lately. Written in the
  same transaction as the rules item when a user's first rule is created, deleted with the last one, so
  the listing and the rules never disagree; a refresh recording a firing changes neither.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import batched
from typing import Any

from botocore.exceptions import ClientError
from pydantic import TypeAdapter

from portfolio.adapters.dynamodb.items import USER_PREFIX, user_partition_key, version_condition
from portfolio.adapters.dynamodb_client import StoreErrorsTranslated
from portfolio.adapters.retry import RetryPolicy
from portfolio.domain.alerts import AlertRule
from portfolio.domain.errors import VersionConflict
from portfolio.services.ports import StoredAlerts

ALERTS_SK = "ALERTS"
ALERTING_PREFIX = "ALERTING#"
ALERTING_SHARDS = 4
MAX_BATCH_GET_KEYS = 100

_RULES = TypeAdapter(tuple[AlertRule, ...])


class UnprocessedAlertKeysError(Exception):
    """BatchGetItem still left keys unprocessed after every attempt."""


def alerts_key(user_id: str) -> dict[str, Any]:
    return {"pk": {"S": user_partition_key(user_id)}, "sk": {"S": ALERTS_SK}}


def alerting_key(user_id: str) -> dict[str, Any]:
    shard = int.from_bytes(hashlib.sha256(user_id.encode()).digest()[:8], "big") % ALERTING_SHARDS
    return {"pk": {"S": f"{ALERTING_PREFIX}{shard}"}, "sk": {"S": user_id}}


def rules_document(rules: Sequence[AlertRule]) -> str:
    return _RULES.dump_json(tuple(rules), by_alias=True).decode()


def stored_from_item(item: dict[str, Any]) -> StoredAlerts:
    return StoredAlerts(
        user_id=item["pk"]["S"].removeprefix(USER_PREFIX),
        rules=_RULES.validate_json(item["rules"]["S"]),
        version=int(item["version"]["N"]),
    )


class AlertStore:
    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        batch_max_attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = StoreErrorsTranslated(client)
        self._table_name = table_name
        self._batch_retry = RetryPolicy(batch_max_attempts, 0.05, 1.0, sleep=sleep)

    def load_rules(self, user_id: str) -> StoredAlerts:
        item = self._client.get_item(TableName=self._table_name, Key=alerts_key(user_id), ConsistentRead=True).get(
            "Item"
        )
        return StoredAlerts(user_id=user_id) if item is None else stored_from_item(item)

    def load_many(self, user_ids: Iterable[str]) -> dict[str, StoredAlerts]:
        found: dict[str, StoredAlerts] = {}
        for chunk in batched(dict.fromkeys(user_ids), MAX_BATCH_GET_KEYS):
            for item in self._batch_get([alerts_key(user_id) for user_id in chunk]):
                stored = stored_from_item(item)
                found[stored.user_id] = stored
        return found

    def save(self, stored: StoredAlerts, rules: Sequence[AlertRule]) -> StoredAlerts:
        version = stored.version + 1
        item = {
            **alerts_key(stored.user_id),
            "userId": {"S": stored.user_id},
            "version": {"N": str(version)},
            "rules": {"S": rules_document(rules)},
        }
        put = {"TableName": self._table_name, "Item": item, **version_condition(stored.version)}
        listed_before, listed_after = bool(stored.rules), bool(rules)
        try:
            if listed_before == listed_after:
                self._client.put_item(**put)
            else:
                listing: dict[str, Any] = (
                    {"Put": {"TableName": self._table_name, "Item": alerting_key(stored.user_id)}}
                    if listed_after
                    else {"Delete": {"TableName": self._table_name, "Key": alerting_key(stored.user_id)}}
                )
                self._client.transact_write_items(TransactItems=[{"Put": put}, listing])
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code in ("ConditionalCheckFailedException", "TransactionCanceledException"):
                raise VersionConflict(stored.user_id, stored.version) from error
            raise
        return StoredAlerts(user_id=stored.user_id, rules=tuple(rules), version=version)

    def iter_alerting_users(self, page_size: int = 1000) -> Iterator[list[str]]:
        for shard in range(ALERTING_SHARDS):
            arguments: dict[str, Any] = {
                "TableName": self._table_name,
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": f"{ALERTING_PREFIX}{shard}"}},
                "ProjectionExpression": "sk",
                "Limit": page_size,
            }
            while True:
                response = self._client.query(**arguments)
                users = [item["sk"]["S"] for item in response.get("Items", [])]
                if users:
                    yield users
                if "LastEvaluatedKey" not in response:
                    break
                arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _batch_get(self, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
        pending: dict[str, Any] = {
            self._table_name: {
                "Keys": keys,
                "ProjectionExpression": "pk, #version, #rules",
                "ExpressionAttributeNames": {"#version": "version", "#rules": "rules"},
            }
        }
        items: list[dict[str, Any]] = []
        for _ in self._batch_retry.attempts():
            response = self._client.batch_get_item(RequestItems=pending)
            items.extend(response.get("Responses", {}).get(self._table_name, []))
            pending = response.get("UnprocessedKeys") or {}
            if not pending:
                return items
        raise UnprocessedAlertKeysError(f"{len(pending[self._table_name]['Keys'])} alert item(s) still unprocessed")
