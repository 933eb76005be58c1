"""EVM wallets' balances over JSON-RPC: the ChainReader of one EVM chain (Ethereum, an L2, BSC, ...).

A read costs two HTTP requests, three when it finds tokens it has to learn about:

1. the pinned block: eth_getBlockByNumber("latest"), with eth_chainId in the same batch until the node
   was once found on the expected chain (a node on another chain raises ChainUnavailableError);
2. per wallet, eth_getBalance, balanceOf(wallet) of each of its tokens (eth_call), decimals() and
   symbol() of its tokens whose decimals were not given, and, when its scan is due, eth_getLogs of the
   ERC-20 Transfer events to it over up to `log_ranges_per_read` ranges of `log_block_range` blocks;
   all in one batch, split every `batch_size` calls;
3. only when the scan found tokens the wallet was not asked about: their balanceOf, decimals() and
   symbol().

Balances and token reads name the pinned block by hash (EIP-1898, canonical only), so a reorg that
drops it is an error ("block N was reorganized away", ChainUnavailableError), never a quiet read of
another block. The log scan covers blocks from `scan_from` up to the pinned one at most, and says how
far it got in `scanned_to`.

Amounts are integer base units from the 32-byte words the node answers; the native coin stands under
tokens.EVM_ZERO_ADDRESS. A token the chain cannot tell about is left out of `amounts` (absent never
means zero): no code at its address, a balanceOf or decimals() that reverts or otherwise fails in the
EVM, an answer that does not decode. Such a token cannot be valued, and a hostile contract that a
Transfer log points at must not stall its holder's sync. A symbol that does not decode is left out.

Failures: a request the node does not answer (down, timed out, rate limited past the retries, not
JSON-RPC) raises ChainUnavailableError. A call of a wallet that the node answers with any other error
(a provider's per-call limit, an eth_getLogs range it refuses, ...) sets that wallet's `error`, and
the other wallets are read as usual. The node's URL carries a provider key: it reaches no log line
and no error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from portfolio.adapters.json_rpc import JsonRpcClient, RpcCall, RpcError, RpcOutOfTimeError, RpcUnavailableError
from portfolio.domain.tokens import EVM_ZERO_ADDRESS
from portfolio.observability import logger
from portfolio.services.ports import BalanceRequest, ChainSnapshot, ChainUnavailableError, PinnedBlock, WalletBalances

DEFAULT_BATCH_SIZE = 500
DEFAULT_LOG_BLOCK_RANGE = 2000
DEFAULT_LOG_RANGES_PER_READ = 5

# Function selectors (the first 4 bytes of keccak256 of the signature) and the Transfer event's topic.
BALANCE_OF = "0x70a08231"  # balanceOf(address)
DECIMALS = "0x313ce567"  # decimals()
SYMBOL = "0x95d89b41"  # symbol()
TRANSFER_TOPIC = (
    "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"  # Transfer(address,address,uint256)
)

MAX_SYMBOL_CHARS = 64
_WORD_HEX = 64
_ADDRESS = re.compile(r"^0x[0-9a-f]{40}$")
# What nodes answer for a block hash they do not have (any more), or no longer on the canonical chain:
# EIP-1474's "resource not found" (-32001), geth's "header for hash not found", "block not found", ...
# Only eth_getBalance answers are read for it: a token contract's own revert text may say anything.
_BLOCK_GONE_CODES = frozenset({-32001})
_BLOCK_GONE_TEXTS = ("not found", "unknown block", "not currently canonical", "non-canonical")
# What nodes answer when the contract itself failed: a revert, or an EVM halt (out of gas, bad opcode).
_EXECUTION_FAILED_CODES = frozenset({3})
_EXECUTION_FAILED_TEXTS = ("revert", "out of gas", "outofgas", "evm error", "invalid opcode", "stack underflow")


class _Kind(Enum):
    NATIVE = "eth_getBalance"
    BALANCE = "balanceOf"
    LOGS = "eth_getLogs"
    DECIMALS = "decimals"
    SYMBOL = "symbol"


@dataclass
class _Wallet:
    """One request while it is being read."""

    key: str  # the address as requested: the snapshot's key
    address: str
    tokens: tuple[str, ...]
    scan: list[tuple[int, int]] = field(default_factory=list)  # eth_getLogs ranges, inclusive
    amounts: dict[str, int] = field(default_factory=dict)
    discovered: list[str] = field(default_factory=list)
    error: str | None = None
    scan_error: str | None = None  # a log range failed: balances stand, the scan resumes at that range
    scanned: set[int] = field(default_factory=set)  # the last blocks of the ranges read

    def fail(self, problem: str) -> None:
        if self.error is None:
            self.error = problem


@dataclass
class _Token:
    """What the chain told of one token's decimals and symbol in this read (None: not told)."""

    decimals: int | None = None
    symbol: str | None = None


@dataclass(frozen=True, slots=True)
class _Slot:
    """What one call of a batch is for: a wallet's native or token balance or log scan, or a token's metadata."""

    kind: _Kind
    wallet: _Wallet | None = None
    token: str | None = None
    last_block: int | None = None  # of the range an eth_getLogs call covers


class EvmChainReader:
    """Reads many wallets of one EVM chain at one pinned block in batched JSON-RPC requests.

    Safe to share across threads, but `ChainSnapshot.requests` counts the client's requests made
    during a read, so a client shared by concurrent reads inflates it.
    """

    def __init__(
        self,
        chain: str,
        chain_id: int,
        rpc: JsonRpcClient,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        log_block_range: int = DEFAULT_LOG_BLOCK_RANGE,
        log_ranges_per_read: int = DEFAULT_LOG_RANGES_PER_READ,
    ) -> None:
        if batch_size < 1 or log_block_range < 1 or log_ranges_per_read < 1:
            raise ValueError("batch_size, log_block_range and log_ranges_per_read must be at least 1")
        self._chain = chain
        self._chain_id = chain_id
        self._rpc = rpc
        self._batch_size = batch_size
        self._log_block_range = log_block_range
        self._log_ranges_per_read = log_ranges_per_read
        self._chain_id_checked = False

    def __repr__(self) -> str:
        return f"EvmChainReader(chain={self._chain!r}, chain_id={self._chain_id}, batch_size={self._batch_size})"

    @property
    def chain(self) -> str:
        return self._chain

    def read(
        self,
        requests: Sequence[BalanceRequest],
        *,
        known_decimals: Mapping[str, int],
        deadline: float | None = None,
    ) -> ChainSnapshot:
        """Every wallet of `requests` at one pinned block; raises ChainUnavailableError when the node
        cannot be read at all. `known_decimals` (by lowercase token address) spares the decimals()
        and symbol() calls of the tokens it holds."""
        sent_before = self._rpc.requests_sent
        block = self._pin_block(deadline)
        block_param = {"blockHash": block.hash, "requireCanonical": True}
        known = {token.lower() for token in known_decimals}
        wallets = [self._wallet(request, block.number) for request in requests]
        tokens: dict[str, _Token] = {}

        # Request 2: every wallet's balances and log scan, and what is unknown of its tokens.
        calls: list[tuple[RpcCall, _Slot]] = []
        for wallet in wallets:
            if wallet.error is not None:
                continue
            calls.append((RpcCall("eth_getBalance", [wallet.address, block_param]), _Slot(_Kind.NATIVE, wallet)))
            calls += [_balance_of(wallet, token, block_param) for token in wallet.tokens]
            calls += [_logs_call(wallet, start, end) for start, end in wallet.scan]
            calls += self._metadata_calls([t for t in wallet.tokens if t not in known], tokens, block_param)
        self._take(self._ask(calls, deadline), block, tokens)

        # Request 3, only when the scan found tokens: their balances, and what is unknown of them.
        calls = []
        for wallet in wallets:
            if wallet.error is None:
                calls += [_balance_of(wallet, token, block_param) for token in wallet.discovered]
                calls += self._metadata_calls([t for t in wallet.discovered if t not in known], tokens, block_param)
        if calls:
            self._take(self._ask(calls, deadline), block, tokens)

        snapshot = ChainSnapshot(
            chain=self._chain,
            block=block,
            wallets={wallet.key: self._balances(wallet, known, tokens) for wallet in wallets},
            requests=self._rpc.requests_sent - sent_before,
        )
        failed = sum(1 for balances in snapshot.wallets.values() if balances.error is not None)
        if failed:
            logger.warning("wallet reads failed", extra={"chain": self._chain, "wallets": failed})
        return snapshot

    # -- asking --------------------------------------------------------------------------------------

    def _ask(self, calls: Sequence[tuple[RpcCall, _Slot]], deadline: float | None) -> list[tuple[_Slot, Any]]:
        results = self._send([call for call, _ in calls], deadline)
        return [(slot, result) for (_, slot), result in zip(calls, results, strict=True)]

    def _send(self, calls: Sequence[RpcCall], deadline: float | None) -> list[Any | RpcError]:
        """The calls' results in order, `batch_size` calls a request."""
        results: list[Any | RpcError] = []
        try:
            for start in range(0, len(calls), self._batch_size):
                results.extend(self._rpc.call_batch(calls[start : start + self._batch_size], deadline=deadline))
        except RpcUnavailableError as error:
            raise ChainUnavailableError(
                self._chain, str(error), node_failing=not isinstance(error, RpcOutOfTimeError)
            ) from None
        return results

    def _pin_block(self, deadline: float | None) -> PinnedBlock:
        calls = [] if self._chain_id_checked else [RpcCall("eth_chainId", [])]
        calls.append(RpcCall("eth_getBlockByNumber", ["latest", False]))
        *chain_id, latest = self._send(calls, deadline)
        if chain_id:
            answered = chain_id[0]
            if isinstance(answered, RpcError):
                raise ChainUnavailableError(self._chain, f"eth_chainId answered error {answered.code}")
            node_chain_id = _hex_int(answered)
            if node_chain_id is None:
                raise ChainUnavailableError(self._chain, "eth_chainId answered something that is not a number")
            if node_chain_id != self._chain_id:
                raise ChainUnavailableError(
                    self._chain, f"node is on chain id {node_chain_id}, expected {self._chain_id}"
                )
        if isinstance(latest, RpcError):
            raise ChainUnavailableError(self._chain, f"eth_getBlockByNumber answered error {latest.code}")
        block = _pinned_block(latest)
        if block is None:
            raise ChainUnavailableError(self._chain, "the node's latest block is not of the expected shape")
        self._chain_id_checked = True
        return block

    def _wallet(self, request: BalanceRequest, pinned: int) -> _Wallet:
        address = request.address.strip().lower()
        tokens = tuple(dict.fromkeys(token.strip().lower() for token in request.tokens if token))
        wallet = _Wallet(request.address, address, tuple(t for t in tokens if t != EVM_ZERO_ADDRESS))
        if not _ADDRESS.match(address):
            wallet.fail("the wallet is not an EVM address")
        elif bad := next((token for token in wallet.tokens if not _ADDRESS.match(token)), None):
            wallet.fail(f"token {bad[:60]!r} is not an EVM address")
        elif request.scan_from is not None and request.scan_from <= pinned:
            start = max(0, request.scan_from)
            while start <= pinned and len(wallet.scan) < self._log_ranges_per_read:
                end = min(start + self._log_block_range - 1, pinned)
                wallet.scan.append((start, end))
                start = end + 1
        return wallet

    @staticmethod
    def _metadata_calls(
        unknown: Sequence[str], tokens: dict[str, _Token], block_param: dict[str, Any]
    ) -> list[tuple[RpcCall, _Slot]]:
        """decimals() and symbol() of the tokens not asked about yet in this read (once per token)."""
        calls = []
        for token in unknown:
            if token not in tokens:
                tokens[token] = _Token()
                calls.append((_eth_call(token, DECIMALS, block_param), _Slot(_Kind.DECIMALS, token=token)))
                calls.append((_eth_call(token, SYMBOL, block_param), _Slot(_Kind.SYMBOL, token=token)))
        return calls

    # -- reading the answers -------------------------------------------------------------------------

    def _take(self, answers: list[tuple[_Slot, Any]], block: PinnedBlock, tokens: dict[str, _Token]) -> None:
        for slot, answer in answers:
            if isinstance(answer, RpcError) and slot.kind is _Kind.NATIVE and _block_gone(answer):
                raise ChainUnavailableError(
                    self._chain, f"block {block.number} was reorganized away; will retry", node_failing=False
                )
        for slot, answer in answers:
            if slot.kind is _Kind.DECIMALS or slot.kind is _Kind.SYMBOL:
                assert slot.token is not None
                _take_metadata(tokens[slot.token], slot.kind, answer)
                continue
            wallet = slot.wallet
            assert wallet is not None
            if isinstance(answer, RpcError):
                if slot.kind is _Kind.BALANCE and _execution_failed(answer):
                    continue  # the token's own code failed: it cannot be read, the wallet can
                problem = f"{slot.kind.value} answered error {answer.code}: {answer.message[:200]}"
                if slot.kind is _Kind.LOGS:
                    # A range the node refuses (too many results, a provider's limit): the balances read
                    # stand; discovery tries the same blocks again next time.
                    wallet.scan_error = wallet.scan_error or problem
                    continue
                wallet.fail(problem)
            elif slot.kind is _Kind.NATIVE:
                if (wei := _hex_int(answer)) is None:
                    wallet.fail("eth_getBalance answered something that is not a number")
                else:
                    wallet.amounts[EVM_ZERO_ADDRESS] = wei
            elif slot.kind is _Kind.BALANCE:
                assert slot.token is not None
                if (amount := _first_word(answer)) is not None:
                    wallet.amounts[slot.token] = amount
            elif not _take_logs(wallet, answer):
                wallet.scan_error = wallet.scan_error or "eth_getLogs answered something that is not a list of logs"
            elif slot.last_block is not None:
                wallet.scanned.add(slot.last_block)

    def _balances(self, wallet: _Wallet, known: set[str], tokens: dict[str, _Token]) -> WalletBalances:
        if wallet.error is not None:
            return WalletBalances(wallet.address, error=wallet.error)
        amounts: dict[str, int] = {}
        decimals: dict[str, int] = {}
        symbols: dict[str, str] = {}
        for token, amount in wallet.amounts.items():
            if token == EVM_ZERO_ADDRESS or token in known:
                amounts[token] = amount
                continue
            told = tokens[token]
            if told.decimals is None:
                continue  # not an ERC-20 that can be valued
            amounts[token] = amount
            decimals[token] = told.decimals
            if told.symbol is not None:
                symbols[token] = told.symbol
        return WalletBalances(
            wallet.address,
            amounts=amounts,
            decimals=decimals,
            symbols=symbols,
            discovered=tuple(wallet.discovered),
            scanned_to=_scanned_to(wallet),
            scan_error=wallet.scan_error,
        )


def _scanned_to(wallet: _Wallet) -> int | None:
    """The end of the ranges read without a gap from the scan's start; None when the first failed."""
    reached = None
    for _start, end in wallet.scan:
        if end not in wallet.scanned:
            break
        reached = end
    return reached


def _eth_call(to: str, data: str, block_param: dict[str, Any]) -> RpcCall:
    return RpcCall("eth_call", [{"to": to, "data": data}, block_param])


def _balance_of(wallet: _Wallet, token: str, block_param: dict[str, Any]) -> tuple[RpcCall, _Slot]:
    data = BALANCE_OF + wallet.address[2:].rjust(_WORD_HEX, "0")
    return _eth_call(token, data, block_param), _Slot(_Kind.BALANCE, wallet, token)


def _logs_call(wallet: _Wallet, start: int, end: int) -> tuple[RpcCall, _Slot]:
    to_wallet = "0x" + wallet.address[2:].rjust(_WORD_HEX, "0")
    log_filter = {"fromBlock": hex(start), "toBlock": hex(end), "topics": [TRANSFER_TOPIC, None, to_wallet]}
    return RpcCall("eth_getLogs", [log_filter]), _Slot(_Kind.LOGS, wallet, last_block=end)


def _take_logs(wallet: _Wallet, answer: Any) -> bool:
    """Adds the emitters of the wallet's incoming Transfer logs to `discovered`; False when malformed."""
    if not isinstance(answer, list):
        return False
    for log in answer:
        if not isinstance(log, dict) or not isinstance(log.get("address"), str):
            return False
        token = log["address"].lower()
        if log.get("removed") is True or not _ADDRESS.match(token):
            continue
        if token not in wallet.tokens and token not in wallet.discovered and token != EVM_ZERO_ADDRESS:
            wallet.discovered.append(token)
    return True


def _take_metadata(told: _Token, kind: _Kind, answer: Any | RpcError) -> None:
    # Any error here leaves the token untold: its amount is left out, and since its decimals stay
    # unknown to the caller, the next read asks again.
    if isinstance(answer, RpcError):
        return
    if kind is _Kind.DECIMALS:
        decimals = _first_word(answer)
        told.decimals = decimals if decimals is not None and decimals <= 255 else None
    else:
        told.symbol = _symbol(answer)


def _block_gone(error: RpcError) -> bool:
    message = error.message.lower()
    return error.code in _BLOCK_GONE_CODES or any(text in message for text in _BLOCK_GONE_TEXTS)


def _execution_failed(error: RpcError) -> bool:
    message = error.message.lower()
    return error.code in _EXECUTION_FAILED_CODES or any(text in message for text in _EXECUTION_FAILED_TEXTS)


def _hex_int(value: Any) -> int | None:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) < 3:
        return None
    try:
        return int(value, 16)
    except ValueError:
        return None


def _call_bytes(answer: Any) -> bytes | None:
    """An eth_call result as bytes; None when it is not 0x-prefixed hex."""
    if not isinstance(answer, str) or not answer.startswith("0x") or len(answer) % 2:
        return None
    try:
        return bytes.fromhex(answer[2:])
    except ValueError:
        return None


def _first_word(answer: Any) -> int | None:
    """The uint256 an eth_call answered; None for no code at the address ("0x") or a short answer."""
    data = _call_bytes(answer)
    if data is None or len(data) < 32:
        return None
    return int.from_bytes(data[:32], "big")


def _symbol(answer: Any) -> str | None:
    """symbol() as an ABI string, or as bytes32 (older tokens); None when it decodes to no readable text."""
    data = _call_bytes(answer)
    if data is None:
        return None
    if len(data) == 32:
        raw = data.rstrip(b"\0")
    elif len(data) >= 64:
        offset = int.from_bytes(data[:32], "big")
        if offset > len(data) - 32:
            return None
        length = int.from_bytes(data[offset : offset + 32], "big")
        if length > len(data) - offset - 32:
            return None
        raw = data[offset + 32 : offset + 32 + length]
    else:
        return None
    try:
        text = raw.decode().strip()
    except UnicodeDecodeError:
        return None
    if not text or len(text) > MAX_SYMBOL_CHARS or not text.isprintable():
        return None
    return text


def _pinned_block(answer: Any) -> PinnedBlock | None:
    if not isinstance(answer, dict):
        return None
    number, timestamp, block_hash = (
        _hex_int(answer.get("number")),
        _hex_int(answer.get("timestamp")),
        answer.get("hash"),
    )
    if number is None or timestamp is None or not isinstance(block_hash, str) or not block_hash.startswith("0x"):
        return None
    return PinnedBlock(number=number, timestamp=datetime.fromtimestamp(timestamp, UTC), hash=block_hash.lower())
