"""Each held token's price over time, recorded once per sweep, in the PortfolioTable.

Item: pk=`PRICE#<coin id>` (the partition of the coin's last-known price), sk=`HIST#<resolution>#<UTC
bucket start>`, `at` (ISO 8601: the sweep's window, when the portfolio values of that bucket are
taken), `price` (decimal string), `expiresAt` (the table's TTL) for the resolutions not kept
forever (performance.history_keys decides). A later sweep in the same bucket overwrites it, so a
bucket holds its last price of the hour or day, and a repeated sweep adds nothing.

Prices from before a coin's first sweep come from the coins API's chart (`record_backfill`), in the
same items, `at` being when the price was observed; they only fill buckets no sweep wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from itertools import batched
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from portfolio.adapters.last_known_prices import PRICE_PK_PREFIX, LastKnownPricesUnavailableError, PricePartition
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
        items = [
            _history_item(coin_id, resolution, bucket, expires, window, price)
            for coin_id, price in prices.items()
            for resolution, bucket, expires in history_keys(window)
        ]
        for chunk in batched(items, BATCH_WRITE_LIMIT):
            self._batch_write(list(chunk))
        return len(items)

    def record_backfill(
        self,
        series: Mapping[str, PriceSeries],
        resolution: Resolution,
        *,
        empty_from: datetime,
        empty_until: datetime,
    ) -> int:
        """Each coin's observed prices in the buckets of `resolution` they fall in, with the sweep's
        expiry for that resolution; returns the items written.

        Buckets starting within [empty_from, empty_until), which the caller read empty, are
        batch-written; any other (one the caller could not see, one a running sweep may be writing
        now) only where still empty, one conditional put each."""
        empty: list[dict[str, Any]] = []
        maybe_written: list[dict[str, Any]] = []
        for coin_id, points in series.items():
            for at, price in points:
                [(bucket, expires)] = [(b, e) for r, b, e in history_keys(at) if r == resolution]
                item = _history_item(coin_id, resolution, bucket, expires, at, price)
                (empty if empty_from <= bucket < empty_until else maybe_written).append(item)
        chunks = [list(chunk) for chunk in batched(empty, BATCH_WRITE_LIMIT)]
        if chunks:
            with ThreadPoolExecutor(max_workers=min(QUERY_CONCURRENCY, len(chunks))) as pool:
                list(pool.map(self._batch_write, chunks))
        return len(empty) + sum(self._put_if_absent(item) for item in maybe_written)

    def _put_if_absent(self, item: dict[str, Any]) -> bool:
        try:
            self._client.put_item(TableName=self._table_name, Item=item, ConditionExpression="attribute_not_exists(sk)")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise LastKnownPricesUnavailableError(f"put_item failed: {type(error).__name__}") from error
        except BotoCoreError as error:
            raise LastKnownPricesUnavailableError(f"put_item failed: {type(error).__name__}") from error
        return True

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


def _history_item(
    coin_id: str, resolution: Resolution, bucket: datetime, expires: datetime | None, at: datetime, price: Decimal
) -> dict[str, Any]:
    item = {
        "pk": {"S": f"{PRICE_PK_PREFIX}{coin_id}"},
        "sk": {"S": history_sort_key(resolution, bucket)},
        "at": {"S": at.astimezone(UTC).isoformat()},
        "price": {"S": to_decimal_string(price)},
    }
    if expires is not None:
        item["expiresAt"] = {"N": str(int(expires.timestamp()))}
    return item
