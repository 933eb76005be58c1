"""The portfolio store's items in the PortfolioTable: keys, and items to and from domain objects.

Item layout (other modules rely on it):

- pk="USER#<userId>", sk="PROFILE": the PortfolioRecord (version as a Number), the user's positions
  (`positions` and `lots`, binary, positions_codec: a valuation reads the first only), the linked
  wallets with how each chain's sync went (`wallets`, JSON; domain/wallets.py) plus userId
  and userShard, which feed the sparse UsersByShard index (KEYS_ONLY: enumerating users reads one
  small key per user); writeId, unique per write, lets a retried conditional write recognise that
  it already landed. Prices are not stored here: views are valued at read time.
- pk="USER#<userId>", sk="TX#<transactionId>", txSort="<UTC timestamp, fixed width>#<transactionId>":
  one transaction; the TransactionsByTime index pages them newest first. The history is read only
  to rebuild positions (a backdated write, a deletion, another cost-basis method) and for the
  performance view.
- pk="TOKENS#<shard>", sk="<chain:address>#<slot>": how many users hold the token (`holders`,
  a Number), counted in the same transaction that changes a user's positions. The price sweep
  reads these few partitions to know every held token without looking at a user. A token's count
  is spread over HOLDER_SLOTS items (the user's hash picks one), so users who start holding the same
  token at the same moment seldom touch the same item.
- pk="CONN#<userId>", sk="<connectionId>": one open WebSocket connection of the user
  (adapters/connection_registry.py). A partition of its own, not the user's: the functions that
  record and forget connections are granted the CONN# partitions only, never the user's items.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter

from portfolio.adapters.positions_codec import UnreadablePositionsError, decode_positions, encode_positions
from portfolio.domain.errors import PortfolioLimitError
from portfolio.domain.portfolio_record import CostBasisScope, MissingAcquisitions, PortfolioRecord
from portfolio.domain.stored_portfolio import StoredPortfolio
from portfolio.domain.transactions import Transaction
from portfolio.domain.wallets import Wallet
from portfolio.observability import logger

USER_PREFIX = "USER#"
PROFILE_SK = "PROFILE"
TRANSACTION_PREFIX = "TX#"
HELD_TOKENS_PREFIX = "TOKENS#"
CONNECTIONS_PREFIX = "CONN#"
TRANSACTIONS_BY_TIME = "TransactionsByTime"
USERS_BY_SHARD = "UsersByShard"

# DynamoDB's item limit is 400 KB; the rest of the portfolio item needs far less than the margin.
MAX_POSITIONS_BYTES = 380_000
HELD_TOKEN_SHARDS = 4
HOLDER_SLOTS = 8

_KEY_ATTRIBUTES = frozenset({"pk", "sk", "txSort"})


class UnreadableItemError(Exception):
    """A stored item no longer decodes (damaged, or written in a format this code does not know)."""


# Keys ------------------------------------------------------------------------------------------


def user_partition_key(user_id: str) -> str:
    return f"{USER_PREFIX}{user_id}"


def connections_partition_key(user_id: str) -> str:
    return f"{CONNECTIONS_PREFIX}{user_id}"


def user_shard(user_id: str, shards: int) -> str:
    """Stable across processes and runs (unlike hash()): the same user always lands in the same shard."""
    return str(_stable_bucket(user_id, shards))


def profile_key(user_id: str) -> dict[str, Any]:
    return {"pk": {"S": user_partition_key(user_id)}, "sk": {"S": PROFILE_SK}}


def transaction_key(user_id: str, transaction_id: str) -> dict[str, Any]:
    return {"pk": {"S": user_partition_key(user_id)}, "sk": {"S": f"{TRANSACTION_PREFIX}{transaction_id}"}}


def held_token_key(token_key: str, user_id: str) -> dict[str, Any]:
    """The holder-count item a user's change to `token_key` goes to."""
    shard = _stable_bucket(token_key, HELD_TOKEN_SHARDS)
    slot = _stable_bucket(user_id, HOLDER_SLOTS)
    return {"pk": {"S": f"{HELD_TOKENS_PREFIX}{shard}"}, "sk": {"S": f"{token_key}#{slot}"}}


def sortable_time(moment: datetime) -> str:
    """Fixed width, so that text order is time order: 2024-05-01T12:00:00.000000Z."""
    if moment.tzinfo is None:
        raise ValueError("a stored time must carry a time zone")
    moment = moment.astimezone(UTC)
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}.{moment.microsecond:06d}Z"


def transaction_sort_key(transaction: Transaction) -> str:
    """Time, then the order recorded (fixed width), then id: the replay order, as text."""
    if transaction.sequence is None:  # stored before sequences were kept
        return f"{sortable_time(transaction.timestamp)}#{transaction.id}"
    return f"{sortable_time(transaction.timestamp)}#{transaction.sequence:020d}#{transaction.id}"


def _stable_bucket(text: str, buckets: int) -> int:
    """Stable across processes and runs (unlike hash())."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % buckets


# Transactions ----------------------------------------------------------------------------------


def transaction_item(user_id: str, transaction: Transaction) -> dict[str, Any]:
    return {
        **transaction_key(user_id, transaction.id),
        "txSort": {"S": transaction_sort_key(transaction)},
        **_model_attributes(transaction),
    }


def transaction_from_item(item: dict[str, Any]) -> Transaction:
    fields = {name: _plain(value) for name, value in item.items() if name not in _KEY_ATTRIBUTES}
    return Transaction.model_validate(fields)


def _model_attributes(model: Any) -> dict[str, dict[str, Any]]:
    """A model's JSON form (Decimals as strings, camelCase names) as DynamoDB attributes."""
    fields = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return {name: _attribute(value) for name, value in fields.items()}


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


# The portfolio item ----------------------------------------------------------------------------


def record_item(portfolio: StoredPortfolio, *, version: int, shards: int) -> dict[str, Any]:
    record = portfolio.record
    if portfolio.ledger is None:
        raise ValueError("positions are required to store a portfolio")
    positions, lots = encode_positions(portfolio.ledger)
    if len(positions) + len(lots) > MAX_POSITIONS_BYTES:
        raise PortfolioLimitError(
            "the portfolio's positions no longer fit in one stored item; "
            "consolidate lots (fewer, larger transactions) or split the portfolio",
            field="transactions",
        )
    item: dict[str, Any] = {
        **profile_key(record.user_id),
        "userId": {"S": record.user_id},
        "userShard": {"S": user_shard(record.user_id, shards)},
        "version": {"N": str(version)},
        "costBasisMethod": {"S": record.cost_basis_method.value},
        "costBasisScope": {"S": record.cost_basis_scope.value},
        "missingAcquisitions": {"S": record.missing_acquisitions.value},
        "positions": {"B": positions},
        "lots": {"B": lots},
        "wallets": {"S": wallets_document(portfolio.wallets)},
        # Unique per write (botocore's retries resend the same one): tells our own landed write apart.
        "writeId": {"S": uuid.uuid4().hex},
    }
    if record.updated_at is not None:
        item["updatedAt"] = {"S": record.updated_at.isoformat()}
    return item


# What a valuation reads of a portfolio item: everything but the lots.
VALUATION_PROJECTION: dict[str, Any] = {
    "ProjectionExpression": (
        "pk, userId, #version, costBasisMethod, costBasisScope, missingAcquisitions, updatedAt, positions, wallets"
    ),
    "ExpressionAttributeNames": {"#version": "version"},
}


def portfolio_from_item(item: dict[str, Any], *, with_lots: bool = True) -> StoredPortfolio:
    """The stored portfolio; `with_lots=False` reads its positions for valuation only (no lots)."""
    record = PortfolioRecord(
        user_id=item["userId"]["S"],
        version=int(item["version"]["N"]),
        cost_basis_method=item["costBasisMethod"]["S"],
        cost_basis_scope=item.get("costBasisScope", {}).get("S", CostBasisScope.CHAIN),
        missing_acquisitions=item.get("missingAcquisitions", {}).get("S", MissingAcquisitions.REFUSE),
        updated_at=item["updatedAt"]["S"] if "updatedAt" in item else None,
    )
    ledger = None
    if "positions" in item:
        try:
            lots = item["lots"]["B"] if with_lots else None
            ledger = decode_positions(item["positions"]["B"], lots)
        except UnreadablePositionsError as error:
            # Rebuilt from the history by the caller, like an item stored before positions were kept.
            logger.warning("stored positions unreadable", extra={"user_id": record.user_id, "error": str(error)})
    if ledger is not None and (
        ledger.method is not record.cost_basis_method
        or ledger.scope is not record.cost_basis_scope
        or ledger.accept_missing != record.accepts_missing
    ):
        ledger = None
    wallets = wallets_from_document(item["wallets"]["S"]) if "wallets" in item else ()
    return StoredPortfolio(record=record, ledger=ledger, holders_counted="positions" in item, wallets=wallets)


_WALLETS = TypeAdapter(tuple[Wallet, ...])


def wallets_document(wallets: tuple[Wallet, ...]) -> str:
    return _WALLETS.dump_json(wallets, by_alias=True, exclude_defaults=True).decode()


def wallets_from_document(document: str) -> tuple[Wallet, ...]:
    return _WALLETS.validate_json(document)


def version_condition(expected_version: int) -> dict[str, Any]:
    """The condition a portfolio item put carries: the item is still at `expected_version` (0: absent)."""
    if expected_version == 0:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    return {
        "ConditionExpression": "#version = :expected",
        "ExpressionAttributeNames": {"#version": "version"},
        "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
    }
