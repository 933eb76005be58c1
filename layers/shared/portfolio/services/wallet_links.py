"""Linking, listing, unlinking and syncing a user's wallets: the use cases behind /wallets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from portfolio.domain.accounting import Ledger
from portfolio.domain.errors import PortfolioLimitError, WalletNotFound
from portfolio.domain.stored_portfolio import StoredPortfolio
from portfolio.domain.wallets import (
    MAX_WALLETS_PER_USER,
    AddressFamily,
    ChainSync,
    Wallet,
    chains_for,
    evm_checksum,
    find_wallet,
    parse_address,
    wallet_id_for,
)
from portfolio.services.ports import LiveSync, PortfolioSource, WalletSyncBoard
from portfolio.services.transaction_recorder import TransactionRecorder, WalletChange

if TYPE_CHECKING:  # only a type here: wallet sync is built by the wiring, off the cold start
    from portfolio.services.wallet_sync import WalletSync

DEFAULT_ON_DEMAND_EVERY_S = 60


class SyncRateLimited(Exception):
    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"a wallet sync was asked for less than {retry_after_s} s ago")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class LinkOutcome:
    wallet: Wallet
    created: bool


class WalletLinks:
    def __init__(
        self,
        store: PortfolioSource,
        recorder: TransactionRecorder,
        sync: WalletSync,
        *,
        board: WalletSyncBoard | None = None,
        on_demand_every_s: int = DEFAULT_ON_DEMAND_EVERY_S,
        max_wallets: int = MAX_WALLETS_PER_USER,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._recorder = recorder
        self._sync = sync
        self._board = board
        self._on_demand_every_s = on_demand_every_s
        self._max_wallets = max_wallets
        self._clock = clock

    def link(self, user_id: str, address: str, chains: Sequence[str] | None, label: str | None) -> LinkOutcome:
        """Link an address (validated, raising InvalidInputError naming the field). The same address
        again is the same wallet: the chains named are added to it, and a label given replaces its own."""
        family, normalized = parse_address(address)
        chosen = chains_for(family, chains, self._sync.chains)
        wallet_id = wallet_id_for(family, normalized)
        outcome: list[LinkOutcome] = []

        def plan(stored: StoredPortfolio, _ledger: Ledger) -> WalletChange:
            outcome.clear()
            existing = find_wallet(stored.wallets, wallet_id)
            if existing is None:
                if len(stored.wallets) >= self._max_wallets:
                    raise PortfolioLimitError(
                        f"a portfolio links at most {self._max_wallets} wallets; unlink one first", field="address"
                    )
                wallet = Wallet(
                    wallet_id=wallet_id,
                    address=normalized,
                    family=family,
                    label=label,
                    chains=[ChainSync(chain=chain) for chain in chosen],
                    linked_at=self._clock(),
                )
                outcome.append(LinkOutcome(wallet, created=True))
                return WalletChange(transactions=[], wallets=(*stored.wallets, wallet))
            added = [ChainSync(chain=chain) for chain in chosen if existing.chain(chain) is None]
            update: dict[str, object] = {"chains": [*existing.chains, *added]}
            if label is not None:
                update["label"] = label
            wallet = existing.model_copy(update=update)
            outcome.append(LinkOutcome(wallet, created=False))
            wallets = tuple(wallet if each.wallet_id == wallet_id else each for each in stored.wallets)
            return WalletChange(transactions=[], wallets=wallets)

        self._recorder.touch(user_id)
        self._recorder.apply_wallet_change(user_id, plan)
        return outcome[0]

    def wallets(self, user_id: str) -> list[Wallet]:
        """The linked wallets, each chain showing its latest sync (the board's, when newer than stored)."""
        portfolio = self._store.load_portfolio(user_id, lots=False)
        live = self._board.read_many([user_id]).get(user_id, {}) if self._board is not None else {}
        return [_with_latest(wallet, live) for wallet in portfolio.wallets]

    def unlink(self, user_id: str, wallet_id: str) -> None:
        """Raises WalletNotFound; OverdraftError when a transaction not tagged with the wallet relies on its coins."""
        self._recorder.remove_wallet(user_id, wallet_id)
        if self._board is not None:
            self._board.forget(user_id, wallet_id)

    def sync_now(self, user_id: str, wallet_id: str, *, deadline: float | None = None) -> Wallet:
        """Sync one wallet at once, at most once per `on_demand_every_s` per user (SyncRateLimited)."""
        portfolio = self._store.load_portfolio(user_id, lots=False)
        if find_wallet(portfolio.wallets, wallet_id) is None:
            raise WalletNotFound(wallet_id)
        if self._board is not None and not self._board.claim_on_demand_sync(user_id, self._on_demand_every_s):
            raise SyncRateLimited(self._on_demand_every_s)
        self._recorder.touch(user_id)
        self._sync.sync({user_id: portfolio}, only_wallet=wallet_id, deadline=deadline)
        synced = find_wallet(self.wallets(user_id), wallet_id)
        if synced is None:  # unlinked meanwhile
            raise WalletNotFound(wallet_id)
        return synced


def display_address(wallet: Wallet) -> str:
    """EVM addresses are shown in their EIP-55 checksum form; Solana's as stored."""
    return evm_checksum(wallet.address) if wallet.family is AddressFamily.EVM else wallet.address


def _with_latest(wallet: Wallet, live: dict[tuple[str, str], LiveSync]) -> Wallet:
    chains = []
    for sync in wallet.chains:
        latest = live.get((wallet.wallet_id, sync.chain))
        if latest is not None and (sync.block_number is None or latest.block_number > sync.block_number):
            sync = sync.model_copy(update={"block_number": latest.block_number, "last_synced_at": latest.synced_at})
        chains.append(sync)
    return wallet.model_copy(update={"chains": chains})
