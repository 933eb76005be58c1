"""DeFiLlama's `/chart` failing while a performance view is backfilled, through the API function.

What must hold whatever the chart does: the read answers 200 within the backfill budget, with the
series the stored price history gives; the failure is logged as a warning without the API key; the
container does not ask again on the next reads of that minute.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from portfolio import wiring
from portfolio.observability import logger

from local_stack.coins_api import CoinsApiServer
from tests.faults.conftest import FunctionEnv
from tests.faults.handlers import call_api, random_address

BUDGET_S = 1.0
# The read's own work (moto, Redis, valuation) on a shared, busy machine, beyond the budget.
SLACK_S = 1.5
API_KEY = "chart-key-5d41402abc4b2a76"


def break_with_500(api: CoinsApiServer) -> None:
    api.fail_always(500)


def break_with_429(api: CoinsApiServer) -> None:
    api.fail_always(429, retry_after="0")


def break_with_429_asking_for_a_minute(api: CoinsApiServer) -> None:
    api.fail_always(429, retry_after="60")


def break_by_hanging(api: CoinsApiServer) -> None:
    api.delay_s = 8.0


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logger.registered_formatter)
    service_logger = logging.getLogger(logger.name)
    service_logger.addHandler(handler)
    yield buffer
    service_logger.removeHandler(handler)


def chart_requests(api: CoinsApiServer) -> int:
    return sum(1 for request in api.requests if "/chart/" in request.path)


@pytest.mark.parametrize(
    "fault",
    [break_with_500, break_with_429, break_with_429_asking_for_a_minute, break_by_hanging],
    ids=["500", "429", "429-retry-after-60", "hanging"],
)
def test_given_the_chart_fails_when_performance_is_read_then_200_within_the_budget_from_the_stored_history(
    function_env: FunctionEnv,
    coins_api: CoinsApiServer,
    captured_logs: io.StringIO,
    fault: Callable[[CoinsApiServer], None],
    fault_figures: dict[str, Any],
) -> None:
    # Given a key-protected coins API, a budget of one second, and 1 token bought 20 days ago
    coins_api.required_api_key = API_KEY
    function_env(HISTORY_BACKFILL_BUDGET_S=str(BUDGET_S), PRICE_MAX_ATTEMPTS="4", PRICES_API_KEY=API_KEY)
    user_id, token = f"chart-{random_address()[-10:]}", f"ethereum:{random_address()}"
    now = datetime.now(UTC).replace(microsecond=0)
    bought = {
        "id": "b1",
        "type": "buy",
        "chain": "ethereum",
        "tokenAddress": token.split(":")[1],
        "amount": "2",
        "priceUsd": "5",
        "timestamp": (now - timedelta(days=20)).isoformat(),
    }
    assert call_api("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=bought).status == 201
    # And sweeps that priced it at 7 over the last three hours only
    for hours_ago in (3, 2, 1):
        wiring.price_history_store().record({token: Decimal(7)}, now - timedelta(hours=hours_ago))
    # And a chart that fails as this case says
    fault(coins_api)

    # When the 30-day performance is read
    started = time.perf_counter()
    answer = call_api("GET", f"/portfolios/{user_id}/performance", sub=user_id, query={"period": "30d"})
    elapsed = time.perf_counter() - started

    # Then it answers within the budget, with the stored prices' series
    assert answer.status == 200
    assert elapsed < BUDGET_S + SLACK_S
    assert [point["valueUsd"] for point in answer.json["series"]] == ["14"] * 3
    # And the failure was logged as a warning, without the key
    output = captured_logs.getvalue()
    assert "price history backfill incomplete" in output
    assert API_KEY not in output
    # And the next read of the minute does not ask the chart again, and answers at once
    asked = chart_requests(coins_api)
    wiring.portfolio_cache().invalidate_user(user_id)
    started = time.perf_counter()
    again = call_api("GET", f"/portfolios/{user_id}/performance", sub=user_id, query={"period": "30d"})
    assert again.status == 200 and time.perf_counter() - started < SLACK_S
    assert chart_requests(coins_api) == asked
    fault_figures.update({"chart requests": asked, "read seconds": round(elapsed, 2)})
