"""A portfolio read before its first refresh: the performance series starts at its first transaction,
valued at DeFiLlama's chart (the local coins API), through the real handler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from portfolio import wiring
from portfolio.domain.performance import MAX_SERIES_POINTS, bucket_start
from portfolio.domain.views import Resolution

from local_stack.coins_api import CoinsApiServer
from tests.integration.api.conftest import WETH, Call, buy

WETH_COIN = f"ethereum:{WETH}"


def chart_requests(coins_api: CoinsApiServer) -> list:
    return [request for request in coins_api.requests if request.path.startswith("/chart/")]


def test_given_a_first_buy_20_days_ago_and_no_refresh_yet_when_reading_30d_then_the_series_starts_at_the_buy(
    call: Call, user_id: str, coins_api: CoinsApiServer
) -> None:
    # Given WETH at 1800 until ten days ago and 2200 since (the chart's past; today's price is 3000)
    now = datetime.now(UTC).replace(microsecond=0)
    coins_api.set_price_history(WETH_COIN, {now - timedelta(days=40): "1800", now - timedelta(days=10): "2200"})
    # And 2 WETH bought 20 days ago, recorded now: no sweep has priced WETH, no history is stored
    bought_at = now - timedelta(days=20, minutes=13)
    recorded = call(
        "POST",
        f"/portfolios/{user_id}/transactions",
        sub=user_id,
        body=buy("w", "2", price="1800", at=bought_at.isoformat()),
    )
    assert recorded.status == 201
    assert wiring.price_history_store().series([WETH_COIN], Resolution.HOURLY, now - timedelta(days=30), now) == {}

    # When the 30-day performance is read
    answer = call("GET", f"/portfolios/{user_id}/performance", sub=user_id, query={"period": "30d"})

    # Then the series starts at the buy's hour, valued at the chart's prices of each moment
    assert answer.status == 200
    view = answer.json
    series = [(datetime.fromisoformat(point["timestamp"]), Decimal(point["valueUsd"])) for point in view["series"]]
    assert bucket_start(series[0][0], Resolution.HOURLY) == bucket_start(bought_at, Resolution.HOURLY)
    assert series[0][1] == Decimal("3600")
    assert {value for at, value in series if at < now - timedelta(days=10)} == {Decimal("3600")}
    assert {value for at, value in series if at >= now - timedelta(days=10)} == {Decimal("4400")}
    assert (Decimal(view["startValueUsd"]), Decimal(view["endValueUsd"])) == (Decimal("3600"), Decimal("4400"))
    assert Decimal(view["pnlChangeUsd"]) == Decimal("800")
    assert 200 < len(series) <= MAX_SERIES_POINTS
    # And DeFiLlama was asked once, for at most 300 points two hours apart
    [request] = chart_requests(coins_api)
    assert request.coins == (WETH_COIN,)
    assert request.params["period"] == "2h" and int(request.params["span"]) <= MAX_SERIES_POINTS
    assert int(request.params["start"]) == int(bought_at.timestamp())


def test_given_a_backfilled_portfolio_when_read_again_then_the_stored_history_answers_without_the_chart(
    call: Call, user_id: str, coins_api: CoinsApiServer
) -> None:
    # Given a portfolio whose 30-day performance was read once, before any refresh
    now = datetime.now(UTC).replace(microsecond=0)
    bought_at = (now - timedelta(days=20)).isoformat()
    call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=buy("w", "1", price="2000", at=bought_at))
    first = call("GET", f"/portfolios/{user_id}/performance", sub=user_id, query={"period": "30d"})
    asked = len(chart_requests(coins_api))

    # When it is read again once its cached view is gone (and by a fresh container)
    wiring.portfolio_cache().invalidate_user(user_id)
    wiring.reset()
    again = call("GET", f"/portfolios/{user_id}/performance", sub=user_id, query={"period": "30d"})

    # Then the same series comes from the stored price history; DeFiLlama is not asked again
    assert asked == 1 and len(chart_requests(coins_api)) == asked
    assert again.json["series"] == first.json["series"]
    stored = wiring.price_history_store().series([WETH_COIN], Resolution.HOURLY, now - timedelta(days=30), now)
    assert len(stored[WETH_COIN]) >= 240
