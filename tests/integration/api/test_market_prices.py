"""Transactions sent without a price: valued at the market price of their time, in a few calls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from local_stack.coins_api import CoinsApiServer
from tests.integration.api.conftest import USDC, WETH, Call

UNPRICED_TOKEN = "0x1111111111111111111111111111111111111111"


def unpriced(transaction_id: str, kind: str, amount: str, *, token: str = WETH, at: str = "2024-01-01T00:00:00Z"):
    return {
        "id": transaction_id,
        "type": kind,
        "chain": "ethereum",
        "tokenAddress": token,
        "amount": amount,
        "timestamp": at,
    }


def test_given_a_buy_and_a_sale_without_prices_when_recorded_then_they_carry_the_market_price_of_their_time(
    call: Call, coins_api: CoinsApiServer, user_id: str
) -> None:
    # Given the market price of WETH at 3000
    # When a buy and a sale are sent without a price
    batch = [unpriced("b1", "buy", "2"), unpriced("s1", "sell", "0.5", at="2024-02-01T00:00:00Z")]
    recorded = call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body={"transactions": batch})

    # Then both are stored at that price, marked as market-priced, in one call to the coins API
    assert recorded.status == 201
    assert [(t["id"], t["priceUsd"], t["priceSource"]) for t in recorded.json["transactions"]] == [
        ("b1", "3000", "market"),
        ("s1", "3000", "market"),
    ]
    assert [request.path for request in coins_api.requests if "prices/current" not in request.path] == [
        "/batchHistorical"
    ]
    summary = call("GET", f"/portfolios/{user_id}", sub=user_id).json
    assert summary["investedUsd"] == "6000"


def test_given_an_import_of_many_unpriced_transactions_when_recorded_then_they_are_priced_in_a_few_calls(
    call: Call, coins_api: CoinsApiServer, user_id: str
) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    batch = [
        unpriced(
            f"b{index}", "buy", "1", token=WETH if index % 2 else USDC, at=(start + timedelta(days=index)).isoformat()
        )
        for index in range(150)
    ]

    recorded = call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body={"transactions": batch})

    assert recorded.status == 201
    assert all(t["priceSource"] == "market" for t in recorded.json["transactions"])
    historical = [request for request in coins_api.requests if request.path == "/batchHistorical"]
    assert len(historical) == 2  # 150 (coin, moment) pairs, 100 a call


def test_given_a_sale_of_a_token_the_market_does_not_price_when_sent_without_a_price_then_it_is_refused(
    call: Call, user_id: str
) -> None:
    batch = [unpriced("b1", "buy", "5", token=UNPRICED_TOKEN), unpriced("s1", "sell", "1", token=UNPRICED_TOKEN)]

    refused = call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body={"transactions": batch})

    assert refused.status == 400
    assert refused.error["details"]["field"] == "transactions[1].priceUsd"
    assert call("GET", f"/portfolios/{user_id}/transactions", sub=user_id).json["transactions"] == []


def test_given_a_buy_of_a_token_the_market_does_not_price_when_sent_without_a_price_then_its_cost_is_unknown(
    call: Call, user_id: str
) -> None:
    recorded = call(
        "POST",
        f"/portfolios/{user_id}/transactions",
        sub=user_id,
        body=unpriced("b1", "buy", "5", token=UNPRICED_TOKEN),
    )

    assert recorded.status == 201
    assert recorded.json["transactions"][0]["priceUsd"] is None
    assets = call("GET", f"/portfolios/{user_id}/assets", sub=user_id).json["assets"]
    assert [(a["tokenAddress"], a["unknownCostAmount"]) for a in assets] == [(UNPRICED_TOKEN, "5")]


def test_given_the_coins_api_down_when_unpriced_transactions_are_sent_then_503_and_nothing_is_stored(
    call: Call, coins_api: CoinsApiServer, user_id: str
) -> None:
    coins_api.fail_always(503)

    refused = call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=unpriced("b1", "buy", "1"))

    assert refused.status == 503 and int(refused.headers["retry-after"]) > 0
    coins_api.heal()
    assert call("GET", f"/portfolios/{user_id}/transactions", sub=user_id).json["transactions"] == []


def test_given_staking_rewards_sent_without_a_price_when_recorded_then_their_market_value_is_income(
    call: Call, user_id: str
) -> None:
    # Given 0.5 WETH of rewards received when WETH was worth 3000
    reward = unpriced("r1", "income", "0.5")

    # When recorded without a price
    recorded = call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=reward)

    # Then it is income of 1500, not money invested, and a lot costing that much
    assert recorded.json["transactions"][0]["priceSource"] == "market"
    summary = call("GET", f"/portfolios/{user_id}", sub=user_id).json
    assert (summary["incomeUsd"], summary["investedUsd"], summary["costBasisUsd"]) == ("1500", "0", "1500")
    assert summary["realizedPnlUsd"] == "1500"


def test_given_one_of_two_price_calls_failing_when_an_import_is_sent_without_prices_then_503_and_nothing_stored(
    call: Call, coins_api: CoinsApiServer, user_id: str
) -> None:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    batch = [unpriced(f"b{index}", "buy", "1", at=(start + timedelta(days=index)).isoformat()) for index in range(150)]
    coins_api.fail_next(1, status=503)

    refused = call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body={"transactions": batch})

    assert refused.status == 503
    assert call("GET", f"/portfolios/{user_id}/transactions", sub=user_id).json["transactions"] == []


def test_given_a_market_priced_record_when_it_is_sent_back_as_listed_then_it_is_taken_as_it_is(
    call: Call, user_id: str
) -> None:
    call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=unpriced("b1", "buy", "1"))
    (listed,) = call("GET", f"/portfolios/{user_id}/transactions", sub=user_id).json["transactions"]

    again = call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=listed | {"id": "b1-copy"})

    assert again.status == 201
    assert again.json["transactions"][0]["priceUsd"] == listed["priceUsd"]


def test_given_a_buy_recorded_at_the_market_price_when_sent_again_as_first_sent_or_as_listed_then_200_unchanged(
    call: Call, user_id: str
) -> None:
    # Given a buy sent without a price, stored at the market's 3000 (priceSource market)
    path = f"/portfolios/{user_id}/transactions"
    first = call("POST", path, sub=user_id, body=unpriced("b1", "buy", "2"))
    assert first.json["transactions"][0]["priceSource"] == "market"

    # When it is sent again without a price, and again as the list answered it
    [listed] = call("GET", f"{path}", sub=user_id).json["transactions"]
    as_sent = call("POST", path, sub=user_id, body=unpriced("b1", "buy", "2"))
    as_listed = call("POST", path, sub=user_id, body=listed)

    # Then neither differs from what is stored: what the server filled in is not the client's content
    assert (as_sent.status, as_listed.status) == (200, 200)
    assert as_sent.json == as_listed.json == first.json


def test_given_a_buy_recorded_at_the_market_price_when_sent_again_with_a_price_of_its_own_then_409(
    call: Call, user_id: str
) -> None:
    # Given a buy stored at the market price
    path = f"/portfolios/{user_id}/transactions"
    call("POST", path, sub=user_id, body=unpriced("b1", "buy", "2"))

    # When the same id comes with a price the client chose
    answer = call("POST", path, sub=user_id, body=unpriced("b1", "buy", "2") | {"priceUsd": "2500"})

    # Then that is other content
    assert answer.status == 409
    assert answer.error["details"]["fields"] == ["priceUsd", "priceSource"]
