"""Reads through the real handler: cache-aside over DynamoDB (moto's server) and the real Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from portfolio import wiring

from tests.integration.api.conftest import USDC, WETH, Call, DynamoCalls, buy, sell


@pytest.fixture
def holder(call: Call, user_id: str) -> str:
    """A user holding 1.5 WETH (bought at 2000, priced 3000) and 50 USDC, recorded through the API."""
    answer = call(
        "POST",
        f"/portfolios/{user_id}/transactions",
        sub=user_id,
        body={
            "transactions": [
                buy("weth-1", "1.5"),
                buy("usdc-1", "50", price="1", token=USDC, at="2024-01-02T00:00:00Z"),
            ]
        },
    )
    assert answer.status == 201
    return user_id


def forget_cached_views(user_id: str) -> None:
    wiring.portfolio_cache().invalidate_user(user_id)


def test_given_no_token_when_checking_health_then_ok(call: Call) -> None:
    answer = call("GET", "/health", sub=None)

    assert answer.status == 200
    assert answer.json == {"status": "ok"}


def test_given_an_uncached_portfolio_when_read_then_one_dynamodb_read_computes_it_exactly(
    call: Call, holder: str, dynamo_calls: DynamoCalls
) -> None:
    forget_cached_views(holder)
    dynamo_calls.reset()

    answer = call("GET", f"/portfolios/{holder}", sub=holder)

    assert answer.status == 200
    assert dynamo_calls.operations == ["GetItem"]  # the positions; the prices come from Redis
    summary = answer.json
    assert Decimal(summary["totalValueUsd"]) == Decimal("4550")
    assert Decimal(summary["costBasisUsd"]) == Decimal("3050")
    assert Decimal(summary["unrealizedPnlUsd"]) == Decimal("1500")
    assert answer.headers["content-type"] == "application/json"
    assert "no-cache" in answer.headers["cache-control"]


def test_given_a_cached_portfolio_when_read_again_then_the_same_bytes_come_back_without_dynamodb(
    call: Call, holder: str, dynamo_calls: DynamoCalls
) -> None:
    forget_cached_views(holder)
    first = call("GET", f"/portfolios/{holder}", sub=holder)
    dynamo_calls.reset()

    second = call("GET", f"/portfolios/{holder}", sub=holder)

    assert dynamo_calls.operations == []
    assert second.raw_body == first.raw_body
    assert second.headers["etag"] == first.headers["etag"]


def test_given_a_write_when_reading_next_then_the_warmed_cache_answers_the_new_state(
    call: Call, holder: str, dynamo_calls: DynamoCalls
) -> None:
    call("POST", f"/portfolios/{holder}/transactions", sub=holder, body=sell("weth-2", "0.5", price="2500"))
    dynamo_calls.reset()

    answer = call("GET", f"/portfolios/{holder}", sub=holder)

    assert dynamo_calls.operations == []
    assert Decimal(answer.json["realizedPnlUsd"]) == Decimal("250")
    assert Decimal(answer.json["totalValueUsd"]) == Decimal("3050")


def test_given_the_etag_of_the_last_read_when_reading_with_if_none_match_then_304_without_body(
    call: Call, holder: str
) -> None:
    first = call("GET", f"/portfolios/{holder}", sub=holder)

    again = call("GET", f"/portfolios/{holder}", sub=holder, headers={"If-None-Match": first.headers["etag"]})

    assert again.status == 304
    assert again.raw_body == ""
    assert again.headers["etag"] == first.headers["etag"]


def test_given_an_old_etag_when_the_portfolio_changed_then_the_new_body_is_sent(call: Call, holder: str) -> None:
    old = call("GET", f"/portfolios/{holder}", sub=holder)
    call("POST", f"/portfolios/{holder}/transactions", sub=holder, body=buy("weth-3", "1"))

    answer = call("GET", f"/portfolios/{holder}", sub=holder, headers={"If-None-Match": old.headers["etag"]})

    assert answer.status == 200
    assert answer.headers["etag"] != old.headers["etag"]


@pytest.mark.parametrize("cached", [False, True], ids=["uncached", "cached"])
def test_given_filters_when_listing_assets_then_only_matching_holdings_in_the_asked_order(
    call: Call, holder: str, dynamo_calls: DynamoCalls, cached: bool
) -> None:
    query = {"chain": "ethereum", "minValueUsd": "100", "sort": "value", "order": "desc"}
    forget_cached_views(holder)
    if cached:
        call("GET", f"/portfolios/{holder}/assets", sub=holder, query=query)
    dynamo_calls.reset()

    answer = call("GET", f"/portfolios/{holder}/assets", sub=holder, query=query)

    assert answer.status == 200
    assert [asset["tokenAddress"] for asset in answer.json["assets"]] == [WETH]
    assert dynamo_calls.operations == ([] if cached else ["GetItem"])


def test_given_symbol_sort_ascending_when_listing_assets_then_alphabetical(call: Call, holder: str) -> None:
    answer = call("GET", f"/portfolios/{holder}/assets", sub=holder, query={"sort": "symbol", "order": "asc"})

    symbols = [asset["symbol"] for asset in answer.json["assets"]]
    assert symbols == sorted(symbols, key=str.casefold)
    assert len(symbols) == 2


@pytest.mark.parametrize("cached", [False, True], ids=["uncached", "cached"])
def test_given_token_price_history_when_reading_performance_then_the_holding_is_valued_at_each_moment(
    call: Call, user_id: str, cached: bool, dynamo_calls: DynamoCalls
) -> None:
    # Given 1 WETH bought at 1000 eight days ago, and the sweeps' WETH prices since the week began
    # (so the stored history covers the period and DeFiLlama's chart is not needed): 1000 until 48
    # hours ago, 1200 an hour ago
    now = datetime.now(UTC)
    bought_at = (now - timedelta(days=8)).isoformat()
    call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=buy("w", "1", price="1000", at=bought_at))
    history = wiring.price_history_store()
    for hours_ago, price in ((7 * 24 - 1, "1000"), (48, "1000"), (1, "1200")):
        moment = (now - timedelta(hours=hours_ago)).replace(minute=0, second=0, microsecond=0)
        history.record({f"ethereum:{WETH}": Decimal(price)}, moment)
    if cached:
        call("GET", f"/portfolios/{user_id}/performance", sub=user_id, query={"period": "7d"})
    dynamo_calls.reset()

    # When the 7-day performance is read
    answer = call("GET", f"/portfolios/{user_id}/performance", sub=user_id, query={"period": "7d"})

    # Then it goes from 1000 to 1200, all of it market P&L
    assert answer.status == 200
    view = answer.json
    assert view["period"] == "7d"
    assert Decimal(view["startValueUsd"]) == Decimal("1000")
    assert Decimal(view["endValueUsd"]) == Decimal("1200")
    assert Decimal(view["pnlChangeUsd"]) == Decimal("200")
    assert Decimal(view["netDepositsUsd"]) == Decimal("0")
    # And, uncached, it read the positions and one token's prices (no transaction fell in the period)
    assert dynamo_calls.operations == ([] if cached else ["GetItem", "Query"])


def test_given_a_buy_within_the_period_when_reading_performance_then_it_counts_as_a_deposit_not_as_pnl(
    call: Call, user_id: str
) -> None:
    # Given 1 WETH priced 1000 two days ago, bought at 1000 a day ago, priced 1100 an hour ago
    now = datetime.now(UTC)
    history = wiring.price_history_store()
    history.record({f"ethereum:{WETH}": Decimal("1000")}, (now - timedelta(hours=48)).replace(minute=0, second=0))
    call(
        "POST",
        f"/portfolios/{user_id}/transactions",
        sub=user_id,
        body=buy("w", "1", price="1000", at=(now - timedelta(hours=24)).isoformat()),
    )
    history.record({f"ethereum:{WETH}": Decimal("1000")}, (now - timedelta(hours=23)).replace(minute=0, second=0))
    history.record({f"ethereum:{WETH}": Decimal("1100")}, (now - timedelta(hours=1)).replace(minute=0, second=0))

    # When the 7-day performance is read
    view = call("GET", f"/portfolios/{user_id}/performance", sub=user_id, query={"period": "7d"}).json

    # Then the series starts at the buy, and the change is 100 of P&L with no deposit after it
    assert Decimal(view["startValueUsd"]) == Decimal("1000")
    assert Decimal(view["endValueUsd"]) == Decimal("1100")
    assert Decimal(view["pnlChangeUsd"]) == Decimal("100")
    assert len(view["series"]) == 2


def test_given_several_transactions_when_paging_then_newest_first_and_the_cursor_reaches_the_rest(
    call: Call, holder: str
) -> None:
    call("POST", f"/portfolios/{holder}/transactions", sub=holder, body=sell("weth-2", "0.5"))
    path = f"/portfolios/{holder}/transactions"

    first = call("GET", path, sub=holder, query={"limit": "2"})
    second = call("GET", path, sub=holder, query={"limit": "2", "cursor": first.json["nextCursor"]})

    assert [t["id"] for t in first.json["transactions"]] == ["weth-2", "usdc-1"]
    assert [t["id"] for t in second.json["transactions"]] == ["weth-1"]
    assert second.json["nextCursor"] is None


@pytest.mark.parametrize("cached", [False, True], ids=["uncached", "cached"])
def test_given_a_type_filter_when_listing_transactions_then_only_that_type(
    call: Call, holder: str, cached: bool, dynamo_calls: DynamoCalls
) -> None:
    call("POST", f"/portfolios/{holder}/transactions", sub=holder, body=sell("weth-2", "0.5"))
    path = f"/portfolios/{holder}/transactions"
    if cached:
        call("GET", path, sub=holder, query={"type": "sell"})
    dynamo_calls.reset()

    answer = call("GET", path, sub=holder, query={"type": "sell"})

    assert [t["id"] for t in answer.json["transactions"]] == ["weth-2"]
    assert answer.json["transactions"][0]["amount"] == "0.5"
    assert (dynamo_calls.operations == []) is cached


def test_given_reads_of_the_summary_and_of_the_asset_list_then_the_refresh_learns_who_reads_which(
    call: Call, holder: str, user_id: str
) -> None:
    # Given another user who only reads the summary
    other = f"{user_id}-summary-only"
    since = datetime.now(UTC) - timedelta(minutes=1)

    # When the holder lists their assets and the other reads their summary
    assert call("GET", f"/portfolios/{holder}/assets", sub=holder).status == 200
    assert call("GET", f"/portfolios/{other}", sub=other).status == 200

    # Then both are active, and only the holder is known to read the asset list (theirs is warmed each cycle)
    activity = wiring.activity_log()
    active = {reader for page in activity.active_since(since) for reader in page}
    assert {holder, other} <= active
    readers = activity.asset_readers_since(since)
    assert holder in readers
    assert other not in readers
