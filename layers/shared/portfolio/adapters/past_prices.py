"""Prices of a past moment, from the price history the sweep records (`PRICE#<coin>`, `HIST#...` items).

What an alert's window needs: each held coin's price at the window's start. One BatchGetItem asks for
each coin's bucket at every resolution offered (the 5-minute one, with the hourly one behind it for a
bucket no sweep wrote), and the first found wins. A past bucket does not change once written, so what
was read is kept for the container's life (bounded): the messages of one refresh cycle that share
coins read each of them once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from portfolio.adapters.last_known_prices import BATCH_GET_LIMIT, PRICE_PK_PREFIX, PricePartition
from portfolio.adapters.price_history import history_sort_key
from portfolio.domain.performance import bucket_start
from portfolio.domain.views import Resolution
from portfolio.observability import logger

MAX_REMEMBERED = 50_000
_ABSENT = Decimal(-1)  # remembered "no price in that bucket"; prices are never negative


class PastPriceStore(PricePartition):
    def __init__(self, dynamodb_client: Any, table_name: str, **options: Any) -> None:
        super().__init__(dynamodb_client, table_name, **options)
        self._remembered: dict[tuple[str, str], Decimal] = {}
        self._lock = threading.Lock()

    def prices_at(self, coin_ids: Iterable[str], at: datetime, resolutions: Sequence[Resolution]) -> dict[str, Decimal]:
        """Raises LastKnownPricesUnavailableError (a PriceTierUnavailableError) when DynamoDB fails."""
        wanted = [
            (coin_id, history_sort_key(resolution, bucket_start(at, resolution)))
            for coin_id in dict.fromkeys(coin_ids)
            for resolution in resolutions
        ]
        with self._lock:
            known = {key: self._remembered[key] for key in wanted if key in self._remembered}
        missing = [key for key in wanted if key not in known]
        if missing:
            read, unanswered = self._read(missing)
            answered = {key: read.get(key, _ABSENT) for key in missing if key not in unanswered}
            known |= answered
            with self._lock:
                if len(self._remembered) + len(answered) > MAX_REMEMBERED:
                    self._remembered.clear()
                self._remembered |= answered
        found: dict[str, Decimal] = {}
        for coin_id, sort_key in wanted:
            price = known.get((coin_id, sort_key), _ABSENT)
            if coin_id not in found and price != _ABSENT:
                found[coin_id] = price
        return found

    def _read(self, keys: list[tuple[str, str]]) -> tuple[dict[tuple[str, str], Decimal], set[tuple[str, str]]]:
        """The prices found, and the keys DynamoDB left unprocessed after every attempt (not known absent)."""
        prices: dict[tuple[str, str], Decimal] = {}
        unanswered: set[tuple[str, str]] = set()
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            chunk = keys[start : start + BATCH_GET_LIMIT]
            request: dict[str, Any] = {
                self._table_name: {
                    "Keys": [
                        {"pk": {"S": f"{PRICE_PK_PREFIX}{coin_id}"}, "sk": {"S": sort_key}}
                        for coin_id, sort_key in chunk
                    ],
                    "ProjectionExpression": "pk, sk, price",
                }
            }
            for _ in self._retry.attempts():
                response = self._call("batch_get_item", RequestItems=request)
                for item in response.get("Responses", {}).get(self._table_name, []):
                    key = (item["pk"]["S"].removeprefix(PRICE_PK_PREFIX), item["sk"]["S"])
                    prices[key] = Decimal(item["price"]["S"])
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                left = {
                    (key["pk"]["S"].removeprefix(PRICE_PK_PREFIX), key["sk"]["S"])
                    for key in request[self._table_name]["Keys"]
                }
                unanswered |= left
                logger.warning("past prices: keys left unprocessed", extra={"count": len(left)})
        return prices, unanswered
