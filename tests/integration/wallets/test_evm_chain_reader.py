"""The EVM chain reader against a real EVM node: the project's pinned anvil, with DemoToken contracts
deployed on it. Faults on the wire (429, dropped connections, a call answered with an error) come from
a loopback proxy in front of the node; everything else is the node's own answer."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator

import pytest
from Crypto.Hash import keccak
from portfolio.adapters.evm_chain_reader import BALANCE_OF, DECIMALS, SYMBOL, TRANSFER_TOPIC, EvmChainReader
from portfolio.domain.tokens import EVM_ZERO_ADDRESS
from portfolio.services.ports import BalanceRequest, ChainSnapshot, ChainUnavailableError

from local_stack import evm_node
from local_stack.evm_node import AnvilNode
from local_stack.rpc_proxy import RpcProxy
from tests.integration.wallets.conftest import EVM_MAX_ATTEMPTS, EvmReaderFactory

ETHER = 10**18


class RecordingSleep:
    """Really sleeps, and remembers each wait the client chose."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(seconds)


def new_wallet() -> str:
    """An address no other test uses: nothing on the shared node has touched it."""
    return "0x" + secrets.token_hex(20)


def read(
    reader: EvmChainReader, *requests: BalanceRequest, known_decimals: dict[str, int] | None = None
) -> ChainSnapshot:
    return reader.read(list(requests), known_decimals=known_decimals or {})


def selector(signature: str) -> str:
    digest = keccak.new(digest_bits=256)
    digest.update(signature.encode())
    return "0x" + digest.hexdigest()[:8]


def constant_answer_code(*, symbol_word: bytes, decimals: int, balance: int) -> str:
    """Runtime bytecode of a contract that answers symbol() with one 32-byte word (a bytes32 symbol, as
    some older tokens do), decimals() with `decimals`, and any other call (balanceOf) with `balance`."""

    def return_word(push: str) -> str:
        return push + "5f52" + "6020" + "5ff3"  # PUSH0 MSTORE; PUSH1 32 PUSH0 RETURN: the word at memory 0

    def jump_if(selector_hex: str, target: int) -> str:
        return "80" + "63" + selector_hex + "14" + f"60{target:02x}" + "57"  # DUP1 PUSH4 EQ PUSH1 JUMPI

    prefix = "5f35" + "60e0" + "1c"  # PUSH0 CALLDATALOAD; PUSH1 224 SHR: the selector
    default = return_word("7f" + f"{balance:064x}")
    symbol_block = "5b" + return_word("7f" + symbol_word.ljust(32, b"\0").hex())
    decimals_block = "5b" + return_word(f"60{decimals:02x}")
    symbol_at = (len(prefix) + 2 * len(jump_if("00" * 4, 0)) + len(default)) // 2
    decimals_at = symbol_at + len(symbol_block) // 2
    return (
        "0x"
        + prefix
        + jump_if(SYMBOL[2:], symbol_at)
        + jump_if(DECIMALS[2:], decimals_at)
        + default
        + symbol_block
        + decimals_block
    )


@pytest.fixture
def proxy(anvil: AnvilNode) -> Iterator[RpcProxy]:
    with RpcProxy(anvil.url) as running:
        yield running


# -- the compiled contract -----------------------------------------------------------------------------


def test_given_the_checked_in_demo_token_then_its_abi_has_the_calls_the_reader_and_the_node_helpers_make():
    # Given
    compiled = json.loads(evm_node.DEMO_TOKEN_PATH.read_text())

    # When
    functions = {
        f"{entry['name']}({','.join(arg['type'] for arg in entry['inputs'])})"
        for entry in compiled["abi"]
        if entry["type"] == "function"
    }
    events = {
        f"{entry['name']}({','.join(arg['type'] for arg in entry['inputs'])})"
        for entry in compiled["abi"]
        if entry["type"] == "event"
    }

    # Then
    assert compiled["bytecode"].startswith("0x") and len(compiled["bytecode"]) > 1000
    int(compiled["bytecode"], 16)
    assert {
        "balanceOf(address)",
        "decimals()",
        "symbol()",
        "transfer(address,uint256)",
        "mint(address,uint256)",
    } <= functions
    assert selector("balanceOf(address)") == BALANCE_OF
    assert selector("decimals()") == DECIMALS
    assert selector("symbol()") == SYMBOL
    assert selector("transfer(address,uint256)") == "0x" + evm_node.TRANSFER_SELECTOR
    assert selector("mint(address,uint256)") == "0x" + evm_node.MINT_SELECTOR
    assert "Transfer(address,address,uint256)" in events
    topic = keccak.new(digest_bits=256, data=b"Transfer(address,address,uint256)").hexdigest()
    assert "0x" + topic == TRANSFER_TOPIC == evm_node.TRANSFER_TOPIC


# -- balances ----------------------------------------------------------------------------------------


def test_given_a_native_balance_when_read_then_it_is_exact_in_wei_at_the_pinned_block(
    anvil: AnvilNode, evm_reader: EvmChainReader
):
    # Given: 1.234567890123456789 ETH, every wei of it significant
    wallet = new_wallet()
    anvil.set_native_balance(wallet, 1_234_567_890_123_456_789)
    latest = anvil.rpc("eth_getBlockByNumber", ["latest", False])

    # When
    snapshot = read(evm_reader, BalanceRequest(wallet))

    # Then
    balances = snapshot.wallets[wallet]
    assert balances.error is None
    assert balances.amounts == {EVM_ZERO_ADDRESS: 1_234_567_890_123_456_789}
    assert (balances.decimals, balances.symbols, balances.discovered, balances.scanned_to) == ({}, {}, (), None)
    assert snapshot.chain == evm_reader.chain == "ethereum"
    assert snapshot.block.number == int(latest["number"], 16)
    assert snapshot.block.hash == latest["hash"]
    assert int(snapshot.block.timestamp.timestamp()) == int(latest["timestamp"], 16)
    assert snapshot.block.timestamp.tzinfo is not None


def test_given_a_demo_token_balance_when_read_then_the_erc20_amount_is_exact_and_an_empty_wallet_reads_zero(
    anvil: AnvilNode, evm_reader: EvmChainReader
):
    # Given: 250.000001 DUSD (6 decimals), the token's decimals known already
    token = anvil.deploy_token("Demo USD", "DUSD", 6)
    holder, empty = new_wallet(), new_wallet()
    anvil.mint(token, holder, 250_000_001)
    anvil.transfer(token, holder, anvil.accounts[1], 1)

    # When
    snapshot = read(
        evm_reader,
        BalanceRequest(holder, (token,)),
        BalanceRequest(empty, (token.upper().replace("0X", "0x"),)),  # any case: read as lowercase
        known_decimals={token: 6},
    )

    # Then
    assert snapshot.wallets[holder].amounts == {EVM_ZERO_ADDRESS: 0, token: 250_000_000}
    assert snapshot.wallets[empty].amounts == {EVM_ZERO_ADDRESS: 0, token: 0}
    assert snapshot.wallets[holder].decimals == {}  # given, so not asked
    assert snapshot.requests == 2


def test_given_a_token_whose_decimals_are_not_known_when_read_then_its_decimals_and_symbol_are_read(
    anvil: AnvilNode, evm_reader: EvmChainReader
):
    # Given
    token = anvil.deploy_token("Wrapped Demo", "WDEMO", 8)
    wallet = new_wallet()
    anvil.mint(token, wallet, 12_345_678_901)

    # When
    snapshot = read(evm_reader, BalanceRequest(wallet, (token,)))

    # Then
    balances = snapshot.wallets[wallet]
    assert balances.amounts == {EVM_ZERO_ADDRESS: 0, token: 12_345_678_901}
    assert balances.decimals == {token: 8}
    assert balances.symbols == {token: "WDEMO"}
    assert snapshot.requests == 2  # decimals() and symbol() ride in the balances' batch


def test_given_tokens_the_chain_cannot_tell_about_when_read_then_they_are_left_out_and_the_wallet_is_read(
    anvil: AnvilNode, evm_reader: EvmChainReader
):
    # Given: a token answering a bytes32 symbol, an address with no code, a contract whose every call
    # reverts and one whose every call runs out of gas
    old_style, no_code, reverts, burns_gas = (new_wallet() for _ in range(4))
    anvil.set_code(old_style, constant_answer_code(symbol_word=b"OLD", decimals=18, balance=7 * ETHER))
    anvil.set_code(reverts, "0x5f5ffd")  # PUSH0 PUSH0 REVERT
    anvil.set_code(burns_gas, "0x5b5f56")  # JUMPDEST PUSH0 JUMP: loops until the gas is gone
    wallet = new_wallet()
    anvil.set_native_balance(wallet, 3)

    # When
    snapshot = read(evm_reader, BalanceRequest(wallet, (old_style, no_code, reverts, burns_gas)))

    # Then
    balances = snapshot.wallets[wallet]
    assert balances.error is None
    assert balances.amounts == {EVM_ZERO_ADDRESS: 3, old_style: 7 * ETHER}
    assert balances.decimals == {old_style: 18}
    assert balances.symbols == {old_style: "OLD"}


# -- discovery ---------------------------------------------------------------------------------------


def test_given_a_token_in_no_list_sent_to_the_wallet_when_scanned_then_it_is_discovered_and_the_scan_advances(
    anvil: AnvilNode, evm_reader: EvmChainReader
):
    # Given: a token the wallet was never asked about, minted to it after the scan's start
    wallet = new_wallet()
    scan_from = anvil.block_number() + 1
    listed = anvil.deploy_token("Listed", "LST", 18)
    anvil.mint(listed, wallet, 5)
    airdrop = anvil.deploy_token("Airdrop", "AIR", 9)
    anvil.mint(airdrop, wallet, 42 * 10**9)

    # When
    first = read(evm_reader, BalanceRequest(wallet, (listed,), scan_from=scan_from), known_decimals={listed: 18})

    # Then
    balances = first.wallets[wallet]
    assert balances.error is None
    assert balances.discovered == (airdrop,)
    assert balances.amounts == {EVM_ZERO_ADDRESS: 0, listed: 5, airdrop: 42 * 10**9}
    assert balances.decimals == {airdrop: 9}
    assert balances.symbols == {airdrop: "AIR"}
    assert balances.scanned_to == first.block.number
    assert first.requests == 3  # the block, the balances and the scan, then the discovered token

    # When: the next read resumes after what was scanned
    anvil.mine()
    second = read(
        evm_reader,
        BalanceRequest(wallet, (listed, airdrop), scan_from=balances.scanned_to + 1),
        known_decimals={listed: 18, airdrop: 9},
    )

    # Then
    assert second.wallets[wallet].discovered == ()
    assert second.wallets[wallet].scanned_to == second.block.number == first.block.number + 1
    assert second.wallets[wallet].amounts == {EVM_ZERO_ADDRESS: 0, listed: 5, airdrop: 42 * 10**9}
    assert second.requests == 2


def test_given_a_long_way_to_scan_when_read_then_each_read_covers_its_ranges_and_the_next_one_continues(
    anvil: AnvilNode, make_evm_reader: EvmReaderFactory
):
    # Given: a mint 6 blocks after the scan's start; a read covers 2 ranges of 2 blocks
    wallet = new_wallet()
    scan_from = anvil.block_number() + 1
    anvil.mine(5)
    token = anvil.deploy_token("Late", "LATE", 18)  # block scan_from + 5
    anvil.mint(token, wallet, 1)  # block scan_from + 6
    reader = make_evm_reader(log_block_range=2, log_ranges_per_read=2)

    # When
    first = read(reader, BalanceRequest(wallet, scan_from=scan_from))
    second = read(reader, BalanceRequest(wallet, scan_from=first.wallets[wallet].scanned_to + 1))

    # Then
    assert (first.wallets[wallet].scanned_to, first.wallets[wallet].discovered) == (scan_from + 3, ())
    assert second.wallets[wallet].scanned_to == scan_from + 6 == second.block.number
    assert second.wallets[wallet].discovered == (token,)


def test_given_a_scan_start_past_the_pinned_block_when_read_then_nothing_is_scanned(
    anvil: AnvilNode, evm_reader: EvmChainReader
):
    # Given
    wallet = new_wallet()

    # When
    snapshot = read(evm_reader, BalanceRequest(wallet, scan_from=anvil.block_number() + 10))

    # Then
    assert (snapshot.wallets[wallet].scanned_to, snapshot.wallets[wallet].discovered) == (None, ())


# -- batching ----------------------------------------------------------------------------------------


def test_given_a_batch_size_of_two_when_read_then_the_calls_are_chunked_and_the_amounts_are_the_same(
    anvil: AnvilNode, make_evm_reader: EvmReaderFactory
):
    # Given: three wallets holding two tokens, one of them of unknown decimals
    known, unknown = anvil.deploy_token("Known", "KNW", 18), anvil.deploy_token("Unknown", "UNK", 4)
    wallets = [new_wallet() for _ in range(3)]
    for index, wallet in enumerate(wallets, start=1):
        anvil.mint(known, wallet, index * ETHER)
        anvil.mint(unknown, wallet, index * 10_000)
        anvil.set_native_balance(wallet, index)
    requests = [BalanceRequest(wallet, (known, unknown)) for wallet in wallets]

    # When
    whole = make_evm_reader().read(requests, known_decimals={known: 18})
    chunked = make_evm_reader(batch_size=2).read(requests, known_decimals={known: 18})

    # Then
    assert chunked.wallets == whole.wallets
    assert chunked.wallets[wallets[2]].amounts == {EVM_ZERO_ADDRESS: 3, known: 3 * ETHER, unknown: 30_000}
    assert whole.requests == 2
    # 1 block request; 3 wallets x 3 calls + decimals() and symbol() = 11 calls in 6 requests of 2
    assert chunked.requests == 1 + 6


def test_given_ten_wallets_and_three_known_tokens_when_read_then_exactly_two_http_requests_are_sent(
    anvil: AnvilNode, proxy: RpcProxy, make_evm_reader: EvmReaderFactory
):
    # Given: a reader that has checked the node's chain id already
    tokens = tuple(anvil.deploy_token(f"Token {index}", f"T{index}", 18) for index in range(3))
    wallets = [new_wallet() for _ in range(10)]
    anvil.mint(tokens[0], wallets[9], 99)
    reader = make_evm_reader(proxy.url)
    known = dict.fromkeys(tokens, 18)
    read(reader, BalanceRequest(wallets[0], tokens), known_decimals=known)
    proxy.requests.clear()

    # When
    snapshot = reader.read([BalanceRequest(wallet, tokens) for wallet in wallets], known_decimals=known)

    # Then
    assert snapshot.requests == 2
    assert len(proxy.requests) == 2
    assert [call["method"] for call in proxy.requests[0]] == ["eth_getBlockByNumber"]
    assert len(proxy.requests[1]) == 10 * (1 + 3)
    assert snapshot.wallets[wallets[9]].amounts == {EVM_ZERO_ADDRESS: 0, tokens[0]: 99, tokens[1]: 0, tokens[2]: 0}
    assert all(balances.error is None for balances in snapshot.wallets.values())


# -- failures ----------------------------------------------------------------------------------------


def test_given_a_node_on_another_chain_when_read_then_the_chain_is_unavailable_every_time(
    make_evm_reader: EvmReaderFactory,
):
    # Given: a reader of Arbitrum One pointed at a chain-id-1 node
    reader = make_evm_reader(chain_id=42161)

    # When / Then: refused, and nothing remembered, so the next read checks again
    for _ in range(2):
        with pytest.raises(ChainUnavailableError) as raised:
            read(reader, BalanceRequest(new_wallet()))
        assert raised.value.reason == "node is on chain id 1, expected 42161"
        assert raised.value.chain == "ethereum"


def test_given_the_node_goes_down_when_read_then_the_chain_is_unavailable_quickly_and_readable_once_back(
    make_evm_reader: EvmReaderFactory,
):
    # Given: a node of its own, read once, then killed
    with AnvilNode(chain_id=1) as node:
        reader = make_evm_reader(node.url)
        wallet = new_wallet()
        node.set_native_balance(wallet, 5)
        assert read(reader, BalanceRequest(wallet)).wallets[wallet].amounts == {EVM_ZERO_ADDRESS: 5}
        node.kill()

        # When
        started = time.monotonic()
        with pytest.raises(ChainUnavailableError) as raised:
            read(reader, BalanceRequest(wallet))
        elapsed = time.monotonic() - started

        # Then
        assert "unreachable" in raised.value.reason
        assert f"gave up after {EVM_MAX_ATTEMPTS} attempt(s)" in raised.value.reason
        assert elapsed < 2
        assert node.url not in str(raised.value) and str(node.port) not in str(raised.value)

        # When: it comes back (a fresh chain on the same port)
        node.restart()
        snapshot = read(reader, BalanceRequest(wallet))

        # Then
        assert snapshot.wallets[wallet].amounts == {EVM_ZERO_ADDRESS: 0}


def test_given_the_pinned_block_is_reorganized_away_before_the_balances_are_read_then_the_chain_is_unavailable(
    anvil: AnvilNode, proxy: RpcProxy, make_evm_reader: EvmReaderFactory
):
    # Given: a block that a reorg will replace between the two requests of the read
    wallet = new_wallet()
    before = anvil.snapshot()
    anvil.set_native_balance(wallet, 10 * ETHER)
    anvil.mine()
    pinned = anvil.block_number()
    reader = make_evm_reader(proxy.url)

    def reorganize() -> None:
        anvil.revert(before)
        anvil.send_native(anvil.accounts[1], anvil.accounts[2], 1)  # another block at that height
        anvil.mine()

    proxy.before_next("eth_getBalance", reorganize)

    # When
    with pytest.raises(ChainUnavailableError) as raised:
        read(reader, BalanceRequest(wallet))

    # Then
    assert raised.value.reason == f"block {pinned} was reorganized away; will retry"

    # When: read again after the reorg
    snapshot = read(reader, BalanceRequest(wallet))

    # Then: the new chain's state
    assert snapshot.wallets[wallet].amounts == {EVM_ZERO_ADDRESS: 0}


def test_given_a_429_with_retry_after_then_ok_when_read_then_the_request_is_retried_and_succeeds(
    anvil: AnvilNode, proxy: RpcProxy, make_evm_reader: EvmReaderFactory
):
    # Given
    wallet = new_wallet()
    anvil.set_native_balance(wallet, 77)
    proxy.fail_next(2, status=429, retry_after="0.05")
    sleep = RecordingSleep()
    reader = make_evm_reader(proxy.url, sleep=sleep)

    # When
    snapshot = read(reader, BalanceRequest(wallet))

    # Then
    assert snapshot.wallets[wallet].amounts == {EVM_ZERO_ADDRESS: 77}
    assert proxy.statuses == [429, 429, 200, 200]
    assert snapshot.requests == 4
    assert len(sleep.waits) == 2 and min(sleep.waits) >= 0.05


def test_given_a_dropped_connection_when_read_then_the_request_is_retried(
    anvil: AnvilNode, proxy: RpcProxy, make_evm_reader: EvmReaderFactory
):
    # Given
    wallet = new_wallet()
    anvil.set_native_balance(wallet, 8)
    proxy.drop_next(1)

    # When
    snapshot = read(make_evm_reader(proxy.url), BalanceRequest(wallet))

    # Then
    assert proxy.statuses == [None, 200, 200]
    assert snapshot.wallets[wallet].amounts == {EVM_ZERO_ADDRESS: 8}


def test_given_calls_answered_with_errors_when_read_then_only_their_wallets_fail_a_refused_scan_keeps_balances(
    anvil: AnvilNode, proxy: RpcProxy, make_evm_reader: EvmReaderFactory
):
    # Given: the node refuses one wallet's balance call (a provider's per-call limit) and another
    # wallet's log scan (a range it will not serve)
    token = anvil.deploy_token("Demo", "DMO", 18)
    limited, refused_scan, fine = new_wallet(), new_wallet(), new_wallet()
    for wallet in (limited, refused_scan, fine):
        anvil.mint(token, wallet, 1000)
    proxy.error_calls(lambda call: call["method"] == "eth_getBalance" and call["params"][0] == limited)
    proxy.error_calls(
        lambda call: call["method"] == "eth_getLogs" and call["params"][0]["topics"][2].endswith(refused_scan[2:]),
        code=-32005,
        message="query returned more than 10000 results",
    )
    start = anvil.block_number() - 5

    # When
    snapshot = read(
        make_evm_reader(proxy.url),
        *(BalanceRequest(wallet, (token,), scan_from=start) for wallet in (limited, refused_scan, fine)),
        known_decimals={token: 18},
    )

    # Then
    assert snapshot.wallets[limited].error == "eth_getBalance answered error -32005: limit exceeded"
    assert snapshot.wallets[limited].amounts == {}
    refused = snapshot.wallets[refused_scan]
    assert refused.error is None and refused.amounts == {EVM_ZERO_ADDRESS: 0, token: 1000}
    assert refused.scan_error is not None and "more than 10000 results" in refused.scan_error
    assert refused.scanned_to is None
    assert snapshot.wallets[fine].error is None
    assert snapshot.wallets[fine].amounts == {EVM_ZERO_ADDRESS: 0, token: 1000}
    assert snapshot.wallets[fine].scanned_to == snapshot.block.number


def test_given_a_wallet_that_is_not_an_evm_address_when_read_then_only_that_wallet_fails_without_asking(
    anvil: AnvilNode, proxy: RpcProxy, make_evm_reader: EvmReaderFactory
):
    # Given
    good = new_wallet()
    anvil.set_native_balance(good, 1)

    # When
    snapshot = read(make_evm_reader(proxy.url), BalanceRequest("0x1234"), BalanceRequest(good))

    # Then
    assert snapshot.wallets["0x1234"].error == "the wallet is not an EVM address"
    assert snapshot.wallets[good].amounts == {EVM_ZERO_ADDRESS: 1}
    assert all("0x1234" not in json.dumps(calls) for calls in proxy.requests)


def test_given_no_time_left_when_read_then_the_chain_is_unavailable_without_asking(
    proxy: RpcProxy, make_evm_reader: EvmReaderFactory
):
    # When
    with pytest.raises(ChainUnavailableError, match="no time left"):
        make_evm_reader(proxy.url).read([BalanceRequest(new_wallet())], known_decimals={}, deadline=time.monotonic())

    # Then
    assert proxy.requests == []


def test_given_a_token_whose_contract_reverts_saying_not_found_when_read_then_it_is_left_out_and_nothing_else_fails(
    anvil: AnvilNode, proxy: RpcProxy, make_evm_reader: EvmReaderFactory
):
    # Given a token whose balanceOf answers a revert whose text reads like a missing block
    token = anvil.deploy_token("Demo", "DMO", 18)
    hostile = anvil.deploy_token("Hostile", "HST", 18).lower()
    wallet = new_wallet()
    anvil.mint(token, wallet, 7)
    proxy.error_calls(
        lambda call: call["method"] == "eth_call" and call["params"][0]["to"] == hostile,
        code=3,
        message="execution reverted: not found",
    )

    # When the wallet is read with it
    snapshot = read(
        make_evm_reader(proxy.url), BalanceRequest(wallet, (token, hostile)), known_decimals={token: 18, hostile: 18}
    )

    # Then the chain is read (no reorg is assumed), the hostile token is left out, the rest stands
    assert snapshot.wallets[wallet].error is None
    assert snapshot.wallets[wallet].amounts == {EVM_ZERO_ADDRESS: 0, token.lower(): 7}
