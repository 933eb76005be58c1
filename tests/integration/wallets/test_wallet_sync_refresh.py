"""Wallets end to end on a real EVM node: linked through the API handler, synced by the price
updater handler on a refresh message, shown by the API."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from portfolio import wiring

from local_stack.coins_api import CoinsApiServer
from local_stack.evm_node import AnvilNode
from local_stack.rpc_proxy import RpcProxy
from tests.integration.wallets.conftest import Answer, Functions

ETHER = 10**18
ETH_PRICE = Decimal("3000")
DEMO_PRICE = Decimal("2.5")
ETH_KEY = "ethereum:0x0000000000000000000000000000000000000000"


@dataclass
class Chain:
    """The node and a token on it that no list knows: only its Transfer logs reveal it."""

    node: AnvilNode
    token: str


@pytest.fixture
def coins_api() -> Iterator[CoinsApiServer]:
    with CoinsApiServer(prices={}) as api:
        api.set_price("coingecko:ethereum", str(ETH_PRICE), symbol="ETH")
        yield api


@pytest.fixture
def chain(anvil: AnvilNode, coins_api: CoinsApiServer) -> Chain:
    token = anvil.deploy_token("Demo Token", "DEMO", 18)
    coins_api.set_price(f"ethereum:{token.lower()}", str(DEMO_PRICE), symbol="DEMO", decimals=18)
    return Chain(anvil, token.lower())


@pytest.fixture
def node(anvil: AnvilNode) -> Iterator[RpcProxy]:
    """The node as the functions reach it: through a proxy that counts (and can fail) their requests."""
    with RpcProxy(anvil.url) as proxy:
        yield proxy


@pytest.fixture
def functions(wallet_functions: Callable[..., Functions], node: RpcProxy) -> Functions:
    return wallet_functions(RPC_URL_ETHEREUM=node.url)


@pytest.fixture
def api(functions: Functions) -> Callable[..., Answer]:
    return functions.api


@pytest.fixture
def refresh(functions: Functions) -> Callable[..., dict[str, Any]]:
    return functions.refresh


def native_transaction(
    transaction_id: str,
    kind: str,
    amount: str,
    *,
    at: str,
    price: str | None = None,
    chain: str = "ethereum",
    wallet_id: str | None = None,
) -> dict[str, Any]:
    """A transaction of the chain's native coin, as a user posts it."""
    return {
        "id": transaction_id,
        "type": kind,
        "chain": chain,
        "tokenAddress": "0x0000000000000000000000000000000000000000",
        "amount": amount,
        "priceUsd": price,
        "timestamp": at,
        "walletId": wallet_id,
    }


def fresh_address(node: AnvilNode) -> str:
    return "0x" + uuid.uuid4().hex + uuid.uuid4().hex[:8]


def holdings(api: Callable[..., Answer], user_id: str) -> dict[str, Decimal]:
    assets = api("GET", f"/portfolios/{user_id}/assets", sub=user_id).body
    return {f"{holding['chain']}:{holding['tokenAddress']}": Decimal(holding["amount"]) for holding in assets["assets"]}


def chain_transactions(api: Callable[..., Answer], user_id: str) -> list[dict[str, Any]]:
    page = api("GET", f"/portfolios/{user_id}/transactions", sub=user_id, query={"limit": "200"}).body
    return [transaction for transaction in page["transactions"] if transaction["source"] == "chain"]


def test_given_a_linked_wallet_when_refreshed_then_its_native_and_discovered_token_balances_are_held_and_valued(
    api, refresh, chain: Chain, user_id: str
):
    # Given a wallet holding 2 ETH and 150 DEMO (a token in no list) on the node, linked to the user
    wallet = fresh_address(chain.node)
    chain.node.set_native_balance(wallet, 2 * ETHER)
    chain.node.mint(chain.token, wallet, 150 * ETHER)
    linked = api("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body={"address": wallet, "label": "cold"})
    assert linked.status == 201
    assert [sync["status"] for sync in linked.body["chains"]] == ["pending"]

    # When a refresh runs
    assert refresh(user_id) == {"batchItemFailures": []}

    # Then both balances are held, exactly, valued at their prices, recorded as chain transactions
    held = holdings(api, user_id)
    assert held[ETH_KEY] == Decimal(2)
    assert held[f"ethereum:{chain.token}"] == Decimal(150)
    summary = api("GET", f"/portfolios/{user_id}", sub=user_id).body
    assert Decimal(summary["totalValueUsd"]) == 2 * ETH_PRICE + 150 * DEMO_PRICE
    recorded = chain_transactions(api, user_id)
    assert {(t["type"], t["tokenAddress"], t["amount"]) for t in recorded} == {
        ("transfer_in", "0x0000000000000000000000000000000000000000", "2"),
        ("transfer_in", chain.token, "150"),
    }
    assert all(t["walletId"] == linked.body["walletId"] and t["priceSource"] == "market" for t in recorded)
    # And the wallet says its sync succeeded, at the node's block
    listed = api("GET", f"/portfolios/{user_id}/wallets", sub=user_id).body["wallets"]
    (sync,) = listed[0]["chains"]
    assert sync["status"] == "ok" and sync["error"] is None
    assert sync["blockNumber"] == chain.node.block_number()
    assert listed[0]["label"] == "cold"


def test_given_a_synced_wallet_when_nothing_moves_then_a_second_refresh_records_nothing(
    api, refresh, chain: Chain, user_id: str
):
    # Given a synced wallet
    wallet = fresh_address(chain.node)
    chain.node.set_native_balance(wallet, ETHER)
    api("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body={"address": wallet})
    refresh(user_id)
    before = chain_transactions(api, user_id)

    operations: list[str] = []
    wiring.dynamodb_client().meta.events.register(
        "before-call.dynamodb", lambda event_name, **_: operations.append(event_name.rsplit(".", 1)[-1])
    )

    # When the chain moves on without touching it and a refresh runs again
    chain.node.mine(3)
    refresh(user_id)

    # Then nothing is written to DynamoDB, nothing new is recorded, and the wallet shows the newer block
    assert operations == ["BatchGetItem"]
    assert chain_transactions(api, user_id) == before
    (sync,) = api("GET", f"/portfolios/{user_id}/wallets", sub=user_id).body["wallets"][0]["chains"]
    assert sync["blockNumber"] == chain.node.block_number()


def test_given_coins_leave_the_wallet_on_chain_when_refreshed_then_a_transfer_out_is_recorded_at_cost(
    api, refresh, chain: Chain, user_id: str
):
    # Given a synced wallet with 100 DEMO
    wallet = fresh_address(chain.node)
    chain.node.set_native_balance(wallet, ETHER)
    chain.node.mint(chain.token, wallet, 100 * ETHER)
    api("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body={"address": wallet})
    refresh(user_id)
    before = api("GET", f"/portfolios/{user_id}", sub=user_id).body
    assets = api("GET", f"/portfolios/{user_id}/assets", sub=user_id).body["assets"]
    demo_cost = next(Decimal(a["costBasisUsd"]) for a in assets if a["tokenAddress"] == chain.token)

    # When 40 DEMO leave it on chain and a refresh runs
    chain.node.transfer(chain.token, wallet, fresh_address(chain.node), 40 * ETHER)
    refresh(user_id)

    # Then 60 are held, through a transfer out at the market price that realized nothing
    assert holdings(api, user_id)[f"ethereum:{chain.token}"] == Decimal(60)
    outs = [t for t in chain_transactions(api, user_id) if t["type"] == "transfer_out"]
    assert [(t["tokenAddress"], t["amount"], t["priceSource"]) for t in outs] == [(chain.token, "40", "market")]
    summary = api("GET", f"/portfolios/{user_id}", sub=user_id).body
    assert Decimal(summary["realizedPnlUsd"]) == 0
    # And what left went at its cost: invested is net of it, and the ROI is where it was
    withdrawn = Decimal(summary["withdrawnCostUsd"])
    assert withdrawn == demo_cost * 40 / 100
    assert Decimal(summary["investedUsd"]) == Decimal(before["investedUsd"]) - withdrawn
    assert summary["roiPercent"] == before["roiPercent"]


def test_given_the_node_down_when_refreshed_then_nothing_held_changes_and_the_wallet_says_why(
    api, refresh, chain: Chain, user_id: str, wallet_functions: Callable[..., Functions]
):
    # Given a synced wallet
    wallet = fresh_address(chain.node)
    chain.node.set_native_balance(wallet, 3 * ETHER)
    api("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body={"address": wallet})
    refresh(user_id)
    before = holdings(api, user_id)

    # When the node cannot be reached (a port nobody listens on) and a refresh runs
    refresh = wallet_functions(RPC_URL_ETHEREUM="http://127.0.0.1:9").refresh
    outcome = refresh(user_id)

    # Then the refresh completes, the holdings stand, and the wallet's status says what happened
    assert outcome == {"batchItemFailures": []}
    assert holdings(api, user_id) == before
    (sync,) = api("GET", f"/portfolios/{user_id}/wallets", sub=user_id).body["wallets"][0]["chains"]
    assert sync["status"] == "error"
    assert "unreachable" in sync["error"]
    assert "127.0.0.1" not in sync["error"]


def test_given_a_hand_entered_buy_tagged_with_the_wallet_when_synced_then_it_is_not_counted_twice(
    api, refresh, chain: Chain, user_id: str
):
    # Given a wallet holding 1 ETH, linked, and the user's own buy of that 1 ETH tagged with it
    wallet = fresh_address(chain.node)
    chain.node.set_native_balance(wallet, ETHER)
    wallet_id = api("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body={"address": wallet}).body["walletId"]
    buy = native_transaction("my-buy", "buy", "1", price="1800", at="2024-03-01T00:00:00Z", wallet_id=wallet_id)
    assert api("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=buy).status == 201

    # When the wallet is synced
    refresh(user_id)

    # Then 1 ETH is held, at the user's own cost, and the sync recorded nothing
    assert holdings(api, user_id)[ETH_KEY] == Decimal(1)
    assert chain_transactions(api, user_id) == []
    assert Decimal(api("GET", f"/portfolios/{user_id}", sub=user_id).body["costBasisUsd"]) == 1800


def test_given_a_synced_wallet_when_unlinked_then_nothing_it_brought_is_held(api, refresh, chain: Chain, user_id: str):
    # Given a synced wallet beside a hand-entered holding
    wallet = fresh_address(chain.node)
    chain.node.set_native_balance(wallet, 5 * ETHER)
    chain.node.mint(chain.token, wallet, 7 * ETHER)
    wallet_id = api("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body={"address": wallet}).body["walletId"]
    own = native_transaction("own-eth", "buy", "1", price="2000", at="2024-03-01T00:00:00Z", chain="arbitrum")
    api("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=own)
    refresh(user_id)
    assert len(chain_transactions(api, user_id)) == 2

    # When it is unlinked
    unlinked = api("DELETE", f"/portfolios/{user_id}/wallets/{wallet_id}", sub=user_id)

    # Then only the hand-entered holding is left, and the wallet is gone for good
    assert unlinked.status == 204
    assert holdings(api, user_id) == {ETH_KEY.replace("ethereum", "arbitrum"): Decimal(1)}
    assert chain_transactions(api, user_id) == []
    assert api("GET", f"/portfolios/{user_id}/wallets", sub=user_id).body == {"wallets": []}
    refresh(user_id)
    assert chain_transactions(api, user_id) == []
    assert api("DELETE", f"/portfolios/{user_id}/wallets/{wallet_id}", sub=user_id).status == 404


def test_given_a_transaction_recorded_by_sync_when_deleted_by_hand_then_it_is_refused(
    api, refresh, chain: Chain, user_id: str
):
    # Given a synced wallet
    wallet = fresh_address(chain.node)
    chain.node.set_native_balance(wallet, ETHER)
    api("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body={"address": wallet})
    refresh(user_id)
    (recorded,) = chain_transactions(api, user_id)

    # When the user deletes what the sync recorded
    refused = api("DELETE", f"/portfolios/{user_id}/transactions/{recorded['id']}", sub=user_id)

    # Then it is refused, and kept
    assert refused.status == 409
    assert refused.body["error"]["code"] == "recorded_by_wallet_sync"
    assert chain_transactions(api, user_id) == [recorded]


def test_given_two_users_in_one_message_when_refreshed_then_the_node_is_asked_twice_for_both(
    api, refresh, chain: Chain, anvil: AnvilNode, node: RpcProxy
):
    # Given two users, each with a synced wallet
    users = [f"user-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    for user in users:
        wallet = fresh_address(anvil)
        anvil.set_native_balance(wallet, ETHER)
        api("POST", f"/portfolios/{user}/wallets", sub=user, body={"address": wallet})
    refresh(*users)
    requests_before = len(node.requests)

    # When one message carries both
    refresh(*users)

    # Then the node is asked for the block, then for every balance of both in one batch
    asked = node.requests[requests_before:]
    assert len(asked) == 2
    balance_calls = [call for call in asked[1] if call["method"] == "eth_getBalance"]
    assert len(balance_calls) == 2


def test_given_one_wallets_calls_failing_when_refreshed_then_only_that_wallet_is_marked_and_the_other_is_recorded(
    api, refresh, chain: Chain, node: RpcProxy
):
    # Given two users whose wallets share one message, the node refusing the calls of the first
    users = [f"user-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    wallets = [fresh_address(chain.node) for _ in users]
    for user, wallet in zip(users, wallets, strict=True):
        chain.node.set_native_balance(wallet, ETHER)
        api("POST", f"/portfolios/{user}/wallets", sub=user, body={"address": wallet})
    node.error_calls(lambda call: call["method"] == "eth_getBalance" and call["params"][0] == wallets[0])

    # When the message is refreshed
    assert refresh(*users) == {"batchItemFailures": []}

    # Then the first wallet says why and holds nothing; the second is recorded
    (failed,) = api("GET", f"/portfolios/{users[0]}/wallets", sub=users[0]).body["wallets"][0]["chains"]
    assert failed["status"] == "error" and failed["error"]
    assert chain_transactions(api, users[0]) == []
    assert holdings(api, users[1])[ETH_KEY] == Decimal(1)


def test_given_a_hand_entered_sale_of_coins_the_wallet_brought_when_unlinking_then_it_is_refused_and_kept(
    api, refresh, chain: Chain, user_id: str
):
    # Given a synced wallet with 2 ETH, and the user's untagged sale of 1 of them
    wallet = fresh_address(chain.node)
    chain.node.set_native_balance(wallet, 2 * ETHER)
    wallet_id = api("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body={"address": wallet}).body["walletId"]
    refresh(user_id)
    sale = native_transaction("my-sale", "sell", "1", price="3500", at=datetime.now(UTC).isoformat())
    assert api("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=sale).status == 201

    # When the wallet is unlinked
    refused = api("DELETE", f"/portfolios/{user_id}/wallets/{wallet_id}", sub=user_id)

    # Then it is refused, naming the sale, and nothing changed
    assert refused.status == 422
    assert refused.body["error"]["details"]["transactionId"] == "my-sale"
    assert len(api("GET", f"/portfolios/{user_id}/wallets", sub=user_id).body["wallets"]) == 1
    assert holdings(api, user_id)[ETH_KEY] == Decimal(1)


def test_given_coins_left_that_a_later_hand_entered_sale_also_sold_when_synced_then_nothing_is_recorded_and_it_says_why(
    api, refresh, chain: Chain, user_id: str
):
    # Given a synced wallet with 2 ETH, and the user's untagged sale of them dated a few minutes ahead
    wallet = fresh_address(chain.node)
    chain.node.set_native_balance(wallet, 2 * ETHER)
    api("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body={"address": wallet})
    refresh(user_id)
    sale = native_transaction(
        "cex-sale", "sell", "2", price="3500", at=(datetime.now(UTC) + timedelta(minutes=4)).isoformat()
    )
    assert api("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=sale).status == 201

    # When the coins leave the wallet on chain before that time, and a refresh runs
    chain.node.set_native_balance(wallet, 0)
    chain.node.mine()
    assert refresh(user_id) == {"batchItemFailures": []}

    # Then the departure is not recorded (the sale would lack the coins), and the wallet names the sale
    assert [t["type"] for t in chain_transactions(api, user_id)] == ["transfer_in"]
    (sync,) = api("GET", f"/portfolios/{user_id}/wallets", sub=user_id).body["wallets"][0]["chains"]
    assert sync["status"] == "error" and "cex-sale" in sync["error"]


def test_given_a_token_one_user_already_found_when_another_user_of_the_message_holds_it_then_both_are_recorded(
    api, refresh, chain: Chain
):
    # Given a user whose wallet's sync found the unlisted token
    first, second = (f"user-{uuid.uuid4().hex[:10]}" for _ in range(2))
    wallets = [fresh_address(chain.node) for _ in range(2)]
    chain.node.mint(chain.token, wallets[0], 5 * ETHER)
    api("POST", f"/portfolios/{first}/wallets", sub=first, body={"address": wallets[0]})
    refresh(first)

    # When a second user's wallet, holding the same token, is synced in one message with the first
    chain.node.mint(chain.token, wallets[1], 3440 * ETHER)
    api("POST", f"/portfolios/{second}/wallets", sub=second, body={"address": wallets[1]})
    refresh(first, second)

    # Then the second user holds it too, exactly
    assert holdings(api, second)[f"ethereum:{chain.token}"] == Decimal(3440)
    assert holdings(api, first)[f"ethereum:{chain.token}"] == Decimal(5)


def test_given_synced_and_hand_entered_transactions_when_listed_by_source_or_wallet_then_each_filter_keeps_its_own(
    api, refresh, chain: Chain, user_id: str
):
    # Given a synced wallet, a buy tagged with it, and an untagged buy
    wallet = fresh_address(chain.node)
    chain.node.set_native_balance(wallet, 2 * ETHER)
    wallet_id = api("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body={"address": wallet}).body["walletId"]
    tagged = native_transaction("tagged-buy", "buy", "1", price="2000", at="2024-01-01T00:00:00Z", wallet_id=wallet_id)
    untagged = tagged | {"id": "own-buy", "chain": "base", "walletId": None}
    api("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body={"transactions": [tagged, untagged]})
    refresh(user_id)

    def listed(**query: str) -> list[str]:
        page = api("GET", f"/portfolios/{user_id}/transactions", sub=user_id, query=query).body
        return sorted(transaction["id"] for transaction in page["transactions"])

    # When they are listed by source and by wallet, then each filter keeps its own
    (recorded,) = listed(source="chain")
    assert recorded.startswith(f"sync:{wallet_id}:ethereum:")
    assert listed(source="user") == ["own-buy", "tagged-buy"]
    assert listed(walletId=wallet_id) == sorted([recorded, "tagged-buy"])
    assert listed(walletId=wallet_id, source="user") == ["tagged-buy"]
    refused = api("GET", f"/portfolios/{user_id}/transactions", sub=user_id, query={"source": "robot"})
    assert refused.status == 400 and refused.body["error"]["details"]["field"] == "source"


def test_given_an_unpriced_token_calling_itself_usdc_when_synced_then_it_shows_its_name_but_is_never_real_usdc(
    api, refresh, anvil: AnvilNode, user_id: str
):
    # Given a wallet that received a token nobody prices, whose contract says it is "USDC"
    lookalike = anvil.deploy_token("USD Coin", "USDC", 6).lower()
    wallet = fresh_address(anvil)
    anvil.mint(lookalike, wallet, 1_000_000 * 10**6)
    api("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body={"address": wallet})

    # When it is synced
    refresh(user_id)

    # Then it is held and listed under its contract's symbol, unpriced, and kept apart from real USDC
    (held,) = api("GET", f"/portfolios/{user_id}/assets", sub=user_id).body["assets"]
    assert (held["tokenAddress"], held["symbol"], held["amount"]) == (lookalike, "USDC", "1000000")
    assert held["valueUsd"] is None and held["asset"] == f"ethereum:{lookalike}"
    summary = api("GET", f"/portfolios/{user_id}", sub=user_id).body
    assert summary["unpricedCount"] == 1 and summary["totalValueUsd"] == "0"


def test_given_a_wallet_unlinked_and_linked_again_when_synced_then_its_tokens_are_found_again(
    api, refresh, chain: Chain, user_id: str
):
    # Given a synced wallet holding the unlisted token, unlinked
    wallet = fresh_address(chain.node)
    chain.node.mint(chain.token, wallet, 10 * ETHER)
    wallet_id = api("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body={"address": wallet}).body["walletId"]
    refresh(user_id)
    api("DELETE", f"/portfolios/{user_id}/wallets/{wallet_id}", sub=user_id)

    # When it is linked again and synced
    api("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body={"address": wallet})
    chain.node.mine()
    refresh(user_id)

    # Then the token is held again: the new link scans from the start
    assert holdings(api, user_id)[f"ethereum:{chain.token}"] == Decimal(10)


def test_given_a_refused_sync_when_the_user_fixes_it_then_the_next_sync_still_finds_the_tokens_of_those_blocks(
    api, refresh, chain: Chain, user_id: str
):
    # Given a synced wallet with 2 ETH, a hand-entered sale of them dated ahead, and then, on chain,
    # the ETH leaving and the unlisted token arriving: the sync is refused
    wallet = fresh_address(chain.node)
    chain.node.set_native_balance(wallet, 2 * ETHER)
    api("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body={"address": wallet})
    refresh(user_id)
    sale = native_transaction(
        "sale-ahead", "sell", "2", price="3500", at=(datetime.now(UTC) + timedelta(minutes=4)).isoformat()
    )
    api("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=sale)
    chain.node.set_native_balance(wallet, 0)
    chain.node.mint(chain.token, wallet, 3 * ETHER)
    refresh(user_id)
    assert (
        api("GET", f"/portfolios/{user_id}/wallets", sub=user_id).body["wallets"][0]["chains"][0]["status"] == "error"
    )

    # When the user deletes the sale and the next refresh runs
    api("DELETE", f"/portfolios/{user_id}/transactions/sale-ahead", sub=user_id)
    chain.node.mine()
    refresh(user_id)

    # Then what the refused sync saw is recorded now, the token included
    assert holdings(api, user_id) == {f"ethereum:{chain.token}": Decimal(3)}


def test_given_a_token_whose_decimals_call_failed_once_when_synced_again_then_it_is_held(
    api, refresh, chain: Chain, node: RpcProxy, user_id: str
):
    # Given a wallet that received a token no wallet of this test knows, and the node refusing decimals() once
    token = chain.node.deploy_token("Once Refused", "ONCE", 6).lower()
    wallet = fresh_address(chain.node)
    chain.node.mint(token, wallet, 5 * 10**6)
    api("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body={"address": wallet})
    node.error_calls(lambda call: call["method"] == "eth_call" and call["params"][0]["data"] == "0x313ce567")
    refresh(user_id)
    assert f"ethereum:{token}" not in holdings(api, user_id)

    # When the node answers again and the next refresh runs
    node.heal()
    chain.node.mine()
    refresh(user_id)

    # Then the token is held, though the scan had moved past its Transfer log
    assert holdings(api, user_id)[f"ethereum:{token}"] == Decimal(5)


def test_given_a_node_refusing_a_log_range_when_synced_then_the_balances_are_recorded_and_the_wallet_says_so(
    api, refresh, chain: Chain, node: RpcProxy, user_id: str
):
    # Given a wallet with ETH, and the node refusing every eth_getLogs range as too large
    wallet = fresh_address(chain.node)
    chain.node.set_native_balance(wallet, 4 * ETHER)
    api("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body={"address": wallet})
    node.error_calls(lambda call: call["method"] == "eth_getLogs", message="query returned more than 10000 results")

    # When it is synced
    refresh(user_id)

    # Then its balance is recorded, and the wallet says token discovery stopped and why
    assert holdings(api, user_id)[ETH_KEY] == Decimal(4)
    (sync,) = api("GET", f"/portfolios/{user_id}/wallets", sub=user_id).body["wallets"][0]["chains"]
    assert sync["status"] == "error"
    assert "token discovery stopped (balances read)" in sync["error"] and "10000 results" in sync["error"]


def test_given_coins_the_sync_recorded_when_the_user_tags_their_own_earlier_buy_then_it_explains_them_at_its_cost(
    api, refresh, chain: Chain, user_id: str
):
    # Given a synced wallet whose 1.5 ETH the sync recorded at the market price
    wallet = fresh_address(chain.node)
    chain.node.set_native_balance(wallet, 3 * ETHER // 2)
    wallet_id = api("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body={"address": wallet}).body["walletId"]
    refresh(user_id)
    (recorded,) = chain_transactions(api, user_id)

    # When the user records the buy of 1 of them, made earlier, tagged with the wallet
    buy = native_transaction("my-old-buy", "buy", "1", price="1800", at="2024-03-01T00:00:00Z", wallet_id=wallet_id)
    assert api("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=buy).status == 201

    # Then the sync's record keeps only the 0.5 the buy does not explain, the ETH is held once, and 1
    # of it at the user's cost
    (rest,) = chain_transactions(api, user_id)
    assert (rest["amount"], rest["timestamp"], rest["priceUsd"]) == ("0.5", recorded["timestamp"], recorded["priceUsd"])
    assert holdings(api, user_id)[ETH_KEY] == Decimal("1.5")
    summary = api("GET", f"/portfolios/{user_id}", sub=user_id).body
    assert Decimal(summary["costBasisUsd"]) == Decimal(1800) + Decimal("0.5") * ETH_PRICE
    # And the next sync finds nothing to record
    chain.node.mine()
    refresh(user_id)
    assert chain_transactions(api, user_id) == [rest]


def test_given_a_tagged_round_trip_entered_after_the_sync_when_recorded_then_the_syncs_record_stands(
    api, refresh, chain: Chain, user_id: str
):
    # Given a synced wallet whose 1 ETH the sync recorded
    wallet = fresh_address(chain.node)
    chain.node.set_native_balance(wallet, ETHER)
    wallet_id = api("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body={"address": wallet}).body["walletId"]
    refresh(user_id)
    before = chain_transactions(api, user_id)

    # When the user imports an old buy and sale of 1 ETH, both tagged with the wallet
    trip = [
        native_transaction(f"old-{kind}", kind, "1", price=price, at=at, wallet_id=wallet_id)
        for kind, price, at in (("buy", "1000", "2024-01-01T00:00:00Z"), ("sell", "1500", "2024-02-01T00:00:00Z"))
    ]
    assert api("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body={"transactions": trip}).status == 201

    # Then the round trip explains none of the coins on chain: the sync's record stands, 1 ETH is held
    assert chain_transactions(api, user_id) == before
    assert holdings(api, user_id)[ETH_KEY] == 1


def test_given_the_coins_api_down_when_coins_arrive_then_nothing_is_recorded_until_they_can_be_priced(
    api, refresh, chain: Chain, coins_api: CoinsApiServer, user_id: str
):
    # Given a wallet that received 2 ETH, and the coins API failing
    wallet = fresh_address(chain.node)
    chain.node.set_native_balance(wallet, 2 * ETHER)
    api("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body={"address": wallet})
    coins_api.fail_always(503)

    # When a refresh runs, nothing is recorded at an unknown cost
    refresh(user_id)
    assert chain_transactions(api, user_id) == []

    # And once it answers again, the next refresh records them at the market price
    coins_api.heal()
    chain.node.mine()
    refresh(user_id)
    (arrival,) = chain_transactions(api, user_id)
    assert (arrival["amount"], arrival["priceUsd"], arrival["priceSource"]) == ("2", str(ETH_PRICE), "market")


def test_given_the_coins_api_down_when_coins_leave_then_the_departure_is_recorded_without_a_price(
    api, refresh, chain: Chain, coins_api: CoinsApiServer, user_id: str
):
    # Given a synced wallet holding 2 ETH
    wallet = fresh_address(chain.node)
    chain.node.set_native_balance(wallet, 2 * ETHER)
    api("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body={"address": wallet})
    refresh(user_id)

    # When 1 ETH leaves while the coins API fails, and a refresh runs
    chain.node.set_native_balance(wallet, ETHER)
    chain.node.mine()
    coins_api.fail_always(503)
    refresh(user_id)

    # Then the departure is recorded all the same, at cost, with no price to tell its gain
    departures = [t for t in chain_transactions(api, user_id) if t["type"] == "transfer_out"]
    assert [(t["amount"], t.get("priceUsd")) for t in departures] == [("1", None)]


def test_given_an_idle_user_when_its_idle_pass_comes_then_its_wallet_is_synced_though_nothing_is_valued(
    api, functions, chain: Chain, user_id: str
):
    # Given a linked wallet holding 3 ETH, of a user who has not read lately
    wallet = fresh_address(chain.node)
    chain.node.set_native_balance(wallet, 3 * ETHER)
    api("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body={"address": wallet})

    # When an idle message carries the user
    assert functions.refresh(user_id, tier="idle") == {"batchItemFailures": []}

    # Then the wallet's coins are recorded all the same
    assert [(t["type"], t["amount"]) for t in chain_transactions(api, user_id)] == [("transfer_in", "3")]
