"""Each held token's price over time, recorded once per sweep, in the PortfolioTable.

Item: pk=`PRICE#<coin id>` (the partition of the coin's last-known price), sk=`HIST#<resolution>#<UTC
bucket start>`, `at` (ISO 8601: the sweep's window, when the portfolio values of that bucket are
taken), `price` (decimal string), `expiresAt` (the table's TTL) for the resolutions not kept
forever (performance.history_keys decides). A later sweep in the same bucket overwrites it, so a
bucket holds its last price of the hour or day, and a repeated sweep adds nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from itertools import batched
from typing import Any

from portfolio.adapters.last_known_prices import PRICE_PK_PREFIX
from portfolio.adapters.retry import RetryPolicy
from portfolio.domain.money import to_decimal_string
from portfolio.domain.performance import PriceSeries, history_keys
from portfolio.domain.views import Resolution
from portfolio.observability import logger

HISTORY_PREFIX = "HIST#"
BATCH_WRITE_LIMIT = 25
DEFAULT_MAX_ROUNDS = 5
QUERY_CONCURRENCY = 8
_RETRY_BASE_S = 0.1
_RETRY_CAP_S = 1.0


def _bucket_time(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}Z"


def history_sort_key(resolution: Resolution, bucket_start: datetime) -> str:
    return f"{HISTORY_PREFIX}{Resolution(resolution).value}#{_bucket_time(bucket_start)}"


class PriceHistoryStore:
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

    def record(self, prices: Mapping[str, Decimal], window: datetime) -> int:
        """One item per coin and resolution for the window; returns the items written."""
        items = []
        for coin_id, price in prices.items():
            for resolution, bucket, expires in history_keys(window):
                item = {
                    "pk": {"S": f"{PRICE_PK_PREFIX}{coin_id}"},
                    "sk": {"S": history_sort_key(resolution, bucket)},
                    "at": {"S": window.astimezone(UTC).isoformat()},
                    "price": {"S": to_decimal_string(price)},
                }
                if expires is not None:
                    item["expiresAt"] = {"N": str(int(expires.timestamp()))}
                items.append({"PutRequest": {"Item": item}})
        for chunk in batched(items, BATCH_WRITE_LIMIT):
            self._batch_write(list(chunk))
        return len(items)

    def series(
        self, coin_ids: Iterable[str], resolution: Resolution, start: datetime, end: datetime
    ) -> dict[str, PriceSeries]:
        """Each coin's prices whose bucket starts within [start, end], oldest first (one Query per coin)."""
        unique = list(dict.fromkeys(coin_ids))
        if not unique or start > end:
            return {}
        with ThreadPoolExecutor(max_workers=min(QUERY_CONCURRENCY, len(unique))) as pool:
            found = pool.map(lambda coin_id: self._series(coin_id, resolution, start, end), unique)
            return {coin_id: series for coin_id, series in zip(unique, found, strict=True) if series}

    def _series(self, coin_id: str, resolution: Resolution, start: datetime, end: datetime) -> PriceSeries:
        arguments: dict[str, Any] = {
            "TableName": self._table_name,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :from AND :to",
            "ExpressionAttributeValues": {
                ":pk": {"S": f"{PRICE_PK_PREFIX}{coin_id}"},
                ":from": {"S": history_sort_key(resolution, start)},
                ":to": {"S": history_sort_key(resolution, end)},
            },
        }
        points: list[tuple[datetime, Decimal]] = []
        while True:
            response = self._client.query(**arguments)
            for item in response.get("Items", []):
                points.append((datetime.fromisoformat(item["at"]["S"]), Decimal(item["price"]["S"])))
            if "LastEvaluatedKey" not in response:
                return sorted(points)
            arguments["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        pending: dict[str, Any] = {self._table_name: requests}
        for _ in self._retry.attempts():
            response = self._client.batch_write_item(RequestItems=pending)
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return
        logger.warning("price history: items left unwritten", extra={"count": len(pending.get(self._table_name, []))})
