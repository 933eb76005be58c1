"""The durable last-known price of every coin ever priced, in the PortfolioTable.

Item: pk=`PRICE#<coin id>` (e.g. `PRICE#ethereum:0xc02a...`, `PRICE#coingecko:ethereum`), sk=`LATEST`,
price (decimal string), symbol, decimals (number), timestamp (ISO 8601, when the price was observed
upstream), confidence (decimal string). Read when the coins API gives no fresh price, so a portfolio
keeps an honest, dated value instead of dropping to zero.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from portfolio.adapters.retry import RetryPolicy
from portfolio.domain.money import to_decimal_string
from portfolio.domain.prices import PriceQuote, PriceSource
from portfolio.observability import logger
from portfolio.services.ports import PriceTierUnavailableError

PRICE_PK_PREFIX = "PRICE#"
PRICE_SORT_KEY = "LATEST"
BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
DEFAULT_MAX_ROUNDS = 5
_RETRY_BASE_S = 0.05
_RETRY_CAP_S = 1.0


class LastKnownPricesUnavailableError(PriceTierUnavailableError):
    """DynamoDB refused or failed the call: the caller carries on without last-known prices."""


def price_key(coin_id: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"{PRICE_PK_PREFIX}{coin_id}"}, "sk": {"S": PRICE_SORT_KEY}}


def quote_to_item(quote: PriceQuote) -> dict[str, dict[str, str]]:
    item = price_key(quote.token) | {
        "price": {"S": to_decimal_string(quote.price)},
        "timestamp": {"S": quote.timestamp.isoformat()},
    }
    if quote.symbol is not None:
        item["symbol"] = {"S": quote.symbol}
    if quote.decimals is not None:
        item["decimals"] = {"N": str(quote.decimals)}
    if quote.confidence is not None:
        item["confidence"] = {"S": to_decimal_string(quote.confidence)}
    return item


def quote_from_item(item: dict[str, Any]) -> PriceQuote | None:
    try:
        return PriceQuote(
            token=item["pk"]["S"].removeprefix(PRICE_PK_PREFIX),
            price=item["price"]["S"],
            symbol=item.get("symbol", {}).get("S"),
            decimals=int(item["decimals"]["N"]) if "decimals" in item else None,
            timestamp=datetime.fromisoformat(item["timestamp"]["S"]),
            confidence=item.get("confidence", {}).get("S"),
            source=PriceSource.LAST_KNOWN,
            stale=True,
        )
    except (KeyError, ValueError, ValidationError):
        return None


class PricePartition:
    """The `PRICE#<coin id>` items of the PortfolioTable: batch writes with unprocessed items retried
    a bounded number of rounds, and the table's failures as LastKnownPricesUnavailableError."""

    def __init__(
        self,
        dynamodb_client: Any,
        table_name: str,
        *,
        max_rounds: int = DEFAULT_MAX_ROUNDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = dynamodb_client
        self._table_name = table_name
        self._retry = RetryPolicy(max_rounds, _RETRY_BASE_S, _RETRY_CAP_S, sleep=sleep)

    def _batch_write(self, items: list[dict[str, Any]]) -> None:
        request: dict[str, Any] = {self._table_name: [{"PutRequest": {"Item": item}} for item in items]}
        for _ in self._retry.attempts():
            response = self._call("batch_write_item", RequestItems=request)
            request = response.get("UnprocessedItems") or {}
            if not request:
                return
        logger.warning("price items left unwritten", extra={"count": _pending_count(request)})

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self._client, operation)(**kwargs)
        except (ClientError, BotoCoreError) as error:
            raise LastKnownPricesUnavailableError(f"{operation} failed: {type(error).__name__}") from error


class LastKnownPriceStore(PricePartition):
    """Each coin's latest price: BatchGetItem / BatchWriteItem over its `LATEST` item."""

    def get_many(self, coin_ids: Iterable[str]) -> dict[str, PriceQuote]:
        """Last-known quotes (stale=True, source last_known) by coin id; coins never priced are absent."""
        unique = list(dict.fromkeys(coin_ids))
        found: dict[str, PriceQuote] = {}
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            for item in self._batch_get(unique[start : start + BATCH_GET_LIMIT]):
                quote = quote_from_item(item)
                if quote is not None:
                    found[quote.token] = quote
        return found

    def put_many(self, quotes: Iterable[PriceQuote]) -> None:
        """Stores each quote as its coin's latest price (the last quote of a coin wins)."""
        latest = {quote.token: quote for quote in quotes}
        items = [quote_to_item(quote) for quote in latest.values()]
        for start in range(0, len(items), BATCH_WRITE_LIMIT):
            self._batch_write(items[start : start + BATCH_WRITE_LIMIT])

    def _batch_get(self, coin_ids: Sequence[str]) -> list[dict[str, Any]]:
        request: dict[str, Any] = {self._table_name: {"Keys": [price_key(coin_id) for coin_id in coin_ids]}}
        items: list[dict[str, Any]] = []
        for _ in self._retry.attempts():
            response = self._call("batch_get_item", RequestItems=request)
            items.extend(response.get("Responses", {}).get(self._table_name, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return items
        logger.warning("last-known prices: keys left unprocessed", extra={"count": _pending_count(request)})
        return items


def _pending_count(request: dict[str, Any]) -> int:
    total = 0
    for pending in request.values():
        total += len(pending["Keys"]) if isinstance(pending, dict) else len(pending)
    return total
