"""The API handler wired to this test's tables (moto's server), the test Redis and a local coins API."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from portfolio import wiring
from portfolio.settings import Settings

from local_stack.coins_api import CoinsApiServer
from local_stack.functions import load_handler
from local_stack.http_events import http_event
from local_stack.lambda_context import LocalLambdaContext

WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
ADMIN_SCOPE = "portfolio/admin"


@dataclass
class ApiResponse:
    status: int
    headers: dict[str, str]
    raw_body: str

    @property
    def json(self) -> Any:
        return json.loads(self.raw_body)

    @property
    def error(self) -> dict[str, Any]:
        body = self.json
        assert set(body) == {"error"}, body
        return body["error"]


@dataclass
class DynamoCalls:
    """DynamoDB operations the handler's client sends, counted by a botocore event hook."""

    operations: list[str]

    def reset(self) -> None:
        self.operations.clear()


@pytest.fixture
def coins_api() -> Iterator[CoinsApiServer]:
    with CoinsApiServer(prices={}) as api:
        api.set_price(f"ethereum:{WETH}", "3000", symbol="WETH")
        api.set_price(f"ethereum:{USDC}", "1", symbol="USDC", decimals=6)
        yield api


@pytest.fixture
def api_settings(function_environment: Callable[..., Settings], coins_api: CoinsApiServer) -> Settings:
    """The handler's environment: what template.yaml would set, pointed at the local stand-ins."""
    return function_environment(
        PRICES_API_URL=coins_api.url,
        PRICE_MAX_ATTEMPTS="1",
        # Other suites share this machine's two cores: a generous timeout keeps a busy Redis a hit.
        REDIS_SOCKET_TIMEOUT_MS="2000",
        REDIS_CONNECT_TIMEOUT_MS="2000",
        # moto takes seconds for a 100-item transaction on a busy machine; a client-side timeout would
        # resend the write and fail the test for moto's slowness.
        DYNAMODB_READ_TIMEOUT_S="30",
    )


@pytest.fixture
def no_rate_limits(function_environment: Callable[..., Settings], api_settings: Settings) -> Settings:
    """The handler without per-user rate limits, for a test that sends one caller's requests faster
    than its burst to check something else (the limits themselves: test_rate_limits.py)."""
    return function_environment(USER_WRITE_RATE_PER_S="0", USER_READ_RATE_PER_S="0")


@pytest.fixture
def dynamo_calls(api_settings: Settings) -> DynamoCalls:
    calls = DynamoCalls(operations=[])

    def count(event_name: str, **_: Any) -> None:
        calls.operations.append(event_name.rsplit(".", 1)[-1])

    wiring.dynamodb_client().meta.events.register("before-call.dynamodb", count)
    return calls


Call = Callable[..., ApiResponse]


@pytest.fixture
def call(api_settings: Settings) -> Call:
    """Invoke lambda_handler with an HTTP API v2 event: call("GET", "/portfolios/x", sub="x", query={...})."""
    api = load_handler("ApiFunction")

    def invoke(method: str, path: str, **event_options: Any) -> ApiResponse:
        event = http_event(method, path, **event_options)
        return invoke_event(event)

    def invoke_event(event: dict[str, Any]) -> ApiResponse:
        # As generous as the read timeout above: retries must fit before the function's deadline.
        context = LocalLambdaContext("api", timeout_s=120, aws_request_id=event["requestContext"]["requestId"])
        answer = api(event, context)
        body = answer.get("body") or ""
        if answer.get("isBase64Encoded"):
            body = base64.b64decode(body).decode()
        headers = {name.lower(): value for name, value in (answer.get("headers") or {}).items()}
        return ApiResponse(status=answer["statusCode"], headers=headers, raw_body=body)

    invoke.event = invoke_event  # type: ignore[attr-defined]
    return invoke


def buy(transaction_id: str, amount: str, *, price: str = "2000", token: str = WETH, at: str = "2024-01-01T00:00:00Z"):
    return {
        "id": transaction_id,
        "type": "buy",
        "chain": "ethereum",
        "tokenAddress": token,
        "amount": amount,
        "priceUsd": price,
        "timestamp": at,
    }


def sell(transaction_id: str, amount: str, *, price: str = "2500", token: str = WETH, at: str = "2024-02-01T00:00:00Z"):
    return buy(transaction_id, amount, price=price, token=token, at=at) | {"type": "sell"}
