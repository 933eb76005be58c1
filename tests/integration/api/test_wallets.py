"""The wallet routes through the API handler: what is refused and how, idempotent links, limits, who may."""

from __future__ import annotations

import pytest
from portfolio.settings import Settings

from tests.integration.api.conftest import ADMIN_SCOPE, Call

EVM_WALLET = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
SOLANA_WALLET = "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"
NOBODY_LISTENING = "http://127.0.0.1:9"


@pytest.fixture(autouse=True)
def nodes(api_settings: Settings, function_environment) -> Settings:
    """Two EVM chains and Solana configured; linking never asks a node, so nobody needs to listen."""
    return function_environment(
        PRICES_API_URL=api_settings.prices_api_url,
        RPC_URL_ETHEREUM=NOBODY_LISTENING,
        RPC_URL_BASE=NOBODY_LISTENING,
        RPC_URL_SOLANA=NOBODY_LISTENING,
        WALLET_RPC_MAX_ATTEMPTS="1",
        WALLET_RPC_CONNECT_TIMEOUT_S="0.2",
    )


def link(call: Call, user_id: str, **body: object):
    return call("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body=body)


def test_given_an_evm_address_without_chains_when_linked_then_every_configured_evm_chain_is_pending(
    call: Call, user_id: str
) -> None:
    linked = link(call, user_id, address=EVM_WALLET.lower(), label="cold storage")

    assert linked.status == 201
    assert linked.json["address"] == EVM_WALLET  # shown in its checksum form
    assert linked.json["label"] == "cold storage"
    assert linked.json["chains"] == [
        {"chain": "base", "status": "pending", "blockNumber": None, "lastSyncedAt": None, "error": None},
        {"chain": "ethereum", "status": "pending", "blockNumber": None, "lastSyncedAt": None, "error": None},
    ]


def test_given_a_linked_address_when_linked_again_then_it_is_the_same_wallet_with_the_chains_added(
    call: Call, user_id: str
) -> None:
    first = link(call, user_id, address=EVM_WALLET, chains=["ethereum"])
    again = link(call, user_id, address=EVM_WALLET.lower(), chains=["base", "ethereum"], label="hot")

    assert (first.status, again.status) == (201, 200)
    assert again.json["walletId"] == first.json["walletId"]
    assert [sync["chain"] for sync in again.json["chains"]] == ["ethereum", "base"]
    listed = call("GET", f"/portfolios/{user_id}/wallets", sub=user_id).json["wallets"]
    assert [(wallet["walletId"], wallet["label"]) for wallet in listed] == [(first.json["walletId"], "hot")]


def test_given_a_base58_address_when_linked_then_it_is_a_solana_wallet(call: Call, user_id: str) -> None:
    linked = link(call, user_id, address=SOLANA_WALLET)

    assert linked.status == 201
    assert [sync["chain"] for sync in linked.json["chains"]] == ["solana"]


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"address": "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beae"}, "address", "40 hex digits"),
        ({"address": "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed11"}, "address", "40 hex digits"),
        ({"address": "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beazz"}, "address", "not hex"),
        ({"address": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"}, "address", "checksum"),
        ({"address": "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWl"}, "address", "base58"),
        ({"address": "9WzDXwBbmkg8ZTbN"}, "address", "32 bytes"),
        ({"address": EVM_WALLET, "chains": ["ethereum", "narnia"]}, "chains[1]", "unknown chain"),
        ({"address": EVM_WALLET, "chains": ["solana"]}, "chains[0]", "not a evm chain"),
        ({"address": SOLANA_WALLET, "chains": ["base"]}, "chains[0]", "not a solana chain"),
        ({"address": EVM_WALLET, "label": "x" * 65}, "label", "at most 64"),
        ({"chains": ["ethereum"]}, "address", "required"),
    ],
)
def test_given_bad_input_when_linking_then_a_400_names_the_field_and_nothing_is_linked(
    call: Call, user_id: str, body: dict, field: str, says: str
) -> None:
    refused = call("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body=body)

    assert refused.status == 400
    assert refused.error["details"]["field"] == field
    assert says in refused.error["message"]
    assert call("GET", f"/portfolios/{user_id}/wallets", sub=user_id).json == {"wallets": []}


@pytest.mark.usefixtures("no_rate_limits")  # 22 links in a row: past the default burst of writes
def test_given_twenty_wallets_when_a_twenty_first_is_linked_then_it_is_refused_and_says_why(
    call: Call, user_id: str
) -> None:
    for index in range(20):
        assert link(call, user_id, address=f"0x{index:040x}", chains=["ethereum"]).status == 201

    refused = link(call, user_id, address=f"0x{99:040x}", chains=["ethereum"])

    assert refused.status == 422
    assert refused.error["code"] == "portfolio_limit"
    assert "at most 20 wallets" in refused.error["message"]
    assert link(call, user_id, address=f"0x{3:040x}", chains=["ethereum"]).status == 200  # a known one still is


def test_given_another_users_wallets_when_touched_then_reads_are_forbidden_and_admins_read_only(
    call: Call, user_id: str
) -> None:
    wallet_id = link(call, user_id, address=EVM_WALLET).json["walletId"]
    path = f"/portfolios/{user_id}/wallets"

    assert call("GET", path, sub="someone-else").status == 403
    assert call("POST", path, sub="someone-else", body={"address": EVM_WALLET}).status == 403
    assert call("DELETE", f"{path}/{wallet_id}", sub="someone-else").status == 403
    assert call("POST", f"{path}/{wallet_id}/sync", sub="someone-else").status == 403
    assert call("GET", path, sub="an-admin", scopes=[ADMIN_SCOPE]).status == 200
    assert call("DELETE", f"{path}/{wallet_id}", sub="an-admin", scopes=[ADMIN_SCOPE]).status == 403


def test_given_an_unknown_wallet_when_unlinked_or_synced_then_404(call: Call, user_id: str) -> None:
    path = f"/portfolios/{user_id}/wallets/w0123456789abcdef"

    assert call("DELETE", path, sub=user_id).status == 404
    assert call("POST", f"{path}/sync", sub=user_id).status == 404
    assert call("DELETE", f"/portfolios/{user_id}/wallets/not-a-wallet-id", sub=user_id).status == 400


def test_given_a_node_nobody_answers_when_synced_on_demand_then_the_wallet_says_why_and_a_repeat_is_limited(
    call: Call, user_id: str
) -> None:
    wallet_id = link(call, user_id, address=EVM_WALLET, chains=["ethereum"]).json["walletId"]

    synced = call("POST", f"/portfolios/{user_id}/wallets/{wallet_id}/sync", sub=user_id)
    again = call("POST", f"/portfolios/{user_id}/wallets/{wallet_id}/sync", sub=user_id)

    assert synced.status == 200
    (chain,) = synced.json["chains"]
    assert chain["status"] == "error" and "unreachable" in chain["error"]
    assert again.status == 429
    assert int(again.headers["retry-after"]) > 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"source": "chain"}, "source"),
        ({"id": "sync:w0123456789abcdef:ethereum:1:0x00"}, "id"),
        ({"priceSource": "market", "priceUsd": None}, "priceSource"),
        ({"walletId": "w0123456789abcdef"}, "walletId"),
        ({"walletId": "not-a-wallet"}, "walletId"),
    ],
)
def test_given_a_transaction_claiming_what_only_sync_may_when_posted_then_it_is_refused(
    call: Call, user_id: str, change: dict, field: str
) -> None:
    transaction = {
        "id": "t1",
        "type": "buy",
        "chain": "ethereum",
        "tokenAddress": "0x0000000000000000000000000000000000000000",
        "amount": "1",
        "priceUsd": "2000",
        "timestamp": "2024-01-01T00:00:00Z",
    } | change

    refused = call("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=transaction)

    assert refused.status == 400
    assert refused.error["details"]["field"].endswith(field)
