"""Demo portfolios (DEMO=1): three users with history on several chains, recorded through the API itself,
each with a sample alert rule.

Every transaction and rule goes through the gateway and the API function (token, validation, overdraft
checks), exactly as a client's would. Recording is idempotent by transaction id, and a rule's id is
derived from the rule, so starting the demo twice against the same data changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from local_stack.http_events import HttpResponse, IncomingRequest
from local_stack.jwt_auth import JwtAuthorizer

ZERO = "0x0000000000000000000000000000000000000000"
USDC = {
    "ethereum": "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48",
    "arbitrum": "0xaf88d065e77c8cc2239327c5edb3a432268e5831",
    "base": "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913",
}
WBTC = "0x2260fac5e5542a773aa44fbcfedf7c193bc2c599"
ARB = "0x912ce59144191c1204e64559fe8253a0e49e6548"
OP = "0x4200000000000000000000000000000000000042"
USDT_BSC = "0x55d398326f99059ff775485246999027b3197955"
BONK = "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"
SOL = "So11111111111111111111111111111111111111112"
AAVE = "0x7fc66500c84a76ad7e9c93437bfc5ac33e2ddae9"
LINK = "0x514910771af9ca656af840dff83e8264ecf986ca"
PEPE = "0x6982508145454ce325ddbe47a25d4ec3d2311933"
STETH = "0xae7ab96520de3a18e5e111b5eaab095312d7fe84"

Dispatch = Callable[[IncomingRequest], HttpResponse]


def _tx(days_ago: int, tx_id: str, tx_type: str, chain: str, token: str, amount: str, **extra: str) -> dict[str, Any]:
    return {
        "daysAgo": days_ago,
        "id": tx_id,
        "type": tx_type,
        "chain": chain,
        "tokenAddress": token,
        "amount": amount,
        **extra,
    }


# Per user, in the API's own format; amounts and prices are decimal strings, days count back from now.
DEMO_TRANSACTIONS: dict[str, list[dict[str, Any]]] = {
    "alice": [
        _tx(90, "alice-eth-buy", "buy", "ethereum", ZERO, "2.5", priceUsd="2450.00", feeUsd="6.40"),
        _tx(80, "alice-wbtc-buy", "buy", "ethereum", WBTC, "0.08", priceUsd="61250.00", feeUsd="9.10"),
        _tx(75, "alice-usdc-eth", "buy", "ethereum", USDC["ethereum"], "2500", priceUsd="1.00"),
        _tx(
            60,
            "alice-eth-bridge",
            "bridge",
            "ethereum",
            ZERO,
            "0.8",
            destinationChain="arbitrum",
            destinationTokenAddress=ZERO,
            feeUsd="3.25",
        ),
        _tx(55, "alice-usdc-arb", "buy", "arbitrum", USDC["arbitrum"], "1200", priceUsd="1.00"),
        _tx(50, "alice-usdc-base", "buy", "base", USDC["base"], "750", priceUsd="1.00"),
        _tx(40, "alice-arb-airdrop", "transfer_in", "arbitrum", ARB, "625"),
        _tx(20, "alice-eth-sell", "sell", "ethereum", ZERO, "0.5", priceUsd="3620.00", feeUsd="4.80"),
    ],
    "bob": [
        _tx(70, "bob-sol-buy", "buy", "solana", SOL, "40", priceUsd="142.50"),
        _tx(65, "bob-bonk-buy", "buy", "solana", BONK, "25000000", priceUsd="0.0000215"),
        _tx(45, "bob-usdt-bsc", "buy", "bsc", USDT_BSC, "1500", priceUsd="1.00"),
        _tx(30, "bob-bnb-buy", "buy", "bsc", ZERO, "3", priceUsd="598.00", feeUsd="0.35"),
        _tx(25, "bob-op-gift", "transfer_in", "optimism", OP, "900"),
        _tx(15, "bob-sol-sell", "sell", "solana", SOL, "12", priceUsd="205.10"),
    ],
    "carol": [
        _tx(85, "carol-steth-buy", "buy", "ethereum", STETH, "4", priceUsd="2390.00", feeUsd="7.00"),
        _tx(70, "carol-aave-buy", "buy", "ethereum", AAVE, "30", priceUsd="165.00"),
        _tx(60, "carol-link-buy", "buy", "ethereum", LINK, "250", priceUsd="13.40"),
        _tx(40, "carol-pepe-buy", "buy", "ethereum", PEPE, "150000000", priceUsd="0.0000098"),
        _tx(30, "carol-pol-buy", "buy", "polygon", ZERO, "4000", priceUsd="0.52"),
        _tx(20, "carol-avax-buy", "buy", "avax", ZERO, "60", priceUsd="38.20"),
        _tx(10, "carol-aave-sell", "sell", "ethereum", AAVE, "12", priceUsd="335.00"),
    ],
}


# One sample rule per demo user, in the API's own format. Alice's holds at any ETH price of recent
# years: it fires on the demo's first refresh (GET /portfolios/alice/alerts then shows it fired).
DEMO_ALERTS: dict[str, dict[str, str]] = {
    "alice": {"kind": "price", "asset": "ETH", "above": "1000"},
    "bob": {"kind": "value_change", "thresholdPercent": "5", "window": "24h", "direction": "either"},
    "carol": {"kind": "price", "asset": "AAVE", "below": "100"},
}


@dataclass(frozen=True)
class DemoAlertResult:
    user_id: str
    status: int
    alert_id: str | None = None
    problem: str | None = None


@dataclass(frozen=True)
class DemoUserResult:
    user_id: str
    status: int
    recorded: int
    problem: str | None = None


def demo_body(entries: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    transactions = []
    for entry in entries:
        transaction = {key: value for key, value in entry.items() if key != "daysAgo"}
        timestamp = (now - timedelta(days=entry["daysAgo"])).replace(microsecond=0)
        transaction["timestamp"] = timestamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        transactions.append(transaction)
    return {"transactions": transactions}


def post_as(dispatch: Dispatch, authorizer: JwtAuthorizer, user_id: str, path: str, body: Any) -> HttpResponse:
    """POST `body` as JSON to `path` through the gateway, with a token of `user_id`'s own."""
    return dispatch(
        IncomingRequest(
            method="POST",
            raw_path=path,
            headers=[
                ("Authorization", f"Bearer {authorizer.issue(user_id, ttl_s=300)}"),
                ("Content-Type", "application/json"),
                ("Host", "127.0.0.1"),
                ("User-Agent", "local-stack-demo"),
            ],
            body=json.dumps(body).encode(),
        )
    )


def load_demo(dispatch: Dispatch, authorizer: JwtAuthorizer, now: datetime | None = None) -> list[DemoUserResult]:
    """Record every demo user's history through the API; returns what each POST answered."""
    now = now or datetime.now(UTC)
    results = []
    for user_id, entries in DEMO_TRANSACTIONS.items():
        response = post_as(
            dispatch, authorizer, user_id, f"/portfolios/{user_id}/transactions", demo_body(entries, now)
        )
        ok = response.status in (200, 201)
        results.append(
            DemoUserResult(
                user_id=user_id,
                status=response.status,
                recorded=len(entries) if ok else 0,
                problem=None if ok else response.body.decode(errors="replace")[:500],
            )
        )
    return results


def load_demo_alerts(dispatch: Dispatch, authorizer: JwtAuthorizer) -> list[DemoAlertResult]:
    """Set every demo user's sample alert rule through the API (201 the first time, 200 after)."""
    results = []
    for user_id, rule in DEMO_ALERTS.items():
        response = post_as(dispatch, authorizer, user_id, f"/portfolios/{user_id}/alerts", rule)
        ok = response.status in (200, 201)
        results.append(
            DemoAlertResult(
                user_id=user_id,
                status=response.status,
                alert_id=json.loads(response.body)["alertId"] if ok else None,
                problem=None if ok else response.body.decode(errors="replace")[:500],
            )
        )
    return results
