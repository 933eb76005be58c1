"""The demo users (DEMO=1) pass the API's own validation and show what the demo promises."""

from __future__ import annotations

import json

import pytest
from portfolio import wiring

from local_stack.api_routes import api_routes
from local_stack.coins_api import CoinsApiServer
from local_stack.demo import DEMO_TRANSACTIONS, load_demo
from local_stack.functions import function_environment, load_handler
from local_stack.gateway import Gateway
from local_stack.http_events import IncomingRequest
from local_stack.jwt_auth import JwtAuthorizer
from local_stack.lambda_context import LocalLambdaContext

SECRET = "demo-test-signing-key-long-enough-for-hs256"


@pytest.fixture
def gateway(monkeypatch, settings, local_stack_redis_url):
    prices = CoinsApiServer().start()
    # The demo's user ids are fixed (alice, bob, carol): hence the Redis database of these tests only.
    environment = function_environment(
        aws_endpoint=settings.aws_endpoint_url or "",
        region=settings.aws_region,
        table_name=settings.table_name,
        redis_url=local_stack_redis_url,
        prices_api_url=prices.url,
    )
    environment.update(REDIS_SOCKET_TIMEOUT_MS="2000", REDIS_CONNECT_TIMEOUT_MS="2000")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    wiring.reset()
    api = load_handler("ApiFunction")
    yield Gateway(api, api_routes(), JwtAuthorizer(SECRET), lambda: LocalLambdaContext("api"))
    wiring.reset()
    prices.stop()


def test_every_demo_user_is_recorded_through_the_api_and_alice_spans_chains(gateway):
    # Given the demo data, When it is loaded through the gateway and the API function
    authorizer = JwtAuthorizer(SECRET)
    results = load_demo(gateway.dispatch, authorizer)

    # Then every user's history was accepted whole
    assert [(result.user_id, result.status, result.problem) for result in results] == [
        (user_id, 201, None) for user_id in DEMO_TRANSACTIONS
    ]

    # And alice shows what the demo is for: ETH on two chains after the bridge, USDC on three,
    # and an airdrop without a price counted apart from the P&L
    response = gateway.dispatch(
        IncomingRequest("GET", "/portfolios/alice", headers=[("Authorization", f"Bearer {authorizer.issue('alice')}")])
    )
    summary = json.loads(response.body)
    chains_by_asset = {
        entry["asset"]: sorted(chain["chain"] for chain in entry["chains"]) for entry in summary["breakdown"]["byAsset"]
    }
    assert chains_by_asset["eth"] == ["arbitrum", "ethereum"]
    assert chains_by_asset["usdc"] == ["arbitrum", "base", "ethereum"]
    # the airdrop came without a price: it carries the market price of its time
    response = gateway.dispatch(
        IncomingRequest(
            "GET",
            "/portfolios/alice/transactions",
            headers=[("Authorization", f"Bearer {authorizer.issue('alice')}")],
        )
    )
    airdrop = next(t for t in json.loads(response.body)["transactions"] if t["id"] == "alice-arb-airdrop")
    assert airdrop["priceSource"] == "market" and airdrop["priceUsd"] is not None
    assert summary["realizedPnlUsd"] != "0"
    assert summary["unpricedCount"] == 0
