"""The portfolio store: one DynamoDB partition per user; a portfolio is read as ONE item.

Item layout in the PortfolioTable (other modules rely on it):

- pk="USER#<userId>", sk="PROFILE": the PortfolioRecord (version as a Number), the user's positions
  (`positions`, binary, positions_codec) plus userId and userShard, which feed the sparse
  UsersByShard index (KEYS_ONLY: enumerating users reads one small key per user); writeId, unique
  per write, lets a retried conditional write recognise that it already landed. Prices are not
  stored here: views are valued at read time.
- pk="USER#<userId>", sk="TX#<transactionId>", txSort="<UTC timestamp, fixed width>#<transactionId>":
  one transaction; the TransactionsByTime index pages them newest first. The history is read only
  to rebuild positions (a backdated write, a deletion, another cost-basis method) and for the
  performance view.
- pk="TOKENS#<shard>", sk="<chain:address>#<slot>": how many users hold the token (`holders`,
  a Number), counted in the same transaction that changes a user's positions. The price sweep
  reads these few partitions to know every held token without looking at a user. A token's count
  is spread over HOLDER_SLOTS items (the user's hash picks one), so users who start holding the same
  token at the same moment seldom touch the same item.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from itertools import batched
from typing import Any, NamedTuple

from botocore.exceptions import ClientError

from portfolio.adapters.cursor import CursorCodec, InvalidCursorError
from portfolio.adapters.dynamodb_client import ThrottlingTranslated
from portfolio.adapters.positions_codec import UnreadablePositionsError, decode_positions, encode_positions
from portfolio.domain.errors import (
    InvalidInputError,
    PortfolioLimitError,
    StoreConflict,
    TransactionNotFound,
    TransactionsExist,
    VersionConflict,
)
from portfolio.domain.portfolio_record import PortfolioRecord
from portfolio.domain.stored_portfolio import StoredPortfolio
from portfolio.domain.tokens import TokenId, normalize_chain
from portfolio.domain.transactions import Transaction, TransactionType
from portfolio.observability import logger

__all__ = [
    "InvalidCursorError",
    "PortfolioStore",
    "StoreConflict",
    "TransactionNotFound",
    "TransactionsExist",
    "UnprocessedRequestsError",
    "VersionConflict",
    "user_shard",
]

PROFILE_SK = "PROFILE"
TRANSACTION_PREFIX = "TX#"
HELD_TOKENS_PREFIX = "TOKENS#"
TRANSACTIONS_BY_TIME = "TransactionsByTime"
USERS_BY_SHARD = "UsersByShard"

# TransactWriteItems takes at most 100 actions: transactions, holder counts and the portfolio item.
MAX_ACTIONS_PER_COMMIT = 100
MAX_BATCH_GET_KEYS = 100
# DynamoDB's item limit is 400 KB; the rest of the portfolio item needs far less than the margin.
MAX_POSITIONS_BYTES = 380_000
HELD_TOKEN_SHARDS = 4
HOLDER_SLOTS = 8
# A filtered page reads ahead, because most of what it reads may not match.
FILTERED_READ_AHEAD = 4
MAX_ITEMS_PER_READ = 1000



# Errors ----------------------------------------------------------------------------------------


class UnreadableItemError(Exception):
    """A stored item no longer decodes (damaged, or written in a format this code does not know)."""


class UnprocessedRequestsError(Exception):
    """A batch call still left items or keys unprocessed after every attempt."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} item(s) still unprocessed after retries")
        self.count = count


# Keys and encodings ----------------------------------------------------------------------------


USER_PREFIX = "USER#"


def user_partition_key(user_id: str) -> str:
    return f"{USER_PREFIX}{user_id}"


def user_shard(user_id: str, shards: int) -> str:
    """Stable across processes and runs (unlike hash()): the same user always lands in the same shard."""
    digest = hashlib.sha256(user_id.encode()).digest()
    return str(int.from_bytes(digest[:8], "big") % shards)


def _utc(moment: datetime, *, field: str) -> datetime:
    if moment.tzinfo is None:
        raise InvalidInputError("must carry a time zone, e.g. 2024-05-01T12:00:00Z", field=field)
    return moment.astimezone(UTC)


def _sortable_time(moment: datetime, *, field: str = "timestamp") -> str:
    """Fixed width, so that text order is time order: 2024-05-01T12:00:00.000000Z."""
    moment = _utc(moment, field=field)
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}.{moment.microsecond:06d}Z"


def transaction_sort_key(transaction: Transaction) -> str:
    return f"{_sortable_time(transaction.timestamp)}#{transaction.id}"


def _attribute(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    raise TypeError(f"no DynamoDB mapping for {type(value).__name__}")


def _plain(attribute: dict[str, Any]) -> Any:
    if "S" in attribute:
        return attribute["S"]
    if "N" in attribute:
        return attribute["N"]
    if "BOOL" in attribute:
        return attribute["BOOL"]
    raise TypeError(f"unexpected DynamoDB attribute {next(iter(attribute), '?')}")


def _model_attributes(model: Any) -> dict[str, dict[str, Any]]:
    """A model's JSON form (Decimals as strings, camelCase names) as DynamoDB attributes."""
    fields = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {name: _attribute(value) for name, value in fields.items()}


def _transaction_item(user_id: str, transaction: Transaction) -> dict[str, Any]:
    return {
        "pk": {"S": user_partition_key(user_id)},
        "sk": {"S": f"{TRANSACTION_PREFIX}{transaction.id}"},
        "txSort": {"S": transaction_sort_key(transaction)},
        **_model_attributes(transaction),
    }


_KEY_ATTRIBUTES = frozenset({"pk", "sk", "txSort"})


def _transaction_from_item(item: dict[str, Any]) -> Transaction:
    fields = {name: _plain(value) for name, value in item.items() if name not in _KEY_ATTRIBUTES}
    return Transaction.model_validate(fields)


def _stable_bucket(text: str, buckets: int) -> int:
    """Stable across processes and runs (unlike hash())."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % buckets


def held_token_key(token_key: str, user_id: str) -> dict[str, Any]:
    """The holder-count item a user's change to `token_key` goes to."""
    shard = _stable_bucket(token_key, HELD_TOKEN_SHARDS)
    slot = _stable_bucket(user_id, HOLDER_SLOTS)
    return {"pk": {"S": f"{HELD_TOKENS_PREFIX}{shard}"}, "sk": {"S": f"{token_key}#{slot}"}}


def _record_item(portfolio: StoredPortfolio, *, version: int, shards: int) -> dict[str, Any]:
    record = portfolio.record
    if portfolio.ledger is None:
        raise ValueError("positions are required to store a portfolio")
    positions = encode_positions(portfolio.ledger)
    if len(positions) > MAX_POSITIONS_BYTES:
        raise PortfolioLimitError(
            "the portfolio's positions no longer fit in one stored item; "
            "consolidate lots (fewer, larger transactions) or split the portfolio",
            field="transactions",
        )
    item: dict[str, Any] = {
        "pk": {"S": user_partition_key(record.user_id)},
        "sk": {"S": PROFILE_SK},
        "userId": {"S": record.user_id},
        "userShard": {"S": user_shard(record.user_id, shards)},
        "version": {"N": str(version)},
        "costBasisMethod": {"S": record.cost_basis_method.value},
        "positions": {"B": positions},
        # Unique per write (botocore's retries resend the same one): tells our own landed write apart.
        "writeId": {"S": uuid.uuid4().hex},
    }
    if record.updated_at is not None:
        item["updatedAt"] = {"S": record.updated_at.isoformat()}
    return item


def _portfolio_from_item(item: dict[str, Any]) -> StoredPortfolio:
    record = PortfolioRecord(
        user_id=item["userId"]["S"],
        version=int(item["version"]["N"]),
        cost_basis_method=item["costBasisMethod"]["S"],
        updated_at=item["updatedAt"]["S"] if "updatedAt" in item else None,
    )
    ledger = None
    if "positions" in item:
        try:
            ledger = decode_positions(item["positions"]["B"])
        except UnreadablePositionsError as error:
            # Rebuilt from the history by the caller, like an item stored before positions were kept.
            logger.warning("stored positions unreadable", extra={"user_id": record.user_id, "error": str(error)})
    if ledger is not None and ledger.method is not record.cost_basis_method:
        ledger = None
    return StoredPortfolio(record=record, ledger=ledger)


def _version_condition(expected_version: int) -> dict[str, Any]:
    if expected_version == 0:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    return {
        "ConditionExpression": "#version = :expected",
        "ExpressionAttributeNames": {"#version": "version"},
        "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
    }


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


# Transaction listing filters -------------------------------------------------------------------


class _ListingFilter(NamedTuple):
    chain: str | None
    type: TransactionType | None
    token: TokenId | None
    start: datetime | None
    end: datetime | None

    @classmethod
    def of(
        cls,
        chain: str | None,
        type: str | None,
        token: str | None,
        start: datetime | None,
        end: datetime | None,
    ) -> _ListingFilter:
        try:
            transaction_type = None if type is None else TransactionType(type)
        except ValueError:
            allowed = ", ".join(member.value for member in TransactionType)
            message = f"unknown transaction type {str(type)[:40]!r}; one of {allowed}"
            raise InvalidInputError(message, field="type") from None
        listing = cls(
            chain=None if chain is None else normalize_chain(chain),
            type=transaction_type,
            token=None if token is None else TokenId.parse(token, field="token"),
            start=None if start is None else _utc(start, field="start"),
            end=None if end is None else _utc(end, field="end"),
        )
        if listing.start and listing.end and listing.start > listing.end:
            raise InvalidInputError("start must not be after end", field="start")
        return listing

    @property
    def filters_items(self) -> bool:
        return any((self.chain, self.type, self.token))

    def scope(self, user_id: str) -> str:
        """What a cursor is bound to: the user and every filter."""
        return json.dumps(
            [
                user_id,
                self.chain,
                self.type.value if self.type else None,
                self.token.key if self.token else None,
                self.start.isoformat() if self.start else None,
                self.end.isoformat() if self.end else None,
            ]
        )

    def query_arguments(self, user_id: str) -> dict[str, Any]:
        names: dict[str, str] = {}
        values: dict[str, Any] = {":pk": {"S": user_partition_key(user_id)}}
        key_condition = "pk = :pk"
        # Bounds are inclusive: "<start>" sorts before every "<start>#id", "<end>$" after every "<end>#id".
        if self.start and self.end:
            key_condition += " AND txSort BETWEEN :from AND :to"
        elif self.start:
            key_condition += " AND txSort >= :from"
        elif self.end:
            key_condition += " AND txSort <= :to"
        if self.start:
            values[":from"] = {"S": _sortable_time(self.start)}
        if self.end:
            values[":to"] = {"S": _sortable_time(self.end) + "$"}

        filters: list[str] = []
        # A bridge belongs to both its chains and both its tokens.
        if self.chain:
            names |= {"#chain": "chain", "#toChain": "destinationChain"}
            values[":chain"] = {"S": self.chain}
            filters.append("(#chain = :chain OR #toChain = :chain)")
        if self.type:
            names["#type"] = "type"
            values[":type"] = {"S": self.type.value}
            filters.append("#type = :type")
        if self.token:
            names |= {
                "#chain": "chain",
                "#toChain": "destinationChain",
                "#token": "tokenAddress",
                "#toToken": "destinationTokenAddress",
            }
            values[":tokenChain"] = {"S": self.token.chain}
            values[":tokenAddress"] = {"S": self.token.address}
            filters.append(
                "((#chain = :tokenChain AND #token = :tokenAddress)"
                " OR (#toChain = :tokenChain AND #toToken = :tokenAddress))"
            )
        arguments: dict[str, Any] = {
            "IndexName": TRANSACTIONS_BY_TIME,
            "KeyConditionExpression": key_condition,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
        }
        if filters:
            arguments["FilterExpression"] = " AND ".join(filters)
            arguments["ExpressionAttributeNames"] = names
        return arguments


# The store -------------------------------------------------------------------------------------


class PortfolioStore:
    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        cursor_signing_key: str | bytes,
        shards: int,
        batch_max_attempts: int = 8,
        backoff_base_s: float = 0.05,
        backoff_cap_s: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if shards < 1:
            raise ValueError("shards must be at least 1")
        self._client = ThrottlingTranslated(client)
        self._table_name = table_name
        self._cursors = CursorCodec(cursor_signing_key)
        self._shards = shards
        self._batch_max_attempts = batch_max_attempts
        self._backoff_base_s = backoff_base_s
        self._backoff_cap_s = backoff_cap_s
        self._sleep = sleep

    # Reads -------------------------------------------------------------------------------------

    def load_portfolio(self, user_id: str, *, consistent_read: bool = False) -> StoredPortfolio:
        """The portfolio item: record and positions, with one GetItem. A user with nothing stored
        gets an empty portfolio at version 0. Writers that retry after a VersionConflict, and reads
        that fill the cache, should read with consistent_read=True."""
        response = self._client.get_item(
            TableName=self._table_name, Key=self._profile_key(user_id), ConsistentRead=consistent_read
        )
        item = response.get("Item")
        return StoredPortfolio.new(user_id) if item is None else _portfolio_from_item(item)

    def load_portfolios(self, user_ids: Iterable[str]) -> dict[str, StoredPortfolio | UnreadableItemError]:
        """Many users' portfolio items, 100 keys a BatchGetItem, unprocessed keys retried with backoff.

        Users with nothing stored are absent; an item that does not decode stands as the error, so
        that only its user fails. Eventually consistent: a refresh values what it reads and writes
        nothing back, and cache warms are guarded by the version it read.
        """
        unique = list(dict.fromkeys(user_ids))
        found: dict[str, StoredPortfolio | UnreadableItemError] = {}
        for chunk in batched(unique, MAX_BATCH_GET_KEYS):
            for item in self._batch_get([self._profile_key(user_id) for user_id in chunk]):
                user_id = item["pk"]["S"].removeprefix(USER_PREFIX)
                try:
                    found[user_id] = _portfolio_from_item(item)
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
        return tuple(sorted((_transaction_from_item(item) for item in items), key=lambda tx: tx.sort_key))

    def get_transactions(self, user_id: str, transaction_ids: Iterable[str]) -> dict[str, Transaction]:
        """The stored transactions among these ids (strongly consistent), by id."""
        keys = [
            {"pk": {"S": user_partition_key(user_id)}, "sk": {"S": f"{TRANSACTION_PREFIX}{transaction_id}"}}
            for transaction_id in dict.fromkeys(transaction_ids)
        ]
        found: dict[str, Transaction] = {}
        for chunk in batched(keys, MAX_BATCH_GET_KEYS):
            for item in self._batch_get(list(chunk), consistent_read=True):
                transaction = _transaction_from_item(item)
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

    def list_transactions(
        self,
        user_id: str,
        *,
        limit: int,
        cursor: str | None = None,
        chain: str | None = None,
        type: str | None = None,
        token: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> tuple[list[Transaction], str | None]:
        """One page, newest first, and the cursor of the next page (None on the last page).

        `token` is `chain:address`; `chain` and `token` also match a bridge's destination. `start`
        and `end` are inclusive. Pages are full: reading continues until `limit` transactions match
        or the partition ends, and a page is never followed by an empty one.
        """
        if limit < 1:
            raise InvalidInputError("limit must be at least 1", field="limit")
        listing = _ListingFilter.of(chain, type, token, start, end)
        scope = listing.scope(user_id)
        arguments = listing.query_arguments(user_id)
        start_key: dict[str, Any] | None = None
        if cursor is not None:
            position = self._cursors.decode(cursor, scope=scope)
            if set(position) != {"sk", "txSort"}:
                raise InvalidCursorError()
            start_key = {"pk": {"S": user_partition_key(user_id)}} | {
                name: {"S": value} for name, value in position.items()
            }

        # One match beyond the page tells whether a next page exists.
        matches: list[dict[str, Any]] = []
        while len(matches) <= limit:
            wanted = limit + 1 - len(matches)
            read = min(MAX_ITEMS_PER_READ, wanted * FILTERED_READ_AHEAD if listing.filters_items else wanted)
            page_arguments = arguments | {"TableName": self._table_name, "Limit": read}
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
            last = page[-1]
            next_cursor = self._cursors.encode({"sk": last["sk"]["S"], "txSort": last["txSort"]["S"]}, scope=scope)
        return [_transaction_from_item(item) for item in page], next_cursor

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
        item = _record_item(portfolio, version=expected_version + 1, shards=self._shards)
        record_action = {"Put": {"TableName": self._table_name, "Item": item, **_version_condition(expected_version)}}
        try:
            self._client.transact_write_items(TransactItems=[action for _, _, action in changes] + [record_action])
        except ClientError as error:
            refused = self._commit_error(error, user_id, expected_version, changes)
            # A retry after an attempt whose answer was lost meets its own write: that is a success.
            if not (isinstance(refused, VersionConflict) and self._landed(user_id, item["writeId"]["S"])):
                raise refused from error
        stored = portfolio.record.model_copy(update={"version": expected_version + 1})
        return StoredPortfolio(record=stored, ledger=portfolio.ledger)

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

    def _landed(self, user_id: str, write_id: str) -> bool:
        key = self._profile_key(user_id)
        stored = self._client.get_item(
            TableName=self._table_name, Key=key, ConsistentRead=True, ProjectionExpression="writeId"
        ).get("Item", {})
        return stored.get("writeId", {}).get("S") == write_id

    @staticmethod
    def _profile_key(user_id: str) -> dict[str, Any]:
        return {"pk": {"S": user_partition_key(user_id)}, "sk": {"S": PROFILE_SK}}

    def _holders_action(self, token_key: str, user_id: str, delta: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self._table_name,
                "Key": held_token_key(token_key, user_id),
                "UpdateExpression": "ADD holders :delta",
                "ExpressionAttributeValues": {":delta": {"N": str(delta)}},
            }
        }

    def _batch_get(self, keys: list[dict[str, Any]], *, consistent_read: bool = False) -> list[dict[str, Any]]:
        pending: dict[str, Any] = {self._table_name: {"Keys": keys, "ConsistentRead": consistent_read}}
        items: list[dict[str, Any]] = []
        for attempt in range(self._batch_max_attempts):
            if attempt:
                logger.info("retrying unprocessed keys", extra={"attempt": attempt})
                self._sleep(self._backoff(attempt))
            response = self._client.batch_get_item(RequestItems=pending)
            items.extend(response.get("Responses", {}).get(self._table_name, []))
            pending = response.get("UnprocessedKeys") or {}
            if not pending:
                return items
        raise UnprocessedRequestsError(len(pending.get(self._table_name, {}).get("Keys", [])))

    def _put_action(self, user_id: str, transaction: Transaction) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self._table_name,
                "Item": _transaction_item(user_id, transaction),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def _delete_action(self, user_id: str, transaction_id: str) -> dict[str, Any]:
        return {
            "Delete": {
                "TableName": self._table_name,
                "Key": {"pk": {"S": user_partition_key(user_id)}, "sk": {"S": f"{TRANSACTION_PREFIX}{transaction_id}"}},
                "ConditionExpression": "attribute_exists(pk)",
            }
        }

    @staticmethod
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
        return error

    def _backoff(self, attempt: int) -> float:
        # Full jitter: spreads the retries of many concurrent writers apart.
        return random.uniform(0, min(self._backoff_cap_s, self._backoff_base_s * 2**attempt))  # noqa: S311

