"""Live updates against real parts: moto's DynamoDB over HTTP, the test Redis, the coins API stand-in,
and API Gateway's management API as a local server that can stall or fail."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from portfolio import wiring
from portfolio.settings import Settings

from local_stack.coins_api import CoinsApiServer
from tests.support.management_api import ManagementApiStandIn

EVENTS = Path(__file__).resolve().parents[3] / "events"
BUDGET_MS = 300


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


@pytest.fixture
def management_api() -> Iterator[ManagementApiStandIn]:
    with ManagementApiStandIn() as server:
        yield server


@pytest.fixture
def coins_api() -> Iterator[CoinsApiServer]:
    with CoinsApiServer(prices={}, price_every_coin=True) as api:
        yield api


@pytest.fixture
def live_env(
    function_environment: Callable[..., Settings], management_api: ManagementApiStandIn, coins_api: CoinsApiServer
) -> Settings:
    """What the API and the price updater read in AWS, pushing to the stand-in within a short budget."""
    return function_environment(
        WEBSOCKET_CALLBACK_URL=management_api.callback_url,
        LIVE_UPDATE_BUDGET_MS=str(BUDGET_MS),
        PRICES_API_URL=coins_api.url,
        PRICE_BACKOFF_BASE_S="0",
    )


@pytest.fixture
def registry(live_env: Settings):
    return wiring.connection_registry()
