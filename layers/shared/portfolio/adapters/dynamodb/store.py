"""The portfolio store: one DynamoDB partition per user; a portfolio is read as ONE item.

Reads, pages of transactions and the all-or-nothing commit over the items of `items.py`; batch
calls retry what DynamoDB leaves unprocessed, under the adapters' retry policy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from itertools import batched
from typing import Any

from botocore.exceptions import ClientError

from portfolio.adapters.cursor import CursorCodec, SigningKey
from portfolio.adapters.dynamodb import listing as listings
from portfolio.adapters.dynamodb.items import (
    HELD_TOKEN_SHARDS,
    HELD_TOKENS_PREFIX,
    TRANSACTION_PREFIX,
    USER_PREFIX,
    USERS_BY_SHARD,
    VALUATION_PROJECTION,
    UnreadableItemError,
    held_token_key,
    portfolio_from_item,
    profile_key,
    record_item,
    transaction_from_item,
    transaction_item,
    transaction_key,
    user_partition_key,
    version_condition,
)
from portfolio.adapters.dynamodb_client import StoreErrorsTranslated
from portfolio.adapters.retry import RetryPolicy
from portfolio.domain.errors import (
    InvalidInputError,
    TransactionNotFound,
    TransactionsExist,
    VersionConflict,
)
from portfolio.domain.stored_portfolio import StoredPortfolio
from portfolio.domain.transactions import Transaction
from portfolio.observability import logger
from portfolio.services.ports import StoreBusyError, TransactionListing

# TransactWriteItems takes at most 100 actions: transactions, holder counts and the portfolio item.
MAX_ACTIONS_PER_COMMIT = 100
MAX_BATCH_GET_KEYS = 100


class UnprocessedRequestsError(Exception):
    """A batch call still left items or keys unprocessed after every attempt."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} item(s) still unprocessed after retries")
        self.count = count


class PortfolioStore:
    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        cursor_signing_key: SigningKey,
        previous_cursor_key: Callable[[], str | bytes | None] | None = None,
        shards: int,
        batch_max_attempts: int = 8,
        backoff_base_s: float = 0.1,
        backoff_cap_s: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if shards < 1:
            raise ValueError("shards must be at least 1")
        self._client = StoreErrorsTranslated(client)
        self._table_name = table_name
        self._cursors = CursorCodec(cursor_signing_key, previous_key=previous_cursor_key)
        self._shards = shards
        # Jittered: spreads the retries of many concurrent readers apart.
        self._batch_retry = RetryPolicy(batch_max_attempts, backoff_base_s, backoff_cap_s, sleep=sleep)

    # Reads -------------------------------------------------------------------------------------

    def load_portfolio(self, user_id: str, *, consistent_read: bool = False, lots: bool = True) -> StoredPortfolio:
        """The portfolio item: record and positions, with one GetItem. A user with nothing stored
        gets an empty portfolio at version 0. Writers that retry after a VersionConflict, and reads
        that fill the cache, should read with consistent_read=True. `lots=False` reads the positions
        for valuation only: the lots are neither fetched nor parsed."""
        arguments: dict[str, Any] = {"TableName": self._table_name, "Key": profile_key(user_id)}
        if not lots:
            arguments |= VALUATION_PROJECTION
        item = self._client.get_item(**arguments, ConsistentRead=consistent_read).get("Item")
        return StoredPortfolio.new(user_id) if item is None else portfolio_from_item(item, with_lots=lots)

    def load_portfolios(self, user_ids: Iterable[str]) -> dict[str, StoredPortfolio | UnreadableItemError]:
        """Many users' portfolio items, 100 keys a BatchGetItem, unprocessed keys retried with backoff.

        Users with nothing stored are absent; an item that does not decode stands as the error, so
        that only its user fails. Eventually consistent: a refresh values what it reads and writes
        nothing back, and cache warms are guarded by the version it read. For valuation only: the
        lots are neither fetched nor parsed.
        """
        unique = list(dict.fromkeys(user_ids))
        found: dict[str, StoredPortfolio | UnreadableItemError] = {}
        for chunk in batched(unique, MAX_BATCH_GET_KEYS):
            for item in self._batch_get([profile_key(user_id) for user_id in chunk], **VALUATION_PROJECTION):
                user_id = item["pk"]["S"].removeprefix(USER_PREFIX)
                try:
                    found[user_id] = portfolio_from_item(item, with_lots=False)
                except (KeyError, ValueError, TypeError) as error:
                    found[user_id] = UnreadableItemError(f"portfolio item of {user_id} does not decode: {error!r}")
        return found

    def load_history(self, user_id: str, *, consistent_read: bool = False) -> tuple[Transaction, ...]:
        """Every transaction of the user, in replay order (one Query; more pages past 1 MB)."""
        items = self._query_all(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :tx)",
            ExpressionAttributeValues={":pk": {"S": user_partition_key(user_id)}, ":tx": {"S": TRANSACTION_PREFIX}},
            ConsistentRead=consistent_read,
        )
        return tuple(sorted((transaction_from_item(item) for item in items), key=lambda tx: tx.sort_key))

    def get_transactions(self, user_id: str, transaction_ids: Iterable[str]) -> dict[str, Transaction]:
        """The stored transactions among these ids (strongly consistent), by id."""
        keys = [transaction_key(user_id, transaction_id) for transaction_id in dict.fromkeys(transaction_ids)]
        found: dict[str, Transaction] = {}
        for chunk in batched(keys, MAX_BATCH_GET_KEYS):
            for item in self._batch_get(list(chunk), consistent_read=True):
                transaction = transaction_from_item(item)
                found[transaction.id] = transaction
        return found

    def held_tokens(self) -> list[str]:
        """Every token (chain:address) that at least one user holds, from the holder counts."""
        holders: dict[str, int] = {}
        for shard in range(HELD_TOKEN_SHARDS):
            for item in self._query_all(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"{HELD_TOKENS_PREFIX}{shard}"}},
            ):
                token_key = item["sk"]["S"].rsplit("#", 1)[0]
                holders[token_key] = holders.get(token_key, 0) + int(item["holders"]["N"])
        return sorted(token_key for token_key, count in holders.items() if count > 0)

    def list_transactions(self, user_id: str, listing: TransactionListing) -> tuple[list[Transaction], str | None]:
        """One page, newest first, and the cursor of the next page (None on the last page).

        Pages are full: reading continues until `listing.limit` transactions match or the partition
        ends, and a page is never followed by an empty one. A cursor issued for another user or other
        filters raises InvalidCursorError.
        """
        limit = listing.limit
        scope = listings.cursor_scope(user_id, listing)
        arguments = listings.query_arguments(user_id, listing) | {"TableName": self._table_name}
        start_key: dict[str, Any] | None = None
        if listing.cursor is not None:
            start_key = listings.start_key(user_id, self._cursors.decode(listing.cursor, scope=scope))

        # One match beyond the page tells whether a next page exists.
        matches: list[dict[str, Any]] = []
        while len(matches) <= limit:
            page_arguments = arguments | {"Limit": listings.read_size(listing, limit + 1 - len(matches))}
            if start_key is not None:
                page_arguments["ExclusiveStartKey"] = start_key
            response = self._client.query(**page_arguments)
            matches.extend(response.get("Items", []))
            start_key = response.get("LastEvaluatedKey")
            if start_key is None:
                break

        page = matches[:limit]
        next_cursor = None
        if len(matches) > limit:
            next_cursor = self._cursors.encode(listings.cursor_position(page[-1]), scope=scope)
        return [transaction_from_item(item) for item in page], next_cursor

    @property
    def shard_count(self) -> int:
        return self._shards

    def iter_user_ids(self, page_size: int = 1000, *, shards: Iterable[int] | None = None) -> Iterator[list[str]]:
        """Every user once (of the given index shards, or all), a page at a time, through the sparse
        UsersByShard index (one key per user).

        The shard count may grow (users keep their old shard, still below the new count) but must
        not shrink, or the users of the dropped shards would no longer be listed.
        """
        for shard in range(self._shards) if shards is None else shards:
            start_key: dict[str, Any] | None = None
            while True:
                arguments: dict[str, Any] = {
                    "TableName": self._table_name,
                    "IndexName": USERS_BY_SHARD,
                    "KeyConditionExpression": "userShard = :shard",
                    "ExpressionAttributeValues": {":shard": {"S": str(shard)}},
                    "Limit": page_size,
                }
                if start_key is not None:
                    arguments["ExclusiveStartKey"] = start_key
                response = self._client.query(**arguments)
                user_ids = [item["userId"]["S"] for item in response.get("Items", [])]
                if user_ids:
                    yield user_ids
                start_key = response.get("LastEvaluatedKey")
                if start_key is None:
                    break

    # Writes ------------------------------------------------------------------------------------

    def commit(
        self,
        portfolio: StoredPortfolio,
        *,
        expected_version: int,
        put_transactions: Sequence[Transaction] = (),
        delete_transaction_ids: Sequence[str] = (),
        holder_changes: Mapping[str, int] | None = None,
    ) -> StoredPortfolio:
        """Store new transactions, delete others, adjust holder counts and replace the portfolio item
        (record and positions), all or nothing, if the portfolio is still at `expected_version`.
        Returns the portfolio as stored (its new version).

        Raises VersionConflict, TransactionsExist (nothing is overwritten) or TransactionNotFound.
        One DynamoDB transaction holds at most 100 actions; a larger change is refused with
        ValueError (the recorder plans imports in steps that fit).
        """
        user_id = portfolio.user_id
        put_ids = [transaction.id for transaction in put_transactions]
        if len(set(put_ids)) != len(put_ids):
            raise InvalidInputError("the same transaction id appears more than once", field="transactions")
        if len(set(delete_transaction_ids)) != len(delete_transaction_ids) or set(put_ids) & set(
            delete_transaction_ids
        ):
            raise InvalidInputError("a transaction id is changed twice in one commit", field="transactions")
        changes: list[tuple[str, str, dict[str, Any]]] = [
            ("delete", transaction_id, self._delete_action(user_id, transaction_id))
            for transaction_id in delete_transaction_ids
        ] + [("put", transaction.id, self._put_action(user_id, transaction)) for transaction in put_transactions]
        changes += [
            ("holders", token_key, self._holders_action(token_key, user_id, delta))
            for token_key, delta in sorted((holder_changes or {}).items())
            if delta
        ]
        if len(changes) + 1 > MAX_ACTIONS_PER_COMMIT:
            raise ValueError(f"{len(changes) + 1} actions do not fit in one DynamoDB transaction")
        item = record_item(portfolio, version=expected_version + 1, shards=self._shards)
        record_action = {"Put": {"TableName": self._table_name, "Item": item, **version_condition(expected_version)}}
        try:
            self._client.transact_write_items(TransactItems=[action for _, _, action in changes] + [record_action])
        except ClientError as error:
            refused = _commit_error(error, user_id, expected_version, changes)
            # A retry after an attempt whose answer was lost meets its own write: that is a success.
            if not (isinstance(refused, VersionConflict) and self._landed(user_id, item["writeId"]["S"])):
                raise refused from error
        stored = portfolio.record.model_copy(update={"version": expected_version + 1})
        return replace(portfolio, record=stored, holders_counted=True)

    # Helpers -----------------------------------------------------------------------------------

    def _query_all(self, **arguments: Any) -> list[dict[str, Any]]:
        """Every item of a Query; more than one call only when the result exceeds 1 MB."""
        items: list[dict[str, Any]] = []
        arguments["TableName"] = self._table_name
        while True:
            response = self._client.query(**arguments)
            items.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return items
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _batch_get(
        self, keys: list[dict[str, Any]], *, consistent_read: bool = False, **projection: Any
    ) -> list[dict[str, Any]]:
        pending: dict[str, Any] = {self._table_name: {"Keys": keys, "ConsistentRead": consistent_read, **projection}}
        items: list[dict[str, Any]] = []
        for attempt in self._batch_retry.attempts():
            if attempt > 1:
                logger.info("retrying unprocessed keys", extra={"attempt": attempt})
            response = self._client.batch_get_item(RequestItems=pending)
            items.extend(response.get("Responses", {}).get(self._table_name, []))
            pending = response.get("UnprocessedKeys") or {}
            if not pending:
                return items
        raise UnprocessedRequestsError(len(pending.get(self._table_name, {}).get("Keys", [])))

    def _landed(self, user_id: str, write_id: str) -> bool:
        stored = self._client.get_item(
            TableName=self._table_name, Key=profile_key(user_id), ConsistentRead=True, ProjectionExpression="writeId"
        ).get("Item", {})
        return stored.get("writeId", {}).get("S") == write_id

    def _holders_action(self, token_key: str, user_id: str, delta: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self._table_name,
                "Key": held_token_key(token_key, user_id),
                "UpdateExpression": "ADD holders :delta",
                "ExpressionAttributeValues": {":delta": {"N": str(delta)}},
            }
        }

    def _put_action(self, user_id: str, transaction: Transaction) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self._table_name,
                "Item": transaction_item(user_id, transaction),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _delete_action(self, user_id: str, transaction_id: str) -> dict[str, Any]:
        return {
            "Delete": {
                "TableName": self._table_name,
                "Key": transaction_key(user_id, transaction_id),
                "ConditionExpression": "attribute_exists(pk)",
            }
        }


def _commit_error(
    error: ClientError, user_id: str, version: int, changes: Sequence[tuple[str, str, dict[str, Any]]]
) -> Exception:
    """The domain error a cancelled transaction stands for, or the original error."""
    if _error_code(error) != "TransactionCanceledException":
        return error
    reasons = [str(reason.get("Code", "None")) for reason in error.response.get("CancellationReasons", [])]
    if len(reasons) != len(changes) + 1:
        return error
    *change_reasons, record_reason = reasons
    # A version mismatch comes first: after re-reading, the other failures may look different.
    raced = "TransactionConflict" in (record_reason, *change_reasons)
    if raced or record_reason == "ConditionalCheckFailed":
        return VersionConflict(user_id, version)
    failed = [
        (kind, key)
        for (kind, key, _), reason in zip(changes, change_reasons, strict=True)
        if reason == "ConditionalCheckFailed"
    ]
    existing = [key for kind, key in failed if kind == "put"]
    if existing:
        return TransactionsExist(existing)
    missing = [key for kind, key in failed if kind == "delete"]
    if missing:
        return TransactionNotFound(missing[0])
    if "ThrottlingError" in reasons:
        return StoreBusyError("DynamoDB throttled a transaction past the client's retries")
    return error


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))
