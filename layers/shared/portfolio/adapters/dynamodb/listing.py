"""Pages of a user's transactions from the TransactionsByTime index, newest first: the Query a
TransactionListing stands for, how much one call reads, and what a page's cursor carries and is
bound to. The listing arrives validated (services.ports.TransactionListing); nothing is parsed here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from portfolio.adapters.cursor import InvalidCursorError
from portfolio.adapters.dynamodb.items import TRANSACTIONS_BY_TIME, sortable_time, user_partition_key
from portfolio.domain.transactions import TransactionSource
from portfolio.services.ports import TransactionListing

# A filtered page reads ahead, because most of what it reads may not match.
FILTERED_READ_AHEAD = 4
MAX_ITEMS_PER_READ = 1000

_POSITION_ATTRIBUTES = frozenset({"sk", "txSort"})


def cursor_scope(user_id: str, listing: TransactionListing) -> str:
    """What a cursor is bound to: the user and every filter (not the page size, which may change)."""
    return json.dumps(
        [
            user_id,
            listing.chain,
            listing.type.value if listing.type else None,
            listing.token.key if listing.token else None,
            _iso(listing.start),
            _iso(listing.end),
            *([listing.source.value if listing.source else None, listing.wallet_id] if _by_origin(listing) else []),
        ]
    )


def read_size(listing: TransactionListing, wanted: int) -> int:
    """Items one Query asks for when `wanted` more matches are needed."""
    filtered = any((listing.chain, listing.type, listing.token, listing.source, listing.wallet_id))
    return min(MAX_ITEMS_PER_READ, wanted * FILTERED_READ_AHEAD if filtered else wanted)


def query_arguments(user_id: str, listing: TransactionListing) -> dict[str, Any]:
    """The Query of the listing, without TableName, Limit and ExclusiveStartKey."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {":pk": {"S": user_partition_key(user_id)}}
    key_condition = "pk = :pk"
    # Bounds are inclusive: "<start>" sorts before every "<start>#id", "<end>$" after every "<end>#id".
    if listing.start and listing.end:
        key_condition += " AND txSort BETWEEN :from AND :to"
    elif listing.start:
        key_condition += " AND txSort >= :from"
    elif listing.end:
        key_condition += " AND txSort <= :to"
    if listing.start:
        values[":from"] = {"S": sortable_time(listing.start)}
    if listing.end:
        values[":to"] = {"S": sortable_time(listing.end) + "$"}

    filters: list[str] = []
    # A bridge belongs to both its chains and both its tokens.
    if listing.chain:
        names |= {"#chain": "chain", "#toChain": "destinationChain"}
        values[":chain"] = {"S": listing.chain}
        filters.append("(#chain = :chain OR #toChain = :chain)")
    if listing.type:
        names["#type"] = "type"
        values[":type"] = {"S": listing.type.value}
        filters.append("#type = :type")
    if listing.token:
        names |= {
            "#chain": "chain",
            "#toChain": "destinationChain",
            "#token": "tokenAddress",
            "#toToken": "destinationTokenAddress",
        }
        values[":tokenChain"] = {"S": listing.token.chain}
        values[":tokenAddress"] = {"S": listing.token.address}
        filters.append(
            "((#chain = :tokenChain AND #token = :tokenAddress)"
            " OR (#toChain = :tokenChain AND #toToken = :tokenAddress))"
        )
    if listing.source is TransactionSource.USER:
        # Stored before transactions carried a source: every one of those is the user's.
        names["#source"] = "source"
        values[":source"] = {"S": listing.source.value}
        filters.append("(attribute_not_exists(#source) OR #source = :source)")
    elif listing.source is not None:
        names["#source"] = "source"
        values[":source"] = {"S": listing.source.value}
        filters.append("#source = :source")
    if listing.wallet_id:
        names["#wallet"] = "walletId"
        values[":wallet"] = {"S": listing.wallet_id}
        filters.append("#wallet = :wallet")
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


def cursor_position(item: dict[str, Any]) -> dict[str, str]:
    """Where a page that ends with `item` stopped: what its cursor carries."""
    return {name: item[name]["S"] for name in sorted(_POSITION_ATTRIBUTES)}


def start_key(user_id: str, position: dict[str, str]) -> dict[str, Any]:
    """The ExclusiveStartKey a cursor's position stands for."""
    if set(position) != _POSITION_ATTRIBUTES:
        raise InvalidCursorError()
    return {"pk": {"S": user_partition_key(user_id)}} | {name: {"S": value} for name, value in position.items()}


def _by_origin(listing: TransactionListing) -> bool:
    """Cursors issued before the source and wallet filters existed keep their scope."""
    return listing.source is not None or listing.wallet_id is not None


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()
