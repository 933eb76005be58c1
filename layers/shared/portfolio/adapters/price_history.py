"""Each held token's price over time, recorded once per sweep, in the PortfolioTable.

Item: pk=`PRICE#<coin id>` (the partition of the coin's last-known price), sk=`HIST#<resolution>#<UTC
bucket start>`, `at` (ISO 8601: the sweep's window, when the portfolio values of that bucket are
taken), `price` (decimal string), `expiresAt` (the table's TTL) for the resolutions not kept
forever (performance.history_keys decides). A later sweep in the same bucket overwrites it, so a
bucket holds its last price of the hour or day, and a repeated sweep adds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from itertools import batched
from typing import Any

from portfolio.adapters.last_known_prices import PRICE_PK_PREFIX, PricePartition
from portfolio.domain.money import to_decimal_string
from portfolio.domain.performance import PriceSeries, history_keys
from portfolio.domain.views import Resolution

HISTORY_PREFIX = "HIST#"
BATCH_WRITE_LIMIT = 25
QUERY_CONCURRENCY = 8


def _bucket_time(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}Z"


def history_sort_key(resolution: Resolution, bucket_start: datetime) -> str:
    return f"{HISTORY_PREFIX}{Resolution(resolution).value}#{_bucket_time(bucket_start)}"


class PriceHistoryStore(PricePartition):
    """Each coin's price per bucket: written by the sweep, read by the performance view."""

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
                items.append(item)
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
