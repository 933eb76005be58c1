"""Through the API: cost basis pooled per asset, fees paid in a token, withdrawals, same-moment order."""

from __future__ import annotations

from decimal import Decimal

from local_stack.coins_api import CoinsApiServer
from tests.integration.api.conftest import Call, buy, sell

EVM_NATIVE = "0x0000000000000000000000000000000000000000"
UNI = "0x1f9840a85d5af5bf1d1762f925bdaddc4201f984"


def test_given_eth_on_two_chains_when_the_scope_becomes_asset_then_the_sale_realizes_against_the_pool(
    call: Call, user_id: str
) -> None:
    # Given 1 ETH bought on Ethereum at 1000 and 1 on Arbitrum at 3000, and 1 sold on Arbitrum at 2500
    path = f"/portfolios/{user_id}/transactions"
    batch = [
        buy("eth-1", "1", price="1000", token=EVM_NATIVE, at="2024-01-01T00:00:00Z"),
        buy("arb-1", "1", price="3000", token=EVM_NATIVE, at="2024-01-02T00:00:00Z") | {"chain": "arbitrum"},
        sell("arb-2", "1", price="2500", token=EVM_NATIVE, at="2024-01-03T00:00:00Z") | {"chain": "arbitrum"},
    ]
    assert call("POST", path, sub=user_id, body={"transactions": batch}).status == 201
    per_chain = call("GET", f"/portfolios/{user_id}", sub=user_id).json

    # When the cost basis is pooled per asset
    answer = call("PUT", f"/portfolios/{user_id}/settings", sub=user_id, body={"costBasisScope": "asset"})

    # Then the sale took the earliest ETH anywhere: +1500 instead of -500
    assert answer.status == 200
    assert answer.json["costBasisScope"] == "asset"
    pooled = call("GET", f"/portfolios/{user_id}", sub=user_id).json
    assert Decimal(per_chain["realizedPnlUsd"]) == Decimal(-500)
    assert Decimal(pooled["realizedPnlUsd"]) == Decimal(1500)
    assert pooled["costBasisScope"] == "asset"
    # And the ETH still on Ethereum now carries the lot left in the pool, Arbitrum's 3000
    (held,) = call("GET", f"/portfolios/{user_id}/assets", sub=user_id).json["assets"]
    assert (held["chain"], Decimal(held["costBasisUsd"])) == ("ethereum", Decimal(3000))


def test_given_an_unknown_scope_when_changing_settings_then_400_naming_it(call: Call, user_id: str) -> None:
    answer = call("PUT", f"/portfolios/{user_id}/settings", sub=user_id, body={"costBasisScope": "wallet"})

    assert answer.status == 400
    assert answer.error["details"]["field"] == "costBasisScope"


def test_given_gas_paid_in_eth_without_its_value_when_recorded_then_the_market_values_it_into_the_cost(
    call: Call, coins_api: CoinsApiServer, user_id: str
) -> None:
    # Given ETH at 2000 on the market, and 1 ETH held
    coins_api.set_price("coingecko:ethereum", "2000", symbol="ETH")
    path = f"/portfolios/{user_id}/transactions"
    call("POST", path, sub=user_id, body=buy("eth-1", "1", price="1000", token=EVM_NATIVE))

    # When 100 UNI are bought at 5 paying 0.01 ETH of gas, without saying what the gas was worth
    uni = buy("uni-1", "100", price="5", token=UNI, at="2024-01-02T00:00:00Z")
    recorded = call("POST", path, sub=user_id, body=uni | {"feeToken": EVM_NATIVE, "feeAmount": "0.01"})

    # Then the gas is valued at the market (20) and is part of the UNI cost, and the ETH left at cost
    assert recorded.status == 201, recorded.json
    assert Decimal(recorded.json["transactions"][0]["feeUsd"]) == Decimal(20)
    assets = {a["symbol"]: a for a in call("GET", f"/portfolios/{user_id}/assets", sub=user_id).json["assets"]}
    assert Decimal(assets["UNI"]["costBasisUsd"]) == Decimal(520)
    assert Decimal(assets["ETH"]["amount"]) == Decimal("0.99")
    assert Decimal(assets["ETH"]["costBasisUsd"]) == Decimal(990)


def test_given_a_fee_token_without_an_amount_when_recorded_then_400_naming_it(call: Call, user_id: str) -> None:
    answer = call(
        "POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=buy("b", "1") | {"feeToken": EVM_NATIVE}
    )

    assert answer.status == 400
    assert "feeAmount" in answer.error["message"]


def test_given_more_gas_than_held_when_recorded_then_422_naming_the_fee(call: Call, user_id: str) -> None:
    body = buy("uni-1", "100", price="5", token=UNI) | {"feeToken": EVM_NATIVE, "feeAmount": "0.01", "feeUsd": "20"}

    answer = call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=body)

    assert answer.status == 422
    assert answer.error["details"]["field"] == "feeAmount"


def test_given_a_transfer_out_without_a_price_when_recorded_then_the_gain_that_left_is_reported(
    call: Call, user_id: str
) -> None:
    # Given 2 WETH bought at 1000 (the market is at 3000)
    path = f"/portfolios/{user_id}/transactions"
    call("POST", path, sub=user_id, body=buy("b", "2", price="1000"))

    # When 1 WETH is sent out without a price
    out = buy("out", "1", at="2024-01-02T00:00:00Z") | {"type": "transfer_out", "priceUsd": None}
    recorded = call("POST", path, sub=user_id, body=out)

    # Then it is valued at the market, and the ROI stays where it was with the gain reported
    assert recorded.json["transactions"][0]["priceSource"] == "market"
    summary = call("GET", f"/portfolios/{user_id}", sub=user_id).json
    assert Decimal(summary["investedUsd"]) == Decimal(1000)
    assert Decimal(summary["roiPercent"]) == Decimal(200)
    assert Decimal(summary["withdrawnGainUsd"]) == Decimal(2000)


def test_given_a_sale_and_its_buy_at_the_same_moment_when_sent_in_that_order_then_they_count_in_that_order(
    call: Call, user_id: str
) -> None:
    # Given a buy and a sale of the same moment, the sale's id sorting first
    moment = "2024-03-01T12:00:00Z"
    batch = [buy("z-buy", "1", price="1000", at=moment), sell("a-sell", "1", price="1200", at=moment)]

    # When they are sent buy first
    recorded = call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body={"transactions": batch})

    # Then they count in the order sent: the sale takes the coin the buy brought
    assert recorded.status == 201, recorded.json
    first, second = recorded.json["transactions"]
    assert first["sequence"] < second["sequence"]
    summary = call("GET", f"/portfolios/{user_id}", sub=user_id).json
    assert Decimal(summary["realizedPnlUsd"]) == Decimal(200)

    # And a later request's transactions of the same moment come after both
    later = call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=buy("0-buy", "1", at=moment))
    assert later.json["transactions"][0]["sequence"] > second["sequence"]
    assert call("GET", f"/portfolios/{user_id}", sub=user_id).json["holdingCount"] == 1


def test_given_the_coins_api_down_when_a_transfer_out_is_sent_without_a_price_then_it_is_recorded_at_cost(
    call: Call, coins_api: CoinsApiServer, user_id: str
) -> None:
    # Given 2 WETH bought at 1000, and the coins API failing
    path = f"/portfolios/{user_id}/transactions"
    call("POST", path, sub=user_id, body=buy("b", "2", price="1000"))
    coins_api.fail_always(503)

    # When 1 WETH is sent out without a price
    out = buy("out", "1", at="2024-01-02T00:00:00Z") | {"type": "transfer_out", "priceUsd": None}
    recorded = call("POST", path, sub=user_id, body=out)

    # Then it is recorded at cost all the same, with no gain known to have left with it
    assert recorded.status == 201, recorded.json
    assert recorded.json["transactions"][0].get("priceUsd") is None
    coins_api.heal()
    summary = call("GET", f"/portfolios/{user_id}", sub=user_id).json
    assert (Decimal(summary["withdrawnCostUsd"]), Decimal(summary["withdrawnGainUsd"])) == (1000, 0)
