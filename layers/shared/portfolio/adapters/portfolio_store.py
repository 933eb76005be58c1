"""The portfolio store: one DynamoDB partition per user, read with one Query.

Item layout in the PortfolioTable (other modules rely on it):

- pk="USER#<userId>", sk="PROFILE": the PortfolioRecord (version as a Number, prices as a compact
  JSON string with Decimals as strings) plus userId and userShard, which feed the sparse
  UsersByShard index: enumerating users reads one small key per user and never a transaction;
  writeId, unique per write, lets a retried conditional write recognise that it already landed.
- pk="USER#<userId>", sk="TX#<transactionId>", txSort="<UTC timestamp, fixed width>#<transactionId>":
  one transaction; the TransactionsByTime index pages them newest first.
- pk="USER#<userId>", sk="HIST#<resolution>#<UTC bucket start>": one history point, with expiresAt
  (epoch seconds, the table's TTL) for the resolutions that are not kept forever.

"HIST#" < "PROFILE" < "TX#", so the Query `sk >= "PROFILE"` returns the portfolio item and every
transaction, and never the history.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from itertools import batched
from typing import Any, NamedTuple

from botocore.exceptions import ClientError

from portfolio.adapters.cursor import CursorCodec, InvalidCursorError
from portfolio.domain.errors import InvalidInputError
from portfolio.domain.portfolio_record import PortfolioRecord, PortfolioSnapshot
from portfolio.domain.prices import PriceQuote
from portfolio.domain.tokens import TokenId, normalize_chain
from portfolio.domain.transactions import Transaction, TransactionType
from portfolio.domain.views import HistoryPoint, Resolution
from portfolio.observability import logger

__all__ = [
    "HistoryWrite",
    "InvalidCursorError",
    "PortfolioStore",
    "StoreConflict",
    "TransactionNotFound",
    "TransactionsExist",
    "UnprocessedWritesError",
    "VersionConflict",
    "user_shard",
]

PROFILE_SK = "PROFILE"
TRANSACTION_PREFIX = "TX#"
HISTORY_PREFIX = "HIST#"
TRANSACTIONS_BY_TIME = "TransactionsByTime"
USERS_BY_SHARD = "UsersByShard"

# TransactWriteItems takes at most 100 actions; one of them is always the portfolio item.
MAX_TRANSACTION_ACTIONS_PER_COMMIT = 99
MAX_BATCH_WRITE_ITEMS = 25
# A filtered page reads ahead, because most of what it reads may not match.
FILTERED_READ_AHEAD = 4
MAX_ITEMS_PER_READ = 1000



# Errors ----------------------------------------------------------------------------------------


class StoreConflict(Exception):
    """A conditional write was refused. `committed_transaction_ids` lists what earlier chunks of the
    same commit did store (only commits of more than 99 transactions are split into chunks)."""

    def __init__(self, message: str, *, committed_transaction_ids: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.committed_transaction_ids = tuple(committed_transaction_ids)


class VersionConflict(StoreConflict):
    """Someone else wrote the portfolio since it was read: re-read, re-apply, retry."""

    def __init__(self, user_id: str, expected_version: int, **kwargs: Any) -> None:
        super().__init__(f"portfolio of {user_id} is no longer at version {expected_version}", **kwargs)
        self.user_id = user_id
        self.expected_version = expected_version


class TransactionsExist(StoreConflict):
    """Transactions with these ids are already stored; they were left as they are."""

    def __init__(self, ids: Sequence[str], **kwargs: Any) -> None:
        super().__init__(f"transactions already recorded: {', '.join(ids[:20])}", **kwargs)
        self.ids = tuple(ids)


class TransactionNotFound(StoreConflict):
    """A transaction to delete is not stored."""

    def __init__(self, transaction_id: str, **kwargs: Any) -> None:
        super().__init__(f"transaction {transaction_id} is not recorded", **kwargs)
        self.transaction_id = transaction_id


class UnprocessedWritesError(Exception):
    """BatchWriteItem still left items unprocessed after every attempt."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} item(s) still unprocessed after retries")
        self.count = count


# Keys and encodings ----------------------------------------------------------------------------


class HistoryWrite(NamedTuple):
    user_id: str
    resolution: Resolution
    bucket_start: datetime
    point: HistoryPoint
    expires_at: datetime | None  # None for points kept forever (performance.history_keys decides)


def user_partition_key(user_id: str) -> str:
    return f"USER#{user_id}"


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


def _bucket_time(moment: datetime) -> str:
    moment = _utc(moment, field="bucketStart")
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}Z"


def transaction_sort_key(transaction: Transaction) -> str:
    return f"{_sortable_time(transaction.timestamp)}#{transaction.id}"


def history_sort_key(resolution: Resolution, bucket_start: datetime) -> str:
    return f"{HISTORY_PREFIX}{Resolution(resolution).value}#{_bucket_time(bucket_start)}"


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


def _prices_json(prices: dict[str, PriceQuote]) -> str:
    # The token is the map's key: not repeated inside each quote.
    compact = {
        token: quote.model_dump(mode="json", by_alias=True, exclude_none=True, exclude={"token"})
        for token, quote in prices.items()
    }
    return json.dumps(compact, separators=(",", ":"), sort_keys=True)


def _prices_from_json(text: str) -> dict[str, PriceQuote]:
    compact = json.loads(text, parse_float=Decimal)
    return {token: PriceQuote.model_validate({**fields, "token": token}) for token, fields in compact.items()}


def _record_item(record: PortfolioRecord, *, version: int, shards: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": user_partition_key(record.user_id)},
        "sk": {"S": PROFILE_SK},
        "userId": {"S": record.user_id},
        "userShard": {"S": user_shard(record.user_id, shards)},
        "version": {"N": str(version)},
        "costBasisMethod": {"S": record.cost_basis_method.value},
        "prices": {"S": _prices_json(record.prices)},
        # Unique per write (botocore's retries resend the same one): tells our own landed write apart.
        "writeId": {"S": uuid.uuid4().hex},
    }
    if record.prices_as_of is not None:
        item["pricesAsOf"] = {"S": record.prices_as_of.isoformat()}
    if record.updated_at is not None:
        item["updatedAt"] = {"S": record.updated_at.isoformat()}
    return item


def _record_from_item(item: dict[str, Any]) -> PortfolioRecord:
    return PortfolioRecord(
        user_id=item["userId"]["S"],
        version=int(item["version"]["N"]),
        cost_basis_method=item["costBasisMethod"]["S"],
        prices=_prices_from_json(item["prices"]["S"]) if "prices" in item else {},
        prices_as_of=item["pricesAsOf"]["S"] if "pricesAsOf" in item else None,
        updated_at=item["updatedAt"]["S"] if "updatedAt" in item else None,
    )


def _history_item(write: HistoryWrite) -> dict[str, Any]:
    item = {
        "pk": {"S": user_partition_key(write.user_id)},
        "sk": {"S": history_sort_key(write.resolution, write.bucket_start)},
        **_model_attributes(write.point),
    }
    if write.expires_at is not None:
        item["expiresAt"] = {"N": str(int(_utc(write.expires_at, field="expiresAt").timestamp()))}
    return item


def _history_point_from_item(item: dict[str, Any]) -> HistoryPoint:
    return HistoryPoint.model_validate(
        {name: item[name]["S"] for name in ("timestamp", "valueUsd", "investedUsd", "totalPnlUsd")}
    )


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
        self._client = client
        self._table_name = table_name
        self._cursors = CursorCodec(cursor_signing_key)
        self._shards = shards
        self._batch_max_attempts = batch_max_attempts
        self._backoff_base_s = backoff_base_s
        self._backoff_cap_s = backoff_cap_s
        self._sleep = sleep

    # Reads -------------------------------------------------------------------------------------

    def load(self, user_id: str, *, consistent_read: bool = False) -> PortfolioSnapshot:
        """The portfolio item and every transaction (in replay order) with one Query.

        A user with nothing stored gets an empty record at version 0. Writers that retry after a
        VersionConflict should read with consistent_read=True.
        """
        record: PortfolioRecord | None = None
        transactions: list[Transaction] = []
        for item in self._query_all(
            KeyConditionExpression="pk = :pk AND sk >= :profile",
            ExpressionAttributeValues={":pk": {"S": user_partition_key(user_id)}, ":profile": {"S": PROFILE_SK}},
            ConsistentRead=consistent_read,
        ):
            sort_key = item["sk"]["S"]
            if sort_key == PROFILE_SK:
                record = _record_from_item(item)
            elif sort_key.startswith(TRANSACTION_PREFIX):
                transactions.append(_transaction_from_item(item))
        transactions.sort(key=lambda transaction: transaction.sort_key)
        return PortfolioSnapshot(record=record or PortfolioRecord(user_id=user_id), transactions=tuple(transactions))

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

    def query_history(
        self, user_id: str, resolution: Resolution, start: datetime, end: datetime
    ) -> list[HistoryPoint]:
        """Points whose bucket starts within [start, end], oldest first."""
        if start > end:
            return []  # DynamoDB refuses a BETWEEN whose bounds are reversed
        items = self._query_all(
            KeyConditionExpression="pk = :pk AND sk BETWEEN :from AND :to",
            ExpressionAttributeValues={
                ":pk": {"S": user_partition_key(user_id)},
                ":from": {"S": history_sort_key(resolution, start)},
                ":to": {"S": history_sort_key(resolution, end)},
            },
        )
        return [_history_point_from_item(item) for item in items]

    def iter_user_ids(self, page_size: int = 1000) -> Iterator[list[str]]:
        """Every user once, a page at a time, through the sparse UsersByShard index (one key per user).

        The shard count may grow (users keep their old shard, still below the new count) but must
        not shrink, or the users of the dropped shards would no longer be listed.
        """
        for shard in range(self._shards):
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
        user_id: str,
        *,
        expected_version: int,
        record: PortfolioRecord,
        put_transactions: Sequence[Transaction] = (),
        delete_transaction_ids: Sequence[str] = (),
    ) -> PortfolioRecord:
        """Store new transactions, delete others and the portfolio item, all or nothing, if the
        portfolio is still at `expected_version`. Returns the record as stored (its new version).

        Raises VersionConflict, TransactionsExist (nothing is overwritten) or TransactionNotFound.

        More than 99 changes are committed in chunks of up to 99 plus the portfolio item, each
        chunk conditioned on the version the previous one wrote. A failure part-way leaves the
        earlier chunks stored (listed in the error's committed_transaction_ids). That state is still
        consistent: the transactions are the source of truth, the portfolio item holds no totals
        derived from them (the portfolio is recomputed from the transactions on every load), and
        every chunk bumps the version, so a concurrent writer cannot interleave unnoticed.
        """
        if record.user_id != user_id:
            raise ValueError("the record belongs to another user")
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

        version = expected_version
        committed: list[str] = []
        for chunk in batched(changes, MAX_TRANSACTION_ACTIONS_PER_COMMIT) if changes else [()]:
            record_action = {
                "Put": {
                    "TableName": self._table_name,
                    "Item": _record_item(record, version=version + 1, shards=self._shards),
                    **_version_condition(version),
                }
            }
            try:
                self._client.transact_write_items(TransactItems=[action for _, _, action in chunk] + [record_action])
            except ClientError as error:
                raise self._commit_error(error, user_id, version, chunk, committed) from error
            version += 1
            committed.extend(transaction_id for _, transaction_id, _ in chunk)
        return record.model_copy(update={"version": version})

    def save_record(self, record: PortfolioRecord, expected_version: int) -> PortfolioRecord:
        """Replace the portfolio item if it is still at `expected_version`; raises VersionConflict."""
        item = _record_item(record, version=expected_version + 1, shards=self._shards)
        try:
            self._client.put_item(
                TableName=self._table_name,
                Item=item,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **_version_condition(expected_version),
            )
        except ClientError as error:
            if _error_code(error) != "ConditionalCheckFailedException":
                raise
            # A retry after a timed-out attempt that did land finds our own write: that is a success.
            if error.response.get("Item", {}).get("writeId") != item["writeId"]:
                raise VersionConflict(record.user_id, expected_version) from error
        return record.model_copy(update={"version": expected_version + 1})

    def put_history_points(self, points: Iterable[HistoryWrite | tuple[Any, ...]]) -> None:
        """Write history points, 25 a call. Writing a point again overwrites it (same key)."""
        by_key: dict[tuple[str, str], dict[str, Any]] = {}
        for point in points:
            item = _history_item(HistoryWrite(*point))
            # BatchWriteItem refuses two requests for one key in a call: the last one wins.
            by_key[(item["pk"]["S"], item["sk"]["S"])] = {"PutRequest": {"Item": item}}
        for chunk in batched(by_key.values(), MAX_BATCH_WRITE_ITEMS):
            self._batch_write(list(chunk))

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
        error: ClientError,
        user_id: str,
        version: int,
        chunk: Sequence[tuple[str, str, dict[str, Any]]],
        committed: Sequence[str],
    ) -> Exception:
        """The domain error a cancelled transaction stands for, or the original error."""
        if _error_code(error) != "TransactionCanceledException":
            return error
        reasons = [str(reason.get("Code", "None")) for reason in error.response.get("CancellationReasons", [])]
        if len(reasons) != len(chunk) + 1:
            return error
        *change_reasons, record_reason = reasons
        # A version mismatch comes first: after re-reading, the other failures may look different.
        raced = "TransactionConflict" in (record_reason, *change_reasons)
        if raced or record_reason == "ConditionalCheckFailed":
            return VersionConflict(user_id, version, committed_transaction_ids=committed)
        failed = [
            (kind, transaction_id)
            for (kind, transaction_id, _), reason in zip(chunk, change_reasons, strict=True)
            if reason == "ConditionalCheckFailed"
        ]
        existing = [transaction_id for kind, transaction_id in failed if kind == "put"]
        if existing:
            return TransactionsExist(existing, committed_transaction_ids=committed)
        missing = [transaction_id for kind, transaction_id in failed if kind == "delete"]
        if missing:
            return TransactionNotFound(missing[0], committed_transaction_ids=committed)
        return error

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        pending: dict[str, Any] = {self._table_name: requests}
        for attempt in range(self._batch_max_attempts):
            if attempt:
                unprocessed = len(pending.get(self._table_name, []))
                logger.info("retrying unprocessed history writes", extra={"count": unprocessed, "attempt": attempt})
                self._sleep(self._backoff(attempt))
            response = self._client.batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return
        raise UnprocessedWritesError(sum(len(items) for items in pending.values()))

    def _backoff(self, attempt: int) -> float:
        # Full jitter: spreads the retries of many concurrent writers apart.
        return random.uniform(0, min(self._backoff_cap_s, self._backoff_base_s * 2**attempt))  # noqa: S311

