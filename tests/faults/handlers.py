"""Driving the real handlers in the reliability suite, and reading back what they stored."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from portfolio import wiring
from portfolio.adapters.dynamodb.items import user_partition_key
from portfolio.services.refresh_planner import RefreshMessage

from local_stack.functions import load_handler
from local_stack.http_events import http_event
from local_stack.lambda_context import LocalLambdaContext
from local_stack.scheduler import scheduled_event as local_scheduled_event
from local_stack.sqs_poller import PollResult, SqsPoller

WINDOW = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)


@dataclass(frozen=True)
class RefreshQueues:
    url: str
    dead_letter_url: str


@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: dict[str, str]
    raw_body: str

    @property
    def json(self) -> Any:
        return json.loads(self.raw_body)


def invoke_api(event: dict[str, Any], context: LocalLambdaContext | None = None) -> ApiResponse:
    """The API function's handler on one HTTP API (payload 2.0) event."""
    api = load_handler("ApiFunction")

    # A generous timeout, like the DynamoDB read timeout these tests set for a busy machine: retries
    # must fit before the function's deadline (adapters/dynamodb_deadline.py).
    context = context or LocalLambdaContext("api", timeout_s=120, aws_request_id=event["requestContext"]["requestId"])
    answer = api(event, context)
    body = answer.get("body") or ""
    if answer.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    headers = {name.lower(): value for name, value in (answer.get("headers") or {}).items()}
    return ApiResponse(status=answer["statusCode"], headers=headers, raw_body=body)


def call_api(method: str, path: str, **event_options: Any) -> ApiResponse:
    return invoke_api(http_event(method, path, **event_options))


def buy(transaction_id: str, token_address: str, amount: str, *, price: str = "10") -> dict[str, str]:
    return {
        "id": transaction_id,
        "type": "buy",
        "chain": "ethereum",
        "tokenAddress": token_address,
        "amount": amount,
        "priceUsd": price,
        "timestamp": "2024-06-01T12:00:00Z",
    }


def random_address() -> str:
    """An ERC-20 address no other test prices, so no shared cache tier can answer for it."""
    return "0x" + (uuid.uuid4().hex + uuid.uuid4().hex)[:40]


def scheduled_event(when: datetime = WINDOW) -> dict[str, Any]:
    return local_scheduled_event(when)


def refresh_body(user_ids: list[str], window: datetime = WINDOW) -> str:
    """A message of active users who read their asset list too: the refresh warms it, priced per token."""
    message = RefreshMessage(window=window, user_ids=user_ids, asset_user_ids=user_ids)
    return message.model_dump_json(by_alias=True, exclude_none=True)


def run_scheduler(when: datetime = WINDOW, context: LocalLambdaContext | None = None) -> dict[str, Any]:
    scheduler = load_handler("RefreshSchedulerFunction")

    return scheduler(scheduled_event(when), context or LocalLambdaContext("refresh-scheduler"))


def drain_with_price_updater(sqs_client: Any, queue_url: str, **poller_options: Any) -> list[PollResult]:
    """What Lambda's event source mapping does: hand the queue to the price updater until it is empty."""
    price_updater = load_handler("PriceUpdaterFunction")

    return SqsPoller(sqs_client, queue_url, price_updater, **poller_options).drain()


def partition_items(user_id: str) -> list[dict[str, Any]]:
    """Every item stored under the user's partition, as DynamoDB holds it (a strongly consistent Query)."""
    client = wiring.dynamodb_client()
    items: list[dict[str, Any]] = []
    arguments: dict[str, Any] = {
        "TableName": wiring.settings().table_name,
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": user_partition_key(user_id)}},
        "ConsistentRead": True,
    }
    while True:
        page = client.query(**arguments)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def total_value(summary: dict[str, Any]) -> Decimal:
    return Decimal(summary["totalValueUsd"])


def warmed_prices(user_id: str) -> dict[str, tuple[Decimal, bool]]:
    """token -> (price, stale) of the user's warmed, unfiltered asset list (the refresh's output)."""
    from portfolio.adapters.portfolio_cache import CacheKind
    from portfolio.domain.asset_query import AssetQuery

    body = wiring.portfolio_cache().get(CacheKind.ASSETS, user_id, AssetQuery().filter_key())
    assert body is not None, f"no warmed views for {user_id}"
    return {
        f"{asset['chain']}:{asset['tokenAddress']}": (Decimal(asset["priceUsd"]), asset["stale"])
        for asset in json.loads(body)["assets"]
    }
