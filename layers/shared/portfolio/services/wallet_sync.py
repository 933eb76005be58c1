"""Wallet sync: reads the linked wallets of a batch of users from their chains and records what moved.

For one batch (the users of one refresh message):
1. plan: per chain, one BalanceRequest per wallet, naming every token that could be held: the
   registry's tokens of that chain (EVM), the tokens the user's ledger knows on it, and the tokens
   earlier scans discovered; the Transfer-log scan resumes after the last block scanned;
2. read: each chain once, at one pinned block (ChainReader; chains concurrently), so a message of
   100 users costs a couple of requests per chain however many tokens they hold;
3. record, per user: the differences between the chain and the ledger become transactions of
   source "chain" (domain/chain_movements.py), priced at the block's time, committed with the
   wallets' new sync state in one version-checked write (TransactionRecorder.apply_wallet_change).
   A sync that changes nothing stored (same amounts, no new token, same status, checkpoint recent)
   writes nothing to DynamoDB: its block and time go to the sync board (Redis) only.

A chain that cannot be read leaves every wallet on it as it was, with status "error" and the
reason; a wallet whose own calls failed is marked the same way, and the others of the chain go on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache

from portfolio.domain.accounting import Ledger
from portfolio.domain.chain_movements import amount_from_base_units, chain_movements, chain_transactions
from portfolio.domain.errors import OverdraftError, PortfolioLimitError
from portfolio.domain.stored_portfolio import StoredPortfolio
from portfolio.domain.token_registry import known_tokens, lookup
from portfolio.domain.tokens import CHAINS, TokenId, native_token
from portfolio.domain.transactions import Transaction
from portfolio.domain.wallets import ChainSync, SyncStatus, Wallet
from portfolio.observability import logger, metrics
from portfolio.services.ports import (
    BalanceRequest,
    ChainReader,
    ChainSnapshot,
    ChainUnavailableError,
    HistoricalPriceLookup,
    LiveSync,
    PricesUnavailableError,
    WalletSyncBoard,
)
from portfolio.services.transaction_recorder import TransactionRecorder, WalletChange

# How often a wallet whose amounts did not change still writes its sync state (block, scan
# checkpoint) to DynamoDB; in between, the sync board holds it.
DEFAULT_CHECKPOINT = timedelta(hours=1)
# A chain whose node could not be read is not asked again by this container for this long.
DEFAULT_REST_AFTER_FAILURE_S = 60.0
# Tokens the scans of one portfolio's wallets keep, all chains together: airdropped spam must not
# fill the user's item (about 100 bytes a token).
MAX_DISCOVERED_TOKENS = 300
NO_NODE = "no node is configured for this chain"


@dataclass(frozen=True, slots=True)
class _Target:
    user_id: str
    wallet: Wallet
    sync: ChainSync  # as stored, its scan position moved on to the board's latest
    last_block: int | None  # the block of the latest sync, stored or on the board


@dataclass(frozen=True)
class ChainRead:
    """One wallet on one chain, as read: amounts by token (only those read), or why it failed."""

    snapshot: ChainSnapshot | None
    amounts: dict[TokenId, Decimal] = field(default_factory=dict)
    state: ChainSync | None = None  # the sync state to keep after this read
    error: str | None = None
    stale: bool = False  # read at a block no newer than the last sync's: nothing to learn from it


@dataclass
class WalletSyncResult:
    users_synced: int = 0
    users_changed: int = 0
    transactions_recorded: int = 0
    wallet_errors: int = 0
    node_requests: int = 0
    committed: dict[str, StoredPortfolio] = field(default_factory=dict)
    failed: dict[str, Exception] = field(default_factory=dict)


@cache
def _registry_tokens(chain: str) -> tuple[str, ...]:
    return tuple(
        info.token.address for info in known_tokens() if info.token.chain == chain and not info.token.is_native
    )


class WalletSync:
    def __init__(
        self,
        readers: Mapping[str, ChainReader],
        recorder: TransactionRecorder,
        prices: HistoricalPriceLookup,
        *,
        board: WalletSyncBoard | None = None,
        start_blocks: Mapping[str, int] | None = None,
        checkpoint: timedelta = DEFAULT_CHECKPOINT,
        rest_after_failure_s: float = DEFAULT_REST_AFTER_FAILURE_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._readers = dict(readers)
        self._rest_s = rest_after_failure_s
        self._resting: dict[str, tuple[float, str]] = {}  # chain -> (until, why), on the monotonic clock
        self._monotonic = monotonic
        self._recorder = recorder
        self._prices = prices
        self._board = board
        self._start_blocks = dict(start_blocks or {})
        self._checkpoint = checkpoint
        self._clock = clock

    @property
    def chains(self) -> list[str]:
        """The chains a node is configured for."""
        return sorted(self._readers)

    def sync(
        self,
        portfolios: Mapping[str, StoredPortfolio],
        *,
        only_wallet: str | None = None,
        deadline: float | None = None,
        read_deadline: float | None = None,
    ) -> WalletSyncResult:
        """Sync every linked wallet of these users (or just `only_wallet`); never raises for one
        user's or one chain's failure: those are recorded in the wallets' status. The nodes are read
        until `read_deadline` (default `deadline`); prices and writes have until `deadline`. A user
        whose arrivals cannot be priced (the coins API out) is left for the next sync."""
        result = WalletSyncResult()
        linked = {user_id: portfolio for user_id, portfolio in portfolios.items() if portfolio.wallets}
        if not linked:
            return result
        live = self._board.read_many(linked) if self._board is not None else {}
        targets = [
            _target(user_id, wallet, sync, live.get(user_id, {}).get((wallet.wallet_id, sync.chain)))
            for user_id, portfolio in linked.items()
            for wallet in portfolio.wallets
            if only_wallet is None or wallet.wallet_id == only_wallet
            for sync in wallet.chains
        ]
        reads = self._read_chains(targets, linked, deadline if read_deadline is None else read_deadline, result)
        by_user: dict[str, dict[tuple[str, str, str], ChainRead]] = {}
        for key, read in reads.items():
            by_user.setdefault(key[0], {})[key] = read
        for user_id, portfolio in linked.items():
            mine = by_user.get(user_id)
            if not mine:
                continue
            try:
                self._record_user(portfolio, mine, deadline, result)
            except Exception as error:  # one user's store trouble holds back no other user
                result.failed[user_id] = error
                logger.warning("wallet sync not recorded", extra={"user_id": user_id, "error": repr(error)[:300]})
        metrics.add_metric(name="WalletNodeRequests", unit="Count", value=result.node_requests)
        metrics.add_metric(name="WalletTransactionsRecorded", unit="Count", value=result.transactions_recorded)
        metrics.add_metric(name="WalletSyncErrors", unit="Count", value=result.wallet_errors)
        return result

    # Reading ---------------------------------------------------------------------------------------

    def _read_chains(
        self,
        targets: Sequence[_Target],
        portfolios: Mapping[str, StoredPortfolio],
        deadline: float | None,
        result: WalletSyncResult,
    ) -> dict[tuple[str, str, str], ChainRead]:
        """By (user, wallet, chain): what each wallet's chain said."""
        by_chain: dict[str, list[_Target]] = {}
        for target in targets:
            by_chain.setdefault(target.sync.chain, []).append(target)
        reads: dict[tuple[str, str, str], ChainRead] = {}
        room = {
            user_id: MAX_DISCOVERED_TOKENS
            - sum(len(sync.tokens) for wallet in portfolio.wallets for sync in wallet.chains)
            for user_id, portfolio in portfolios.items()
        }
        for chain in [chain for chain in by_chain if chain not in self._readers]:
            for target in by_chain.pop(chain):
                reads[_key(target)] = ChainRead(None, error=NO_NODE)

        def read(chain: str) -> tuple[ChainSnapshot | ChainUnavailableError, dict[str, int]]:
            requests, known = self._requests(chain, by_chain[chain], portfolios)
            resting = self._resting.get(chain)
            if resting is not None and resting[0] > self._monotonic():
                return ChainUnavailableError(chain, resting[1]), known
            try:
                snapshot = self._readers[chain].read(requests, known_decimals=known, deadline=deadline)
            except ChainUnavailableError as error:
                if error.node_failing:
                    # Every other message of this container would wait on the same node: they skip it a while.
                    self._resting[chain] = (self._monotonic() + self._rest_s, error.reason)
                return error, known
            self._resting.pop(chain, None)
            return snapshot, known

        if by_chain:
            with ThreadPoolExecutor(max_workers=min(8, len(by_chain)), thread_name_prefix="chain-read") as pool:
                answers = dict(zip(by_chain, pool.map(read, list(by_chain)), strict=True))
            for chain, (answer, known) in answers.items():
                if isinstance(answer, ChainUnavailableError):
                    logger.warning("chain not read", extra={"chain": chain, "reason": answer.reason})
                    for target in by_chain[chain]:
                        reads[_key(target)] = ChainRead(None, error=answer.reason)
                    continue
                result.node_requests += answer.requests
                for target in by_chain[chain]:
                    reads[_key(target)] = self._interpret(target, answer, known, room)
        return reads

    def _requests(
        self, chain: str, targets: Sequence[_Target], portfolios: Mapping[str, StoredPortfolio]
    ) -> tuple[list[BalanceRequest], dict[str, int]]:
        evm = CHAINS[chain].is_evm
        native = native_token(chain).address
        known: dict[str, int] = {}
        requests: dict[str, BalanceRequest] = {}
        for target in targets:
            ledger = portfolios[target.user_id].ledger
            # Until the Transfer-log scan has caught up with the chain, a token could be held that no
            # log seen so far names: the registry's well-known ones are read too. Afterwards every
            # token that arrives shows up in the scan.
            tokens = set(_registry_tokens(chain)) if evm and not _scan_caught_up(target.sync) else set()
            tokens.update(target.sync.tokens)
            if ledger is not None:
                tokens.update(token.address for token in ledger.positions if token.chain == chain)
                tokens.update(token.address for token in ledger.wallet_tokens(target.wallet.wallet_id, chain))
            tokens.discard(native)
            for address in tokens:
                decimals = _decimals_of(TokenId(chain, address), target.sync)
                if decimals is not None:
                    known[address] = decimals
            scan_from = None
            if evm:
                scanned = target.sync.scanned_to
                scan_from = self._start_blocks.get(chain, 0) if scanned is None else scanned + 1
            merged = requests.get(target.wallet.address)
            if merged is not None:  # two users linking one address: read it once
                tokens.update(merged.tokens)
                starts = [block for block in (scan_from, merged.scan_from) if block is not None]
                scan_from = min(starts) if starts else None
            requests[target.wallet.address] = BalanceRequest(target.wallet.address, tuple(sorted(tokens)), scan_from)
        return list(requests.values()), known

    def _interpret(
        self, target: _Target, snapshot: ChainSnapshot, known: Mapping[str, int], room: dict[str, int]
    ) -> ChainRead:
        """`known`: the decimals the read was given (what any wallet of the message knew); `room`: how
        many more tokens each user's scans may keep."""
        balances = snapshot.wallets.get(target.wallet.address)
        if balances is None or balances.error is not None:
            return ChainRead(snapshot, error=balances.error if balances is not None else "not in the node's answer")
        chain = snapshot.chain
        state = target.sync
        if target.last_block is not None and snapshot.block.number <= target.last_block:
            # No newer block than the last sync's: nothing can have moved (and a transaction recorded
            # now would take the id of one recorded then).
            return ChainRead(snapshot, stale=True)
        discovered = dict(state.tokens)
        symbols = dict(state.symbols)
        for address in sorted({*balances.discovered, *balances.decimals}):
            token = TokenId(chain, address)
            if token.is_native or lookup(token) is not None:
                continue
            if address not in discovered:
                if room.get(target.user_id, 0) <= 0:
                    logger.warning(
                        "wallets hold too many unlisted tokens; the rest are not kept", extra={"chain": chain}
                    )
                    continue
                room[target.user_id] -= 1
            # Kept for the next syncs; without decimals yet (its contract did not answer), asked again.
            decimals = balances.decimals.get(address, known.get(address, discovered.get(address)))
            discovered[address] = decimals
            if address in balances.symbols:
                symbols[address] = balances.symbols[address][:32]
        status, error = SyncStatus.OK, None
        if balances.scan_error is not None:
            # The balances read are recorded; the wallet says why tokens it received may be missing.
            status, error = SyncStatus.ERROR, f"token discovery stopped (balances read): {balances.scan_error}"
            logger.warning("token discovery failed; the scan resumes there", extra={"chain": chain})
        amounts: dict[TokenId, Decimal] = {}
        for address, units in balances.amounts.items():
            token = TokenId(chain, address)
            decimals = balances.decimals.get(address, known.get(address, _decimals_of(token, state)))
            amount = None if decimals is None else amount_from_base_units(units, decimals)
            if amount is not None:
                amounts[token] = amount
        # Two users linking one address are scanned from the lower position: neither goes back.
        scans = [block for block in (balances.scanned_to, state.scanned_to) if block is not None]
        scanned_to = max(scans) if scans else None
        kept = state.model_copy(
            update={
                "status": status,
                "error": error,
                "block_number": snapshot.block.number,
                "last_synced_at": self._clock(),
                "scanned_to": scanned_to,
                "tokens": discovered,
                "symbols": symbols,
            }
        )
        return ChainRead(snapshot, amounts=amounts, state=kept)

    # Recording -------------------------------------------------------------------------------------

    def _record_user(
        self,
        portfolio: StoredPortfolio,
        reads: Mapping[tuple[str, str, str], ChainRead],
        deadline: float | None,
        result: WalletSyncResult,
    ) -> None:
        user_id = portfolio.user_id
        result.users_synced += 1
        result.wallet_errors += sum(1 for read in reads.values() if read.error is not None)
        priced: dict[tuple[datetime, TokenId], Decimal | None] = {}

        def market_prices(moment: datetime, moved: Mapping[TokenId, Decimal]) -> dict[TokenId, Decimal]:
            """Looked up once per token and moment, however often the plan runs (a preview, a retry).
            Arrivals need theirs (their cost); a departure only tells the gain that left with it, so
            when the coins API is out, coins that left are recorded without one."""
            missing = [token for token in moved if (moment, token) not in priced]
            if missing:
                try:
                    found = self._prices.prices_at(missing, moment, deadline=deadline)
                except PricesUnavailableError:
                    if any(moved[token] > 0 for token in missing):
                        raise
                    found = {}
                priced.update({(moment, token): found.get(token) for token in missing})
            return {token: price for token in moved if (price := priced.get((moment, token))) is not None}

        older: set[tuple[str, str, str]] = set()  # reads older than what another sync stored meanwhile

        def plan(stored: StoredPortfolio, ledger: Ledger) -> WalletChange:
            transactions: list[Transaction] = []
            wallets = []
            for wallet in stored.wallets:
                for sync in wallet.chains:
                    read = reads.get((user_id, wallet.wallet_id, sync.chain))
                    if read is None or read.stale:
                        continue
                    stored_block = sync.block_number
                    read_block = None if read.snapshot is None else read.snapshot.block.number
                    if stored_block is not None and read_block is not None and stored_block >= read_block:
                        older.add((user_id, wallet.wallet_id, sync.chain))
                        continue  # another sync recorded a newer block meanwhile: this read is older news
                    if read.error is not None or read.snapshot is None or read.state is None:
                        wallet = wallet.with_chain(_failed(sync, read.error or "not read"))
                        continue
                    movements = chain_movements(ledger, wallet.wallet_id, read.amounts)
                    block = read.snapshot.block
                    moment = min(block.timestamp, read.state.last_synced_at or block.timestamp)
                    transactions += chain_transactions(
                        wallet.wallet_id,
                        movements,
                        block_number=block.number,
                        block_time=moment,
                        prices=market_prices(moment, movements),
                    )
                    wallet = wallet.with_chain(self._durable(sync, read.state, bool(movements)))
                wallets.append(wallet)
            return WalletChange(transactions=transactions, wallets=tuple(wallets))

        if portfolio.ledger is not None:
            # Planned first against what the batch read: most syncs find nothing moved, and then
            # neither a consistent read nor a write is needed.
            preview = plan(portfolio, portfolio.ledger)
            if not preview.transactions and preview.wallets == portfolio.wallets:
                self._post(user_id, {key: read for key, read in reads.items() if key not in older})
                return
        try:
            committed = self._recorder.apply_wallet_change(user_id, plan, deadline=deadline)
        except (OverdraftError, PortfolioLimitError) as error:
            # What the chain shows cannot be recorded as things stand: say so on the wallets, record nothing.
            reason = _refusal(error)
            logger.warning("wallet sync refused", extra={"user_id": user_id, "reason": reason})
            self._recorder.apply_wallet_change(
                user_id, lambda stored, _ledger: _all_failed(stored, reads, reason, user_id), deadline=deadline
            )
            return  # nor is the scan moved on: the next sync reads these blocks again
        if committed is not None:
            result.committed[user_id] = committed
            before = portfolio.ledger.transaction_count if portfolio.ledger is not None else 0
            if committed.ledger is not None and committed.ledger.transaction_count != before:
                result.users_changed += 1
                result.transactions_recorded += committed.ledger.transaction_count - before
        self._post(user_id, {key: read for key, read in reads.items() if key not in older})

    def _durable(self, stored: ChainSync, read: ChainSync, moved: bool) -> ChainSync:
        """The state to store: the read's when something kept changed or the checkpoint is due,
        else the stored one (the board holds the latest block)."""
        kept_changed = (
            moved
            or read.tokens != stored.tokens
            or read.status != stored.status
            or read.error != stored.error
            or stored.last_synced_at is None
            or (read.last_synced_at is not None and read.last_synced_at - stored.last_synced_at >= self._checkpoint)
        )
        return read if kept_changed else stored

    def _post(self, user_id: str, reads: Mapping[tuple[str, str, str], ChainRead]) -> None:
        if self._board is None:
            return
        syncs = {
            (wallet_id, chain): LiveSync(
                block_number=read.state.block_number or 0,
                synced_at=read.state.last_synced_at or self._clock(),
                scanned_to=read.state.scanned_to,
            )
            for (_user, wallet_id, chain), read in reads.items()
            if read.state is not None and read.error is None and not read.stale
        }
        self._board.record(user_id, syncs)


def _key(target: _Target) -> tuple[str, str, str]:
    return (target.user_id, target.wallet.wallet_id, target.sync.chain)


def _scan_caught_up(sync: ChainSync) -> bool:
    return sync.scanned_to is not None and sync.block_number is not None and sync.scanned_to >= sync.block_number


def _target(user_id: str, wallet: Wallet, sync: ChainSync, live: LiveSync | None) -> _Target:
    """The stored sync state, moved on to the board's latest sync when that is newer. A chain never
    synced (just linked, or linked again after an unlink) ignores the board."""
    if live is None or sync.block_number is None or live.block_number <= sync.block_number:
        return _Target(user_id, wallet, sync, sync.block_number)
    scanned = live.scanned_to if live.scanned_to is not None else sync.scanned_to
    return _Target(user_id, wallet, sync.model_copy(update={"scanned_to": scanned}), live.block_number)


def _decimals_of(token: TokenId, sync: ChainSync) -> int | None:
    if token.is_native:
        return 18 if CHAINS[token.chain].is_evm else 9
    info = lookup(token)
    if info is not None:
        return info.decimals
    return sync.tokens.get(token.address)


def _failed(sync: ChainSync, reason: str) -> ChainSync:
    return sync.model_copy(update={"status": SyncStatus.ERROR, "error": reason[:300]})


def _refusal(error: OverdraftError | PortfolioLimitError) -> str:
    if isinstance(error, OverdraftError):
        return (
            f"coins left this wallet that transaction {error.transaction_id} also moves; tag that transaction "
            "with this wallet (walletId) or delete it"
        )
    return f"not recorded: {error.message}"


def _all_failed(
    stored: StoredPortfolio, reads: Mapping[tuple[str, str, str], ChainRead], reason: str, user_id: str
) -> WalletChange:
    wallets = []
    for wallet in stored.wallets:
        for sync in wallet.chains:
            if (user_id, wallet.wallet_id, sync.chain) in reads:
                wallet = wallet.with_chain(_failed(sync, reason))
        wallets.append(wallet)
    return WalletChange(transactions=[], wallets=tuple(wallets))
