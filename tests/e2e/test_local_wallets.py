"""Wallet sync in the local stack: `python -m local_stack` with DEMO=1 and no RPC_URL_*, over HTTP.

The stack starts its own anvil (chain id 1) and Solana fake, puts the demo wallets' holdings there,
links them through the API and refreshes. This test then moves coins out of the Ethereum demo wallet
on that same anvil (found through the startup banner) and sees a forced refresh record it, while an
ordinary refresh inside a window that already ran records nothing.

Expected figures: the demo wallet holds 3 ETH and 1,500 DEMO (priced $2.50 by the offline prices);
alice's own history leaves her 1.2 ETH on Ethereum (2.5 bought, 0.8 bridged away, 0.5 sold); the
recorded ETH price is 3350.42.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from local_stack.demo_wallets import (
    DEMO_ERC20_AMOUNT,
    DEMO_ETH,
    DEMO_EVM_ADDRESS,
    DEMO_EVM_USER,
    DEMO_SOL,
    DEMO_SOLANA_ADDRESS,
    DEMO_SOLANA_USDC,
    DEMO_SOLANA_USER,
    SOL_MINT,
    USDC_SOLANA_MINT,
)
from local_stack.evm_node import AnvilNode
from local_stack.jwt_auth import JwtAuthorizer
from local_stack.solana_rpc import SolanaRpcServer
from tests.e2e.stack_process import local_stack_process

STARTUP_TIMEOUT_S = 120
READY_LINE = "Local stack ready at "
SECRET = "local-wallets-e2e-signing-key-long-enough-for-hs256"
ETH = "0x0000000000000000000000000000000000000000"
ETH_PRICE = Decimal("3350.42")
DEMO_PRICE = Decimal("2.5")
ALICE_OWN_ETH = Decimal("1.2")
WEI = 10**18


@dataclass
class WalletStack:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def banner_url(self, label: str) -> str:
        """The URL the startup banner gives for one part ("Ethereum", "Solana")."""
        found = re.search(rf"^  {label}\s+(http://127\.0\.0\.1:\d+)\s", self.output(), re.MULTILINE)
        assert found, f"no {label} line in the banner:\n{self.output()[-3000:]}"
        return found.group(1)


def _wait_until_ready(stack: WalletStack) -> None:
    """Until the banner is out: with DEMO=1, /health answers before the demo is loaded."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if stack.process.poll() is not None:
            pytest.fail(f"the local stack exited with {stack.process.returncode}:\n{stack.output()[-4000:]}")
        if READY_LINE in stack.output():
            return
        time.sleep(0.1)
    pytest.fail(f"the local stack was not ready in {STARTUP_TIMEOUT_S}s:\n{stack.output()[-4000:]}")


@contextmanager
def _running_stack(directory: Path, redis_url: str, **variables: str) -> Iterator[WalletStack]:
    """`python -m local_stack` with DEMO=1, offline prices and no RPC_URL_* but `variables`; killed if still up."""
    settings = {
        "DEMO": "1",
        "OFFLINE_PRICES": "1",
        "REDIS_URL": redis_url,
        "REFRESH_INTERVAL_SECONDS": "86400",
        "LOCAL_JWT_SECRET": SECRET,
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        **variables,
    }
    no_node_urls = lambda name: name.startswith("RPC_URL_")  # noqa: E731
    with local_stack_process(directory, settings, also_drop=no_node_urls) as (process, url, log_path, _):
        running = WalletStack(process, url, log_path)
        _wait_until_ready(running)
        yield running


@pytest.fixture(scope="module")
def stack(local_wallets_redis_url, tmp_path_factory):
    with _running_stack(tmp_path_factory.mktemp("local-wallets"), local_wallets_redis_url) as running:
        yield running


def _client(stack: WalletStack, user_id: str) -> httpx.Client:
    token = JwtAuthorizer(SECRET).issue(user_id)
    return httpx.Client(base_url=stack.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _chain_transactions(client: httpx.Client, user_id: str) -> list[dict]:
    response = client.get(f"/portfolios/{user_id}/transactions", params={"limit": 100})
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["nextCursor"] is None
    return [transaction for transaction in page["transactions"] if transaction["source"] == "chain"]


def _wallet_amounts(transactions: list[dict], wallet_id: str) -> dict[str, Decimal]:
    """Per token, what the wallet's chain transactions add up to."""
    amounts: dict[str, Decimal] = defaultdict(Decimal)
    for transaction in transactions:
        assert transaction["walletId"] == wallet_id
        sign = {"transfer_in": 1, "transfer_out": -1}[transaction["type"]]
        amounts[transaction["tokenAddress"]] += sign * Decimal(transaction["amount"])
    return dict(amounts)


def _only_wallet(client: httpx.Client, user_id: str) -> dict:
    response = client.get(f"/portfolios/{user_id}/wallets")
    assert response.status_code == 200, response.text
    wallets = response.json()["wallets"]
    assert len(wallets) == 1, wallets
    return wallets[0]


def _assets(client: httpx.Client, user_id: str, chain: str) -> dict[str, dict]:
    response = client.get(f"/portfolios/{user_id}/assets", params={"chain": chain})
    assert response.status_code == 200, response.text
    return {asset["tokenAddress"]: asset for asset in response.json()["assets"]}


def _refresh(stack: WalletStack, *, force: bool) -> dict:
    response = httpx.post(f"{stack.url}/_local/refresh", params={"force": "true"} if force else None, timeout=60)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["messagesFailed"] == 0, report
    return report


def test_the_demo_wallet_is_synced_from_the_local_anvil_and_a_forced_refresh_records_what_moved(stack):
    alice = _client(stack, DEMO_EVM_USER)

    # Given the stack started with DEMO=1: alice's demo wallet is listed, synced at a block of the local anvil
    wallet = _only_wallet(alice, DEMO_EVM_USER)
    assert wallet["address"].lower() == DEMO_EVM_ADDRESS
    assert wallet["label"] == "Demo wallet"
    [ethereum] = wallet["chains"]
    assert ethereum["chain"] == "ethereum"
    assert ethereum["status"] == "ok", ethereum
    assert ethereum["error"] is None
    assert isinstance(ethereum["blockNumber"], int)
    assert ethereum["blockNumber"] > 0
    first_block = ethereum["blockNumber"]

    # And its ETH and DEMO are in alice's portfolio as chain transactions, exactly, priced at the market
    transactions = _chain_transactions(alice, DEMO_EVM_USER)
    assert {transaction["type"] for transaction in transactions} == {"transfer_in"}
    amounts = _wallet_amounts(transactions, wallet["walletId"])
    demo_token = next(token for token in amounts if token != ETH)
    assert amounts == {ETH: DEMO_ETH, demo_token: DEMO_ERC20_AMOUNT}
    prices = {transaction["tokenAddress"]: Decimal(transaction["priceUsd"]) for transaction in transactions}
    assert prices == {ETH: ETH_PRICE, demo_token: DEMO_PRICE}
    assets = _assets(alice, DEMO_EVM_USER, "ethereum")
    assert Decimal(assets[demo_token]["amount"]) == DEMO_ERC20_AMOUNT
    assert Decimal(assets[demo_token]["valueUsd"]) == DEMO_ERC20_AMOUNT * DEMO_PRICE
    assert Decimal(assets[ETH]["amount"]) == ALICE_OWN_ETH + DEMO_ETH

    # When the window's ordinary refresh has run, and coins then leave the wallet on the node
    _refresh(stack, force=False)
    node = AnvilNode(port=int(stack.banner_url("Ethereum").rsplit(":", 1)[1]))
    try:
        assert node.block_number() >= first_block
        receiver = node.accounts[1]
        node.send_native(DEMO_EVM_ADDRESS, receiver, 3 * WEI // 4)
        node.transfer(demo_token, DEMO_EVM_ADDRESS, receiver, 400 * WEI)
        moved_at = node.block_number()
    finally:
        node.stop()

    # Then another ordinary refresh in the same window does nothing: one run per window
    again = _refresh(stack, force=False)
    assert again["started"] is False
    assert again["forced"] is False
    assert "already refreshed" in again["note"]
    assert again["users"] == 0
    assert len(_chain_transactions(alice, DEMO_EVM_USER)) == len(transactions)

    # When a refresh is forced
    forced = _refresh(stack, force=True)

    # Then it runs at once, as a window of its own, and the wallet's new amounts show
    assert forced["started"] is True
    assert forced["forced"] is True
    assert forced["window"] != again["window"]
    assert forced["users"] >= 1
    assert forced["messagesProcessed"] >= 1
    synced = _only_wallet(alice, DEMO_EVM_USER)["chains"][0]
    assert synced["status"] == "ok", synced
    assert synced["blockNumber"] == moved_at
    after = _chain_transactions(alice, DEMO_EVM_USER)
    assert _wallet_amounts(after, wallet["walletId"]) == {
        ETH: DEMO_ETH - Decimal("0.75"),
        demo_token: DEMO_ERC20_AMOUNT - 400,
    }
    outgoing = [transaction for transaction in after if transaction["type"] == "transfer_out"]
    assert sorted((transaction["tokenAddress"], Decimal(transaction["amount"])) for transaction in outgoing) == sorted(
        [(ETH, Decimal("0.75")), (demo_token, Decimal(400))]
    )
    assets = _assets(alice, DEMO_EVM_USER, "ethereum")
    assert Decimal(assets[demo_token]["amount"]) == DEMO_ERC20_AMOUNT - 400
    assert Decimal(assets[ETH]["amount"]) == ALICE_OWN_ETH + DEMO_ETH - Decimal("0.75")

    # And a second forced refresh with nothing moved records nothing more
    assert _refresh(stack, force=True)["started"] is True
    assert len(_chain_transactions(alice, DEMO_EVM_USER)) == len(after)


def test_the_solana_demo_wallet_holds_its_sol_and_usdc(stack):
    bob = _client(stack, DEMO_SOLANA_USER)

    wallet = _only_wallet(bob, DEMO_SOLANA_USER)
    assert wallet["address"] == DEMO_SOLANA_ADDRESS
    [solana] = wallet["chains"]
    assert (solana["chain"], solana["status"]) == ("solana", "ok"), solana
    assert solana["blockNumber"] > 0
    amounts = _wallet_amounts(_chain_transactions(bob, DEMO_SOLANA_USER), wallet["walletId"])
    assert amounts == {SOL_MINT: DEMO_SOL, USDC_SOLANA_MINT: DEMO_SOLANA_USDC}


def test_a_refresh_with_a_force_that_is_not_a_flag_is_refused(stack):
    response = httpx.post(f"{stack.url}/_local/refresh", params={"force": "soon"}, timeout=30)
    assert response.status_code == 400
    assert "force" in response.json()["message"]


def test_ctrl_c_stops_the_local_nodes_too(stack):
    # Runs last in this module: it ends the stack the other tests share.
    anvil_url = stack.banner_url("Ethereum")
    solana_url = stack.banner_url("Solana")

    stack.process.send_signal(signal.SIGINT)
    exit_code = stack.process.wait(timeout=60)

    assert exit_code == 0, stack.output()[-4000:]
    assert "Traceback" not in stack.output()
    for url in (anvil_url, solana_url):
        with pytest.raises(httpx.TransportError):
            httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=2)


@pytest.fixture
def own_nodes() -> Iterator[tuple[AnvilNode, SolanaRpcServer]]:
    """An Ethereum node and a Solana node of someone's own, not the stack's."""
    with AnvilNode(chain_id=1) as ethereum, SolanaRpcServer() as solana:
        yield ethereum, solana


def test_nodes_given_in_the_environment_are_used_and_the_demo_leaves_them_alone(
    own_nodes, local_wallets_redis_url, tmp_path
):
    # Given nodes of someone's own, named by RPC_URL_ETHEREUM and RPC_URL_SOLANA
    ethereum, solana = own_nodes
    # When the stack starts with DEMO=1
    with _running_stack(
        tmp_path, local_wallets_redis_url, RPC_URL_ETHEREUM=ethereum.url, RPC_URL_SOLANA=solana.url
    ) as running:
        # Then the banner shows those nodes and no local one
        assert running.banner_url("Ethereum") == ethereum.url
        assert running.banner_url("Solana") == solana.url
        assert "from RPC_URL_ETHEREUM" in running.output()
        assert "from RPC_URL_SOLANA" in running.output()
        # And the demo deployed nothing there and linked no wallet, and said why
        assert ethereum.block_number() == 0
        assert ethereum.native_balance(DEMO_EVM_ADDRESS) == 0
        assert "no Ethereum demo wallet: RPC_URL_ETHEREUM" in running.output()
        assert "no Solana demo wallet: RPC_URL_SOLANA" in running.output()
        listed = _client(running, DEMO_EVM_USER).get(f"/portfolios/{DEMO_EVM_USER}/wallets")
        assert listed.status_code == 200, listed.text
        assert listed.json()["wallets"] == []
        # And the functions read the chains there: a wallet linked now syncs from that node
        alice = _client(running, DEMO_EVM_USER)
        address = ethereum.accounts[2]
        linked = alice.post(f"/portfolios/{DEMO_EVM_USER}/wallets", json={"address": address})
        assert linked.status_code == 201, linked.text
        assert [chain["chain"] for chain in linked.json()["chains"]] == ["ethereum"]
        synced = alice.post(f"/portfolios/{DEMO_EVM_USER}/wallets/{linked.json()['walletId']}/sync")
        assert synced.status_code == 200, synced.text
        assert synced.json()["chains"][0]["status"] == "ok", synced.text
        assert "Traceback" not in running.output()
