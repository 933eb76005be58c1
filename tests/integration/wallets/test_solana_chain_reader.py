"""The Solana chain reader against a local node speaking Solana's JSON-RPC over real HTTP.

The node (local_stack.solana_rpc) answers in the formats of Solana's RPC docs; the last tests here
hold its answers to those documented shapes, so the fake cannot drift from the real node silently.
Requests are counted at the server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from portfolio.adapters.json_rpc import JsonRpcClient
from portfolio.adapters.retry import RetryPolicy
from portfolio.adapters.solana_chain_reader import (
    MAINNET_GENESIS_HASH,
    SPL_TOKEN_PROGRAM_ID,
    TOKEN_2022_PROGRAM_ID,
    SolanaChainReader,
)
from portfolio.domain.tokens import SOLANA_NATIVE_MINT
from portfolio.services.ports import BalanceRequest, ChainUnavailableError

from local_stack import solana_rpc
from local_stack.solana_rpc import DEVNET_GENESIS_HASH, SolanaRpcServer, b58decode, b58encode, pubkey_from_seed

USDC = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"  # SPL Token, 6 decimals
PYUSD = "2b1kV6DkPAnxd5ixfnxCpjxmKwqjjaYmCZfHsFu24GXo"  # Token-2022, 6 decimals
BONK = "DezXAZ8z7PnrnRJjz3wXBoRgixCaDjg2Z1x4GPuTsy3D"  # SPL Token, 5 decimals
ALICE = pubkey_from_seed("alice")
BOB = pubkey_from_seed("bob")
FIXED_NOW = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
MAX_ATTEMPTS = 3


class RecordingSleep:
    """Really sleeps, and remembers each wait the client chose."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(seconds)


@pytest.fixture
def node() -> Iterator[SolanaRpcServer]:
    with SolanaRpcServer() as server:
        yield server


@pytest.fixture
def http_client() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


def make_reader(
    url: str, http_client: httpx.Client, *, sleep: RecordingSleep | None = None, **options: Any
) -> SolanaChainReader:
    retry = RetryPolicy(max_attempts=MAX_ATTEMPTS, base_s=0.01, cap_s=0.2, sleep=sleep or time.sleep)
    rpc = JsonRpcClient(http_client, url, retry=retry, connect_timeout_s=0.5, read_timeout_s=2.0)
    return SolanaChainReader(rpc, now=lambda: FIXED_NOW, **options)


@pytest.fixture
def reader(node: SolanaRpcServer, http_client: httpx.Client) -> SolanaChainReader:
    return make_reader(node.url, http_client)


def read(reader: SolanaChainReader, *addresses: str, tokens: tuple[str, ...] = ()):
    return reader.read([BalanceRequest(address, tokens) for address in addresses], known_decimals={})


# -- balances ----------------------------------------------------------------------------------------


def test_given_lamports_when_read_then_native_sol_is_exact_in_base_units_at_the_nodes_slot(
    node: SolanaRpcServer, reader: SolanaChainReader
):
    # Given: 1.234567891 SOL, every lamport of it significant
    node.set_lamports(ALICE, 1_234_567_891)

    # When
    snapshot = read(reader, ALICE)

    # Then
    wallet = snapshot.wallets[ALICE]
    assert wallet.error is None
    assert wallet.amounts == {SOLANA_NATIVE_MINT: 1_234_567_891}
    assert wallet.decimals == {SOLANA_NATIVE_MINT: 9}
    assert (wallet.discovered, wallet.scanned_to) == ((), None)
    assert snapshot.chain == reader.chain == "solana"
    assert snapshot.block.number == node.slot
    assert snapshot.block.timestamp == datetime.fromtimestamp(SolanaRpcServer.block_time_of(node.slot), UTC)


def test_given_spl_token_and_token_2022_accounts_when_read_then_both_programs_balances_are_read(
    node: SolanaRpcServer, reader: SolanaChainReader
):
    # Given
    node.add_token_account(ALICE, USDC, 25_000_000, 6)
    node.add_token_account(ALICE, PYUSD, 1_500_001, 6, program="spl-token-2022")

    # When
    wallet = read(reader, ALICE).wallets[ALICE]

    # Then
    assert wallet.error is None
    assert wallet.amounts == {SOLANA_NATIVE_MINT: 0, USDC: 25_000_000, PYUSD: 1_500_001}
    assert wallet.decimals == {SOLANA_NATIVE_MINT: 9, USDC: 6, PYUSD: 6}
    assert wallet.discovered == tuple(sorted((USDC, PYUSD)))


def test_given_two_accounts_of_one_mint_when_read_then_their_amounts_are_summed(
    node: SolanaRpcServer, reader: SolanaChainReader
):
    # Given: amounts past 2^53, where a float would lose units
    node.add_token_account(ALICE, BONK, 9_007_199_254_740_993, 5)
    node.add_token_account(ALICE, BONK, 7, 5)

    # When
    wallet = read(reader, ALICE).wallets[ALICE]

    # Then
    assert wallet.amounts[BONK] == 9_007_199_254_741_000
    assert wallet.decimals[BONK] == 5


def test_given_a_wrapped_sol_account_when_read_then_it_is_added_to_native_sol(
    node: SolanaRpcServer, reader: SolanaChainReader
):
    # Given: 1 SOL of lamports and 0.5 SOL wrapped
    node.set_lamports(ALICE, 1_000_000_000)
    node.add_token_account(ALICE, SOLANA_NATIVE_MINT, 500_000_000, 9)

    # When
    wallet = read(reader, ALICE).wallets[ALICE]

    # Then
    assert wallet.amounts == {SOLANA_NATIVE_MINT: 1_500_000_000}
    assert wallet.discovered == ()


def test_given_a_wallet_with_nothing_when_read_then_native_and_asked_tokens_are_zero(
    node: SolanaRpcServer, reader: SolanaChainReader
):
    # Given: a wallet the chain has never seen, asked for USDC too
    empty = pubkey_from_seed("nobody")

    # When
    wallet = read(reader, empty, tokens=(USDC,)).wallets[empty]

    # Then
    assert wallet.error is None
    assert wallet.amounts == {SOLANA_NATIVE_MINT: 0, USDC: 0}
    assert wallet.discovered == ()


def test_given_a_closed_and_an_emptied_account_when_read_again_then_the_chain_state_of_the_moment_is_read(
    node: SolanaRpcServer, reader: SolanaChainReader
):
    # Given
    usdc = node.add_token_account(ALICE, USDC, 10, 6)
    bonk = node.add_token_account(ALICE, BONK, 20, 5)
    first = read(reader, ALICE)
    node.close_token_account(usdc)
    node.set_token_amount(bonk, 0)
    node.advance(3)

    # When
    second = read(reader, ALICE, tokens=(USDC,))

    # Then
    assert first.wallets[ALICE].discovered == tuple(sorted((USDC, BONK)))
    assert second.wallets[ALICE].amounts == {SOLANA_NATIVE_MINT: 0, USDC: 0, BONK: 0}
    assert second.wallets[ALICE].discovered == ()
    assert second.block.number == first.block.number + 3


# -- requests ----------------------------------------------------------------------------------------


def test_given_ten_wallets_when_read_then_exactly_two_http_requests_are_sent(
    node: SolanaRpcServer, reader: SolanaChainReader
):
    # Given
    wallets = [pubkey_from_seed(f"wallet-{index}") for index in range(10)]
    for index, wallet in enumerate(wallets):
        node.set_lamports(wallet, 1_000 + index)

    # When
    snapshot = read(reader, *wallets)

    # Then: one batch of getSlot and three calls per wallet, then getBlockTime
    assert node.request_count == snapshot.requests == 2
    assert node.calls_per_request == [1 + 3 * 10, 1]
    assert node.requests[1].methods == ("getBlockTime",)
    assert [snapshot.wallets[wallet].amounts[SOLANA_NATIVE_MINT] for wallet in wallets] == [
        1_000 + index for index in range(10)
    ]


def test_given_a_small_batch_size_and_answers_out_of_order_when_read_then_calls_are_chunked_and_matched_by_id(
    node: SolanaRpcServer, http_client: httpx.Client
):
    # Given: 31 calls in chunks of 7, each batch answered back to front
    wallets = [pubkey_from_seed(f"chunked-{index}") for index in range(10)]
    for index, wallet in enumerate(wallets):
        node.set_lamports(wallet, index)
        node.add_token_account(wallet, USDC, 100 + index, 6)
    node.reverse_batches = True
    reader = make_reader(node.url, http_client, batch_size=7)

    # When
    snapshot = read(reader, *wallets)

    # Then
    assert node.calls_per_request == [7, 7, 7, 7, 3, 1]
    assert snapshot.requests == 6
    for index, wallet in enumerate(wallets):
        assert snapshot.wallets[wallet].amounts == {SOLANA_NATIVE_MINT: index, USDC: 100 + index}


def test_given_an_answer_at_a_later_slot_when_read_then_the_highest_slot_is_pinned_and_its_time_falls_back_to_now(
    node: SolanaRpcServer, reader: SolanaChainReader
):
    # Given: Bob's balance comes from 5 slots on, a block the node cannot date yet
    later = node.slot + 5
    node.result_for("getBalance", {"context": {"apiVersion": "2.2.14", "slot": later}, "value": 42}, param=BOB)

    # When
    snapshot = read(reader, ALICE, BOB)

    # Then
    assert snapshot.block.number == later
    assert snapshot.block.timestamp == FIXED_NOW
    assert snapshot.wallets[BOB].amounts[SOLANA_NATIVE_MINT] == 42


@pytest.mark.parametrize("answer_null", [False, True])
def test_given_a_skipped_slot_when_read_then_the_block_time_is_now(
    answer_null: bool, node: SolanaRpcServer, reader: SolanaChainReader
):
    # Given
    node.skip_slot(node.slot, answer_null=answer_null)

    # When
    snapshot = read(reader, ALICE)

    # Then
    assert snapshot.block.number == node.slot
    assert snapshot.block.timestamp == FIXED_NOW


# -- failures ----------------------------------------------------------------------------------------


def test_given_a_429_with_retry_after_when_read_then_the_request_is_retried_after_that_wait(
    node: SolanaRpcServer, http_client: httpx.Client
):
    # Given
    node.set_lamports(ALICE, 5)
    node.fail_next(1, status=429, retry_after="0.05")
    sleep = RecordingSleep()
    reader = make_reader(node.url, http_client, sleep=sleep)

    # When
    snapshot = read(reader, ALICE)

    # Then
    assert snapshot.wallets[ALICE].amounts == {SOLANA_NATIVE_MINT: 5}
    assert [request.status for request in node.requests] == [429, 200, 200]
    assert snapshot.requests == 3
    assert len(sleep.waits) == 1 and sleep.waits[0] >= 0.05


def test_given_dropped_connections_when_read_then_the_request_is_retried(
    node: SolanaRpcServer, reader: SolanaChainReader
):
    # Given
    node.drop_next(1)

    # When
    snapshot = read(reader, ALICE)

    # Then
    assert [request.status for request in node.requests] == [None, 200, 200]
    assert snapshot.wallets[ALICE].error is None


def test_given_a_node_that_always_fails_when_read_then_the_chain_is_unavailable_and_the_url_is_not_told(
    node: SolanaRpcServer, reader: SolanaChainReader, caplog: pytest.LogCaptureFixture
):
    # Given
    node.fail_always(503)

    # When
    with pytest.raises(ChainUnavailableError) as raised:
        read(reader, ALICE)

    # Then
    assert raised.value.chain == "solana"
    assert "503" in raised.value.reason
    assert node.request_count == MAX_ATTEMPTS
    logged = [str(record.__dict__) for record in caplog.records]
    assert any("retrying" in line for line in logged)
    told = raised.value.reason + str(raised.value) + "".join(logged)
    assert "127.0.0.1" not in told and f":{node.port}" not in told


def test_given_no_node_listening_when_read_then_the_chain_is_unavailable(http_client: httpx.Client):
    # Given: a port that was just freed
    with SolanaRpcServer() as gone:
        url = gone.url
    reader = make_reader(url, http_client)

    # When / Then
    with pytest.raises(ChainUnavailableError, match="unreachable") as raised:
        read(reader, ALICE)
    assert url not in raised.value.reason


def test_given_no_time_left_when_read_then_the_chain_is_unavailable_without_asking(
    node: SolanaRpcServer, reader: SolanaChainReader
):
    # When
    with pytest.raises(ChainUnavailableError):
        reader.read([BalanceRequest(ALICE)], known_decimals={}, deadline=time.monotonic() - 1)

    # Then
    assert node.request_count == 0


def test_given_an_error_object_for_one_wallets_call_when_read_then_only_that_wallet_fails(
    node: SolanaRpcServer, reader: SolanaChainReader
):
    # Given
    node.set_lamports(ALICE, 10)
    node.set_lamports(BOB, 20)
    node.error_for("getTokenAccountsByOwner", -32005, "Node is unhealthy", param=BOB)

    # When
    snapshot = read(reader, ALICE, BOB)

    # Then
    assert snapshot.wallets[ALICE].error is None
    assert snapshot.wallets[ALICE].amounts == {SOLANA_NATIVE_MINT: 10}
    bob = snapshot.wallets[BOB]
    assert bob.error is not None and "-32005" in bob.error
    assert (bob.amounts, bob.decimals, bob.discovered) == ({}, {}, ())


def test_given_an_address_that_is_not_base58_when_read_then_only_that_wallet_fails(
    node: SolanaRpcServer, reader: SolanaChainReader
):
    # Given: 0, O, I and l are not base58 digits
    bad = "0OIl" + ALICE[4:]

    # When
    snapshot = read(reader, ALICE, bad)

    # Then
    assert snapshot.wallets[ALICE].error is None
    assert snapshot.wallets[bad].error == "getBalance answered error -32602: Invalid param: Invalid"


def _usdc_account_of(owner: str, **token_amount: Any) -> dict[str, Any]:
    return {
        "pubkey": pubkey_from_seed("some-account"),
        "account": {
            "data": {
                "program": "spl-token",
                "parsed": {
                    "info": {
                        "isNative": False,
                        "mint": USDC,
                        "owner": owner,
                        "state": "initialized",
                        "tokenAmount": {
                            "amount": "1",
                            "decimals": 6,
                            "uiAmount": 0.000001,
                            "uiAmountString": "0.000001",
                        }
                        | token_amount,
                    },
                    "type": "account",
                },
                "space": 165,
            },
            "executable": False,
            "lamports": 2039280,
            "owner": SPL_TOKEN_PROGRAM_ID,
            "rentEpoch": 18446744073709551615,
            "space": 165,
        },
    }


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"pubkey": "x"}, "not a list"),
        ([_usdc_account_of(BOB, amount=1.5)], "tokenAmount.amount is not an integer string"),
        ([_usdc_account_of(BOB, amount="1e6")], "tokenAmount.amount is not an integer string"),
        ([_usdc_account_of(BOB, amount="-1")], "tokenAmount.amount is not an integer string"),
        ([_usdc_account_of(BOB, decimals="6")], "tokenAmount.decimals"),
        ([_usdc_account_of(ALICE)], "another owner"),
        (["not an account"], "token account is not an object"),
    ],
)
def test_given_an_answer_not_of_the_documented_shape_when_read_then_only_that_wallet_is_malformed(
    value: Any, problem: str, node: SolanaRpcServer, reader: SolanaChainReader
):
    # Given
    node.set_lamports(ALICE, 1)
    node.result_for(
        "getTokenAccountsByOwner", {"context": {"apiVersion": "2.2.14", "slot": node.slot}, "value": value}, param=BOB
    )

    # When
    snapshot = read(reader, ALICE, BOB)

    # Then
    error = snapshot.wallets[BOB].error
    assert error is not None and error.startswith("malformed answer from the node: ") and problem in error
    assert snapshot.wallets[ALICE].amounts == {SOLANA_NATIVE_MINT: 1}


def test_given_a_balance_without_context_when_read_then_that_wallet_is_malformed(
    node: SolanaRpcServer, reader: SolanaChainReader
):
    # Given
    node.result_for("getBalance", 1_000, param=BOB)

    # When
    snapshot = read(reader, ALICE, BOB)

    # Then
    assert snapshot.wallets[BOB].error == "malformed answer from the node: result is not an object"
    assert snapshot.wallets[ALICE].error is None


def test_given_a_body_that_is_not_json_when_read_then_the_chain_is_unavailable(
    node: SolanaRpcServer, reader: SolanaChainReader
):
    # Given
    node.malformed_next()

    # When / Then
    with pytest.raises(ChainUnavailableError, match="not JSON"):
        read(reader, ALICE)


def test_given_a_node_on_another_chain_when_read_then_the_chain_is_unavailable(http_client: httpx.Client):
    # Given: a devnet node, where mainnet-beta is expected
    with SolanaRpcServer(genesis_hash=DEVNET_GENESIS_HASH) as devnet:
        devnet.set_lamports(ALICE, 1)
        reader = make_reader(devnet.url, http_client, expected_genesis_hash=MAINNET_GENESIS_HASH)

        # When / Then
        with pytest.raises(ChainUnavailableError, match="another chain"):
            read(reader, ALICE)
        assert devnet.calls_per_request == [1 + 1 + 3]


def test_given_the_expected_chain_when_read_twice_then_the_genesis_hash_is_asked_once_within_the_first_batch(
    node: SolanaRpcServer, http_client: httpx.Client
):
    # Given
    reader = make_reader(node.url, http_client, expected_genesis_hash=MAINNET_GENESIS_HASH)

    # When
    first = read(reader, ALICE)
    second = read(reader, ALICE)

    # Then
    assert (first.requests, second.requests) == (2, 2)
    methods = [request.methods for request in node.requests]
    assert methods[0][0] == "getGenesisHash"
    assert sum(call == "getGenesisHash" for request in methods for call in request) == 1


# -- the node's answers keep Solana's documented shapes -----------------------------------------------------

# The example answer of getTokenAccountsByOwner in Solana's RPC docs (jsonParsed, SPL Token).
DOCUMENTED_TOKEN_ACCOUNTS_RESULT: dict[str, Any] = {
    "context": {"apiVersion": "2.0.15", "slot": 341197933},
    "value": [
        {
            "pubkey": "BGocb4GEpbTFm8UFV2VsDSaBXHELPfAXrvd4vtt8QWrA",
            "account": {
                "data": {
                    "program": "spl-token",
                    "parsed": {
                        "info": {
                            "isNative": False,
                            "mint": "2cHr7QS3xfuSV8wdxo3ztuF4xbiarF6Nrgx3qpx3HzXR",
                            "owner": "A1TMhSGzQxMr1TboBKtgixKz1sS6REASMxPo1qsyTSJd",
                            "state": "initialized",
                            "tokenAmount": {
                                "amount": "420000000000000",
                                "decimals": 6,
                                "uiAmount": 420000000.0,
                                "uiAmountString": "420000000",
                            },
                        },
                        "type": "account",
                    },
                    "space": 165,
                },
                "executable": False,
                "lamports": 2039280,
                "owner": "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA",
                "rentEpoch": 18446744073709551615,
                "space": 165,
            },
        }
    ],
}


def shape(value: Any) -> Any:
    """The keys and JSON types of a document, values left out (ints and floats both count as numbers)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def rpc(http_client: httpx.Client, url: str, body: Any) -> Any:
    response = http_client.post(url, json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    return response.json()


def test_the_nodes_token_accounts_have_the_documented_shape(node: SolanaRpcServer, http_client: httpx.Client):
    # Given
    owner = "A1TMhSGzQxMr1TboBKtgixKz1sS6REASMxPo1qsyTSJd"
    node.add_token_account(owner, "2cHr7QS3xfuSV8wdxo3ztuF4xbiarF6Nrgx3qpx3HzXR", 420_000_000_000_000, 6)
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "getTokenAccountsByOwner",
        "params": [owner, {"programId": SPL_TOKEN_PROGRAM_ID}, {"commitment": "finalized", "encoding": "jsonParsed"}],
    }

    # When
    answer = rpc(http_client, node.url, body)

    # Then: the documented example, key for key and type for type; its values where they do not depend on time
    assert set(answer) == {"jsonrpc", "result", "id"} and answer["id"] == 1
    result = answer["result"]
    assert shape(result) == shape(DOCUMENTED_TOKEN_ACCOUNTS_RESULT)
    documented_account = DOCUMENTED_TOKEN_ACCOUNTS_RESULT["value"][0]["account"]
    account = result["value"][0]["account"]
    assert {key: account[key] for key in ("executable", "lamports", "owner", "rentEpoch", "space")} == {
        key: documented_account[key] for key in ("executable", "lamports", "owner", "rentEpoch", "space")
    }
    assert (
        account["data"]["parsed"]["info"]["tokenAmount"]
        == (documented_account["data"]["parsed"]["info"]["tokenAmount"])
    )
    assert b58decode(result["value"][0]["pubkey"]).__len__() == 32


def test_the_nodes_token_2022_and_wrapped_sol_accounts_have_their_extra_fields(
    node: SolanaRpcServer, http_client: httpx.Client
):
    # Given
    node.add_token_account(ALICE, PYUSD, 123, 6, program="spl-token-2022")
    node.add_token_account(ALICE, SOLANA_NATIVE_MINT, 1_000, 9)
    config = {"encoding": "jsonParsed"}

    # When
    token_2022, native = rpc(
        http_client,
        node.url,
        [
            {
                "jsonrpc": "2.0",
                "id": 7,
                "method": "getTokenAccountsByOwner",
                "params": [ALICE, {"programId": TOKEN_2022_PROGRAM_ID}, config],
            },
            {
                "jsonrpc": "2.0",
                "id": 8,
                "method": "getTokenAccountsByOwner",
                "params": [ALICE, {"mint": SOLANA_NATIVE_MINT}, config],
            },
        ],
    )

    # Then
    (account_2022,) = token_2022["result"]["value"]
    assert account_2022["account"]["owner"] == TOKEN_2022_PROGRAM_ID
    assert account_2022["account"]["data"]["program"] == "spl-token-2022"
    assert account_2022["account"]["data"]["parsed"]["info"]["tokenAmount"] == {
        "amount": "123",
        "decimals": 6,
        "uiAmount": 0.000123,
        "uiAmountString": "0.000123",
    }
    (wrapped,) = native["result"]["value"]
    info = wrapped["account"]["data"]["parsed"]["info"]
    assert info["isNative"] is True and info["rentExemptReserve"]["amount"] == "2039280"
    assert wrapped["account"]["lamports"] == 2_039_280 + 1_000


def test_the_nodes_other_methods_answer_in_their_documented_shapes(node: SolanaRpcServer, http_client: httpx.Client):
    # Given
    node.set_lamports(ALICE, 7)
    calls = [
        ("getBalance", [ALICE, {"commitment": "confirmed"}]),
        ("getSlot", []),
        ("getBlockTime", [node.slot]),
        ("getHealth", []),
        ("getGenesisHash", []),
        ("getVersion", []),
    ]

    # When
    answers = rpc(
        http_client,
        node.url,
        [
            {"jsonrpc": "2.0", "id": index, "method": method, "params": params}
            for index, (method, params) in enumerate(calls)
        ],
    )

    # Then
    assert [answer["id"] for answer in answers] == list(range(len(calls)))
    balance, slot, block_time, health, genesis, version = (answer["result"] for answer in answers)
    assert balance == {"context": {"apiVersion": solana_rpc.SOLANA_CORE_VERSION, "slot": node.slot}, "value": 7}
    assert slot == node.slot
    assert block_time == SolanaRpcServer.block_time_of(node.slot)
    assert (health, genesis) == ("ok", MAINNET_GENESIS_HASH)
    assert shape(version) == {"feature-set": "number", "solana-core": "str"}


def test_the_nodes_errors_are_json_rpc_error_objects(node: SolanaRpcServer, http_client: httpx.Client):
    # Given
    calls = [
        ("getAccountInfoz", [ALICE]),
        ("getBalance", ["not-base58!"]),
        ("getBalance", ["1111"]),
        ("getTokenAccountsByOwner", [ALICE, {"programId": SPL_TOKEN_PROGRAM_ID}, {"encoding": "base64"}]),
        ("getTokenAccountsByOwner", [ALICE, {"programId": ALICE}, {"encoding": "jsonParsed"}]),
        ("getBlockTime", [node.slot + 1]),
    ]

    # When
    answers = rpc(
        http_client,
        node.url,
        [
            {"jsonrpc": "2.0", "id": index, "method": method, "params": params}
            for index, (method, params) in enumerate(calls)
        ],
    )

    # Then
    assert all(set(answer) == {"jsonrpc", "error", "id"} for answer in answers)
    errors = [(answer["error"]["code"], answer["error"]["message"]) for answer in answers]
    assert errors[:3] == [
        (-32601, "Method not found"),
        (-32602, "Invalid param: Invalid"),
        (-32602, "Invalid param: WrongSize"),
    ]
    assert errors[3][0] == -32602 and "jsonParsed" in errors[3][1]
    assert errors[4] == (-32602, "Invalid param: unrecognized Token program id")
    assert errors[5] == (-32004, f"Block not available for slot {node.slot + 1}")
    parse_error = http_client.post(node.url, content=b"{", headers={"Content-Type": "application/json"}).json()
    assert parse_error == {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None}


def test_base58_round_trips_the_programs_and_mints_and_generated_keys_are_32_bytes(node: SolanaRpcServer):
    # Given
    known = [SPL_TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID, SOLANA_NATIVE_MINT, MAINNET_GENESIS_HASH, USDC, "1" * 32]

    # When
    decoded = [b58decode(text) for text in known]
    generated = [node.add_token_account(ALICE, USDC, 1, 6) for _ in range(5)]

    # Then
    assert [len(raw) for raw in decoded] == [32] * len(known)
    assert [b58encode(raw) for raw in decoded] == known
    assert decoded[-1] == bytes(32)
    assert all(len(b58decode(pubkey)) == 32 for pubkey in generated) and len(set(generated)) == 5
    assert solana_rpc.NATIVE_MINT == SOLANA_NATIVE_MINT
    assert (solana_rpc.SPL_TOKEN_PROGRAM_ID, solana_rpc.TOKEN_2022_PROGRAM_ID) == (
        SPL_TOKEN_PROGRAM_ID,
        TOKEN_2022_PROGRAM_ID,
    )
