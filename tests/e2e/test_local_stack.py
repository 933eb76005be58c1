"""The whole system over HTTP: `python -m local_stack` as a user runs it, offline, with real tokens.

Expected figures are worked out by hand from local_stack/recorded_prices.json:
  ETH (coingecko:ethereum) 3350.42, USDC on Ethereum 0.999912, USDC on Base 0.999975, ARB on Arbitrum 0.7421.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.e2e.stack_process import OFFLINE_QUIET, REPOSITORY_ROOT, local_stack_process, wait_until_healthy

STARTUP_TIMEOUT_S = 120
ZERO = "0x0000000000000000000000000000000000000000"
USDC_ETHEREUM = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
USDC_BASE = "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913"
ARB = "0x912ce59144191c1204e64559fe8253a0e49e6548"


@dataclass
class StackProcess:
    process: subprocess.Popen[bytes]
    url: str
    data_dir: Path
    log_path: Path
    environment: dict[str, str]

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def token(self, user_id: str, *, admin: bool = False) -> str:
        completed = subprocess.run(
            [sys.executable, "-m", "local_stack.token", user_id, *(["--admin"] if admin else [])],
            cwd=REPOSITORY_ROOT,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return completed.stdout.strip()

    def interrupt(self, timeout_s: float = 60) -> int:
        """Ctrl-C, as a user at the terminal."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=timeout_s)


@pytest.fixture(scope="module")
def stack(local_stack_redis_url, tmp_path_factory):
    directory = tmp_path_factory.mktemp("local-stack")
    variables = {**OFFLINE_QUIET, "REDIS_URL": local_stack_redis_url}
    with local_stack_process(directory, variables) as (process, url, log_path, environment):
        running = StackProcess(process, url, directory / "data", log_path, environment)
        wait_until_healthy(running.process, running.url, running.output, timeout_s=STARTUP_TIMEOUT_S)
        yield running


def _days_ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _history() -> list[dict[str, str]]:
    return [
        {
            "id": "t1",
            "type": "buy",
            "chain": "ethereum",
            "tokenAddress": ZERO,
            "amount": "2",
            "priceUsd": "2500",
            "timestamp": _days_ago(90),
        },
        {
            "id": "t2",
            "type": "buy",
            "chain": "ethereum",
            "tokenAddress": USDC_ETHEREUM,
            "amount": "1000",
            "priceUsd": "1",
            "timestamp": _days_ago(80),
        },
        {
            "id": "t3",
            "type": "bridge",
            "chain": "ethereum",
            "tokenAddress": ZERO,
            "amount": "0.5",
            "destinationChain": "arbitrum",
            "destinationTokenAddress": ZERO,
            "timestamp": _days_ago(60),
        },
        {
            "id": "t4",
            "type": "transfer_in",
            "chain": "arbitrum",
            "tokenAddress": ARB,
            "amount": "100",
            "timestamp": _days_ago(40),
        },
        {
            "id": "t5",
            "type": "buy",
            "chain": "base",
            "tokenAddress": USDC_BASE,
            "amount": "500",
            "priceUsd": "1",
            "timestamp": _days_ago(30),
        },
        {
            "id": "t6",
            "type": "sell",
            "chain": "ethereum",
            "tokenAddress": ZERO,
            "amount": "0.5",
            "priceUsd": "3000",
            "timestamp": _days_ago(10),
        },
    ]


def _client(stack: StackProcess, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=stack.url, headers=headers, timeout=60)


def test_a_user_records_a_cross_chain_history_and_reads_exact_figures_after_a_refresh(stack):
    # Given a user with a token from `python -m local_stack.token`
    user_id = f"e2e-{uuid.uuid4().hex[:10]}"
    client = _client(stack, stack.token(user_id))

    # When the history is recorded over HTTP (buys, a bridge to Arbitrum, an unpriced transfer in, a sell)
    recorded = client.post(f"/portfolios/{user_id}/transactions", json={"transactions": _history()})
    assert recorded.status_code == 201, recorded.text
    # And a refresh runs through the scheduler, the queue and the price updater
    refresh = client.post("/_local/refresh")
    assert refresh.status_code == 200, refresh.text
    report = refresh.json()
    assert report["started"] is True
    assert report["users"] >= 1
    assert report["messagesProcessed"] >= 1
    assert report["messagesFailed"] == 0
    # And a second refresh in the same window queues nothing, as the run lock wants, and says why
    again = client.post("/_local/refresh").json()
    assert again["started"] is False
    assert again["window"] == report["window"]
    assert "already refreshed" in again["note"]

    # Then the summary holds the hand-computed figures:
    # value  = 1 ETH*3350.42 + 0.5 ETH*3350.42 + 1000*0.999912 + 500*0.999975 + 100*0.7421 = 6599.7395
    # cost   = 1 ETH*2500 + 0.5 ETH*2500 (bridged, cost kept) + 1000 + 500 + 100 ARB at its market price
    #          then, 0.7421 (it came without a price) = 5324.21
    # realized = 0.5*(3000-2500) = 250; unrealized = (5025.63-3750) + (999.912-1000) + (499.9875-500) = 1275.5295
    summary = client.get(f"/portfolios/{user_id}")
    assert summary.status_code == 200, summary.text
    body = summary.json()
    assert body["userId"] == user_id
    assert body["totalValueUsd"] == "6599.74"
    assert body["costBasisUsd"] == "5324.21"
    assert body["realizedPnlUsd"] == "250"
    assert body["unrealizedPnlUsd"] == "1275.53"
    assert body["totalPnlUsd"] == "1525.53"
    assert body["investedUsd"] == "6574.21"
    assert body["roiPercent"] == "23.2"  # 1525.5295 / 6574.21
    assert body["unknownCostBasisValueUsd"] == "0"
    assert body["holdingCount"] == 5
    assert body["unpricedCount"] == 0
    assert body["stalePriceCount"] == 0
    by_chain = {entry["chain"]: entry["valueUsd"] for entry in body["breakdown"]["byChain"]}
    assert by_chain == {"ethereum": "4350.33", "arbitrum": "1749.42", "base": "499.99"}
    by_asset = {entry["asset"]: entry["valueUsd"] for entry in body["breakdown"]["byAsset"]}
    assert by_asset == {"eth": "5025.63", "usdc": "1499.9", "arb": "74.21"}

    # And the assets list one line per token and chain, by value
    assets = client.get(f"/portfolios/{user_id}/assets").json()["assets"]
    assert [(asset["symbol"], asset["chain"], asset["valueUsd"]) for asset in assets] == [
        ("ETH", "ethereum", "3350.42"),
        ("ETH", "arbitrum", "1675.21"),
        ("USDC", "ethereum", "999.91"),
        ("USDC", "base", "499.99"),
        ("ARB", "arbitrum", "74.21"),
    ]
    eth_on_ethereum = assets[0]
    assert eth_on_ethereum["amount"] == "1"
    assert eth_on_ethereum["priceUsd"] == "3350.42"
    assert eth_on_ethereum["costBasisUsd"] == "2500"
    assert eth_on_ethereum["unrealizedPnlUsd"] == "850.42"
    arb = assets[-1]
    assert arb["costBasisUsd"] == "74.21"
    assert arb["unknownCostAmount"] == "0"
    on_arbitrum = client.get(f"/portfolios/{user_id}/assets", params={"chain": "arbitrum"}).json()["assets"]
    assert [(asset["symbol"], asset["amount"]) for asset in on_arbitrum] == [("ETH", "0.5"), ("ARB", "100")]

    # And the transactions come newest first
    page = client.get(f"/portfolios/{user_id}/transactions").json()
    assert [transaction["id"] for transaction in page["transactions"]] == ["t6", "t5", "t4", "t3", "t2", "t1"]
    assert page["nextCursor"] is None

    # And the refresh left a point of history at today's value
    performance = client.get(f"/portfolios/{user_id}/performance", params={"period": "24h"})
    assert performance.status_code == 200, performance.text
    series = performance.json()["series"]
    assert series, performance.text
    assert series[-1]["valueUsd"] == "6599.74"

    # When a transaction is deleted (the Base USDC buy)
    deleted = client.delete(f"/portfolios/{user_id}/transactions/t5")
    assert deleted.status_code == 200, deleted.text

    # Then the next read already reflects it: 6599.7395 - 500*0.999975 = 6099.752
    after = client.get(f"/portfolios/{user_id}").json()
    assert after["totalValueUsd"] == "6099.75"
    assert after["investedUsd"] == "6074.21"
    assert after["holdingCount"] == 4

    # And the table's stream delivered the portfolio's changes to the cache invalidator, none to retry
    deadline = time.monotonic() + 10
    while "[stream] cache invalidator" not in stack.output() and time.monotonic() < deadline:
        time.sleep(0.2)
    delivered = [line for line in stack.output().splitlines() if "[stream] cache invalidator" in line]
    assert delivered, stack.output()[-4000:]
    assert all(", 0 to retry" in line for line in delivered), delivered


def test_a_token_opens_only_its_own_portfolio_and_no_token_opens_nothing(stack):
    # Given two users and an admin, each with a token
    owner, other = f"e2e-{uuid.uuid4().hex[:10]}", f"e2e-{uuid.uuid4().hex[:10]}"
    owner_client = _client(stack, stack.token(owner))
    other_client = _client(stack, stack.token(other))
    admin_client = _client(stack, stack.token(f"e2e-admin-{uuid.uuid4().hex[:6]}", admin=True))
    buy = {
        "id": "b1",
        "type": "buy",
        "chain": "ethereum",
        "tokenAddress": ZERO,
        "amount": "1",
        "priceUsd": "3000",
        "timestamp": _days_ago(1),
    }
    assert owner_client.post(f"/portfolios/{owner}/transactions", json=buy).status_code == 201

    # When someone else reads or writes the owner's portfolio, Then it is 403
    assert other_client.get(f"/portfolios/{owner}").status_code == 403
    sneaky = {**buy, "id": "b2"}
    assert other_client.post(f"/portfolios/{owner}/transactions", json=sneaky).status_code == 403
    # And without a token it is API Gateway's 401, on every route but /health
    anonymous = _client(stack)
    for path in (f"/portfolios/{owner}", f"/portfolios/{owner}/assets", f"/portfolios/{owner}/transactions"):
        response = anonymous.get(path)
        assert response.status_code == 401
        assert response.json() == {"message": "Unauthorized"}
    assert anonymous.get("/health").status_code == 200
    assert anonymous.get("/no/such/route").json() == {"message": "Not Found"}

    # And the admin may read it, and it still holds only the owner's own transaction
    page = admin_client.get(f"/portfolios/{owner}/transactions")
    assert page.status_code == 200
    assert [transaction["id"] for transaction in page.json()["transactions"]] == ["b1"]


def test_ctrl_c_stops_everything_and_exits_0(stack):
    # Runs last in this module: it ends the stack the other tests share.
    # When the user presses Ctrl-C
    exit_code = stack.interrupt()

    # Then the stack stops cleanly
    assert exit_code == 0, stack.output()[-4000:]
    assert "Stopped." in stack.output()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{stack.url}/health", timeout=2)
