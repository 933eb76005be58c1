"""A Solana wallet end to end: linked through the API handler, synced on a refresh message, against a
local node that answers in Solana's own formats."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from local_stack.coins_api import CoinsApiServer
from local_stack.solana_rpc import SolanaRpcServer, pubkey_from_seed
from tests.integration.wallets.conftest import Functions

SOL = "So11111111111111111111111111111111111111112"
USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"


@pytest.fixture
def solana() -> Iterator[SolanaRpcServer]:
    with SolanaRpcServer() as node:
        yield node


@pytest.fixture
def coins_api() -> Iterator[CoinsApiServer]:
    with CoinsApiServer(prices={}) as api:
        api.set_price("coingecko:solana", "150", symbol="SOL")
        api.set_price(f"solana:{USDC}", "1", symbol="USDC", decimals=6)
        yield api


@pytest.fixture
def functions(wallet_functions: Callable[..., Functions], solana: SolanaRpcServer) -> Functions:
    return wallet_functions(RPC_URL_SOLANA=solana.url)


def test_given_a_solana_wallet_with_both_token_programs_when_refreshed_then_every_balance_is_held_exactly(
    functions: Functions, solana: SolanaRpcServer, user_id: str
):
    # Given a wallet with 2.5 SOL, 12.345678 USDC (SPL Token) and a Token-2022 mint no list knows
    wallet = pubkey_from_seed(f"wallet-{user_id}")
    unlisted = pubkey_from_seed(f"mint-{user_id}")
    solana.set_lamports(wallet, 2_500_000_000)
    solana.add_token_account(wallet, USDC, 12_345_678, 6)
    solana.add_token_account(wallet, unlisted, 42, 0, program="spl-token-2022")
    linked = functions.api("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body={"address": wallet})
    assert linked.status == 201 and [sync["chain"] for sync in linked.body["chains"]] == ["solana"]

    # When a refresh runs
    assert functions.refresh(user_id) == {"batchItemFailures": []}

    # Then all three are held, exactly; the unpriced mint is listed, not valued
    assets = functions.api("GET", f"/portfolios/{user_id}/assets", sub=user_id).body
    held = {asset["tokenAddress"]: (Decimal(asset["amount"]), asset["valueUsd"]) for asset in assets["assets"]}
    assert held[SOL] == (Decimal("2.5"), "375")
    assert held[USDC] == (Decimal("12.345678"), "12.35")  # values are shown to the cent
    assert held[unlisted] == (Decimal(42), None)
    wallets = functions.api("GET", f"/portfolios/{user_id}/wallets", sub=user_id).body
    (sync,) = wallets["wallets"][0]["chains"]
    assert sync["status"] == "ok" and sync["blockNumber"] == solana.slot

    # And when a token account is emptied on chain, the next refresh records it leaving
    solana.advance()
    solana.set_lamports(wallet, 1_000_000_000)
    functions.refresh(user_id)
    assets = functions.api("GET", f"/portfolios/{user_id}/assets", sub=user_id).body
    assert {asset["tokenAddress"]: Decimal(asset["amount"]) for asset in assets["assets"]}[SOL] == 1


def test_given_a_node_answering_garbage_when_refreshed_then_nothing_is_held_and_the_wallet_says_why(
    functions: Functions, solana: SolanaRpcServer, user_id: str
):
    wallet = pubkey_from_seed(f"wallet-{user_id}")
    solana.set_lamports(wallet, 1_000_000_000)
    functions.api("POST", f"/portfolios/{user_id}/wallets", sub=user_id, body={"address": wallet})
    solana.malformed_next(5)

    assert functions.refresh(user_id) == {"batchItemFailures": []}

    assets = functions.api("GET", f"/portfolios/{user_id}/assets", sub=user_id).body
    assert assets["assets"] == []
    wallets = functions.api("GET", f"/portfolios/{user_id}/wallets", sub=user_id).body
    (sync,) = wallets["wallets"][0]["chains"]
    assert sync["status"] == "error" and "JSON" in sync["error"]


def test_given_a_node_that_never_answers_in_time_when_a_batch_of_messages_runs_then_only_the_first_waits_for_it(
    wallet_functions, solana: SolanaRpcServer
):
    # Given two users with Solana wallets in two messages of one batch, and a node slower than the timeout
    functions = wallet_functions(RPC_URL_SOLANA=solana.url, WALLET_RPC_READ_TIMEOUT_S="0.3")
    users = [f"user-{uuid.uuid4().hex[:10]}" for _ in range(2)]
    for user in users:
        wallet = pubkey_from_seed(f"wallet-{user}")
        solana.set_lamports(wallet, 1_000_000_000)
        functions.api("POST", f"/portfolios/{user}/wallets", sub=user, body={"address": wallet})
    solana.delay_s = 1.0

    # When the batch runs
    outcome = functions.refresh_messages([users[0]], [users[1]])

    # Then both messages complete; the node was asked once, the second message skipped the failing chain
    assert outcome == {"batchItemFailures": []}
    assert solana.request_count == 1
    for user in users:
        (sync,) = functions.api("GET", f"/portfolios/{user}/wallets", sub=user).body["wallets"][0]["chains"]
        assert sync["status"] == "error" and "unreachable" in sync["error"]
