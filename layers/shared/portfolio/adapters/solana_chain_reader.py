"""Solana wallets' balances over JSON-RPC: the ChainReader of the "solana" chain.

One read asks, per wallet, for its lamports (getBalance) and its token accounts under both token
programs (getTokenAccountsByOwner with SPL Token's and Token-2022's program id, jsonParsed), all in
one batch (split every `batch_size` calls), then getBlockTime of the pinned slot in a second request.
So ten wallets cost two HTTP requests.

Solana cannot be asked for a past slot: each answer carries the slot it was read at
(`context.slot`), and the pinned block is the highest of them. Its timestamp is the node's block time,
or now (UTC) when the node has none for that slot.

Amounts are integer base units: lamports under the wrapped-SOL mint (tokens.SOLANA_NATIVE_MINT, 9
decimals), with any wrapped-SOL token accounts added to them; every other mint summed over the
wallet's accounts of it, from `tokenAmount.amount` (an integer string), never from the float
`uiAmount`. The node tells each mint's decimals with its balance: they all go to
`WalletBalances.decimals`. Solana lists every token account of a wallet, so each mint it holds a
non-zero amount of is `discovered` without any log scan (`scanned_to` stays None).

Failures: a request the node does not answer (down, timed out, rate limited past the retries, not
JSON-RPC) raises ChainUnavailableError, and so does a node on another chain than the expected
genesis hash; a call answered with an error object, or with a result not of the documented shape,
fails only its wallet (`WalletBalances.error`). The node's URL carries a provider key: it reaches
no log line and no error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from portfolio.adapters.json_rpc import JsonRpcClient, RpcCall, RpcError, RpcOutOfTimeError, RpcUnavailableError
from portfolio.domain.errors import InvalidInputError
from portfolio.domain.tokens import SOLANA_NATIVE_MINT, normalize_token
from portfolio.observability import logger
from portfolio.services.ports import BalanceRequest, ChainSnapshot, ChainUnavailableError, PinnedBlock, WalletBalances

CHAIN = "solana"
SPL_TOKEN_PROGRAM_ID = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"  # noqa: S105 - a public program id, not a secret
TOKEN_2022_PROGRAM_ID = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"  # noqa: S105 - a public program id, not a secret
MAINNET_GENESIS_HASH = "5eykt4UsFv8P8NJdTREpY1vzqKqZKvdpKuc147dxa5aP"
NATIVE_DECIMALS = 9
DEFAULT_BATCH_SIZE = 300
# What the jsonParsed encoding names the program of each token program id.
_PROGRAM_NAMES = {SPL_TOKEN_PROGRAM_ID: "spl-token", TOKEN_2022_PROGRAM_ID: "spl-token-2022"}
# A u64 written in decimal: at most 20 digits.
_U64_TEXT = re.compile(r"^[0-9]{1,20}$")
_U64_MAX = 2**64 - 1


class MalformedAnswerError(ValueError):
    """A result that is not of the shape Solana's RPC documents."""


@dataclass
class _Wallet:
    """What one wallet's calls answered so far."""

    address: str
    tokens: tuple[str, ...]
    lamports: int = 0
    amounts: dict[str, int] = field(default_factory=dict)
    decimals: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    def fail(self, problem: str) -> None:
        if self.error is None:
            self.error = problem

    def balances(self) -> WalletBalances:
        if self.error is not None:
            return WalletBalances(self.address, error=self.error)
        amounts = dict.fromkeys(self.tokens, 0)
        amounts.update(self.amounts)
        amounts[SOLANA_NATIVE_MINT] = self.lamports + self.amounts.get(SOLANA_NATIVE_MINT, 0)
        decimals = dict(self.decimals)
        decimals[SOLANA_NATIVE_MINT] = NATIVE_DECIMALS
        discovered = tuple(
            sorted(mint for mint, amount in self.amounts.items() if amount > 0 and mint != SOLANA_NATIVE_MINT)
        )
        return WalletBalances(self.address, amounts=amounts, decimals=decimals, discovered=discovered)


class SolanaChainReader:
    """Reads Solana wallets in batched JSON-RPC requests. Safe to share across threads.

    `expected_genesis_hash` (None: not checked) is compared once per reader with the node's
    getGenesisHash, asked within the first batch so it costs no request of its own.
    `commitment` is the level every balance is read at. `ChainSnapshot.requests` is what the client
    sent during the read: a client shared with reads running at the same time counts theirs too.
    """

    def __init__(
        self,
        rpc: JsonRpcClient,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        expected_genesis_hash: str | None = None,
        commitment: str = "confirmed",
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if batch_size < 3:
            raise ValueError("a batch holds at least one wallet's three calls")
        self._rpc = rpc
        self._batch_size = batch_size
        self._expected_genesis_hash = expected_genesis_hash
        self._genesis_checked = expected_genesis_hash is None
        self._commitment = commitment
        self._now = now

    def __repr__(self) -> str:
        return f"SolanaChainReader(batch_size={self._batch_size}, commitment={self._commitment!r})"

    @property
    def chain(self) -> str:
        return CHAIN

    def read(
        self,
        requests: Sequence[BalanceRequest],
        *,
        known_decimals: Mapping[str, int],
        deadline: float | None = None,
    ) -> ChainSnapshot:
        """Every wallet of `requests` at one pinned slot; raises ChainUnavailableError when the node
        cannot be read at all. `known_decimals` is not needed: the node tells every mint's decimals."""
        del known_decimals
        sent_before = self._rpc.requests_sent
        wallets: dict[str, _Wallet] = {}
        for request in requests:
            wallets.setdefault(request.address, _Wallet(request.address, request.tokens))

        # The head of the first batch: the chain check (once) and the current slot, the pinned slot
        # when no wallet call tells one. Then three calls per wallet.
        head: list[RpcCall] = []
        check_genesis = not self._genesis_checked
        if check_genesis:
            head.append(RpcCall("getGenesisHash", []))
        head.append(RpcCall("getSlot", [{"commitment": self._commitment}]))
        calls = head + [call for address in wallets for call in self._wallet_calls(address)]
        results = self._ask(calls, deadline)

        head_results, wallet_results = results[: len(head)], results[len(head) :]
        if check_genesis:
            self._check_genesis(head_results[0])
        slots: list[int] = []
        for index, wallet in enumerate(wallets.values()):
            balance, spl, token_2022 = wallet_results[3 * index : 3 * index + 3]
            self._take_balance(wallet, balance, slots)
            self._take_token_accounts(wallet, spl, SPL_TOKEN_PROGRAM_ID, slots)
            self._take_token_accounts(wallet, token_2022, TOKEN_2022_PROGRAM_ID, slots)
            if wallet.error is not None:
                logger.warning("solana wallet read failed", extra={"wallet": wallet.address, "problem": wallet.error})

        slot = max(slots) if slots else _slot_or_none(head_results[-1])
        if slot is None:
            raise ChainUnavailableError(CHAIN, "the node told no slot")
        block = PinnedBlock(number=slot, timestamp=self._block_time(slot, deadline))
        return ChainSnapshot(
            chain=CHAIN,
            block=block,
            wallets={address: wallet.balances() for address, wallet in wallets.items()},
            requests=self._rpc.requests_sent - sent_before,
        )

    # -- asking --------------------------------------------------------------------------------------

    def _wallet_calls(self, address: str) -> list[RpcCall]:
        config = {"encoding": "jsonParsed", "commitment": self._commitment}
        return [
            RpcCall("getBalance", [address, {"commitment": self._commitment}]),
            RpcCall("getTokenAccountsByOwner", [address, {"programId": SPL_TOKEN_PROGRAM_ID}, dict(config)]),
            RpcCall("getTokenAccountsByOwner", [address, {"programId": TOKEN_2022_PROGRAM_ID}, dict(config)]),
        ]

    def _ask(self, calls: list[RpcCall], deadline: float | None) -> list[Any | RpcError]:
        results: list[Any | RpcError] = []
        try:
            for start in range(0, len(calls), self._batch_size):
                results.extend(self._rpc.call_batch(calls[start : start + self._batch_size], deadline=deadline))
        except RpcUnavailableError as error:
            raise ChainUnavailableError(
                CHAIN, str(error), node_failing=not isinstance(error, RpcOutOfTimeError)
            ) from None
        return results

    def _check_genesis(self, answer: Any | RpcError) -> None:
        if isinstance(answer, RpcError):
            raise ChainUnavailableError(
                CHAIN, f"could not confirm the node's chain: getGenesisHash answered error {answer.code}"
            )
        if answer != self._expected_genesis_hash:
            raise ChainUnavailableError(
                CHAIN, "the node is on another chain (its genesis hash is not the expected one)"
            )
        self._genesis_checked = True

    def _block_time(self, slot: int, deadline: float | None) -> datetime:
        (answer,) = self._ask([RpcCall("getBlockTime", [slot])], deadline)
        if isinstance(answer, int) and not isinstance(answer, bool) and answer >= 0:
            try:
                return datetime.fromtimestamp(answer, UTC)
            except (OverflowError, OSError, ValueError):
                pass  # a time no calendar holds: as good as none
        # Null (no time recorded) or an error (a skipped slot): the slot was read just now.
        return self._now()

    # -- reading the answers -------------------------------------------------------------------------

    def _take_balance(self, wallet: _Wallet, answer: Any | RpcError, slots: list[int]) -> None:
        if _failed(wallet, "getBalance", answer):
            return
        try:
            slot, value = _context_and_value(answer)
            slots.append(slot)
            wallet.lamports = _u64(value, "getBalance value")
        except MalformedAnswerError as error:
            wallet.fail(f"malformed answer from the node: {error}")

    def _take_token_accounts(self, wallet: _Wallet, answer: Any | RpcError, program_id: str, slots: list[int]) -> None:
        if _failed(wallet, "getTokenAccountsByOwner", answer):
            return
        try:
            slot, entries = _context_and_value(answer)
            slots.append(slot)
            if not isinstance(entries, list):
                raise MalformedAnswerError("getTokenAccountsByOwner value is not a list")
            for entry in entries:
                mint, amount, decimals = _token_account(entry, wallet.address, _PROGRAM_NAMES[program_id])
                if wallet.decimals.setdefault(mint, decimals) != decimals:
                    raise MalformedAnswerError(f"mint {mint} told with two different decimals")
                wallet.amounts[mint] = wallet.amounts.get(mint, 0) + amount
        except MalformedAnswerError as error:
            wallet.fail(f"malformed answer from the node: {error}")


def _failed(wallet: _Wallet, method: str, answer: Any | RpcError) -> bool:
    if isinstance(answer, RpcError):
        wallet.fail(f"{method} answered error {answer.code}: {answer.message[:200]}")
        return True
    return wallet.error is not None


def _slot_or_none(answer: Any | RpcError) -> int | None:
    return answer if not isinstance(answer, RpcError) and _is_u64(answer) else None


def _is_u64(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _U64_MAX


def _u64(value: Any, what: str) -> int:
    if not _is_u64(value):
        raise MalformedAnswerError(f"{what} is not an unsigned integer")
    return int(value)


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedAnswerError(f"{what} is not an object")
    return value


def _context_and_value(answer: Any) -> tuple[int, Any]:
    """The slot an answer was read at, and its value."""
    result = _object(answer, "result")
    return _u64(_object(result.get("context"), "context").get("slot"), "context.slot"), result.get("value")


def _token_account(entry: Any, owner: str, program: str) -> tuple[str, int, int]:
    """(mint, amount, decimals) of one jsonParsed token account of `owner` under `program`."""
    account = _object(_object(entry, "token account").get("account"), "account")
    data = _object(account.get("data"), "account.data")
    if data.get("program") != program:
        raise MalformedAnswerError(f"a token account is not parsed as {program}")
    parsed = _object(data.get("parsed"), "account.data.parsed")
    info = _object(parsed.get("info"), "account.data.parsed.info")
    if parsed.get("type") != "account":
        raise MalformedAnswerError("a token account is not of type account")
    if info.get("owner") != owner:
        raise MalformedAnswerError("a token account of another owner")
    mint = info.get("mint")
    try:
        mint = normalize_token(CHAIN, mint if isinstance(mint, str) else "").address
    except InvalidInputError:
        raise MalformedAnswerError("a token account's mint is not a base58 address") from None
    token_amount = _object(info.get("tokenAmount"), "tokenAmount")
    amount = token_amount.get("amount")
    if not isinstance(amount, str) or not _U64_TEXT.match(amount) or int(amount) > _U64_MAX:
        raise MalformedAnswerError("tokenAmount.amount is not an integer string")
    decimals = token_amount.get("decimals")
    if not isinstance(decimals, int) or isinstance(decimals, bool) or not 0 <= decimals <= 255:
        raise MalformedAnswerError("tokenAmount.decimals is not an integer from 0 to 255")
    return mint, int(amount), decimals
