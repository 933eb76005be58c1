"""A user's portfolio as stored: the record, the positions and the linked wallets, read as one item."""

from __future__ import annotations

from dataclasses import dataclass

from portfolio.domain.accounting import Ledger
from portfolio.domain.portfolio_record import PortfolioRecord
from portfolio.domain.tokens import TokenId
from portfolio.domain.wallets import Wallet, contract_symbols


@dataclass(frozen=True, slots=True)
class StoredPortfolio:
    """`ledger` is None for a portfolio whose stored positions cannot be used (stored before positions
    were kept, or no longer decoding): replay rebuilds it. `holders_counted` tells whether its held
    tokens are in the holder counts: true for every portfolio stored with positions, even unreadable
    ones, false for one stored before positions (and counts) were kept. Derive a changed portfolio
    with `dataclasses.replace`, so that what is not changed (the wallets) is kept."""

    record: PortfolioRecord
    ledger: Ledger | None
    holders_counted: bool = True
    wallets: tuple[Wallet, ...] = ()

    @property
    def contract_symbols(self) -> dict[TokenId, str]:
        """What token contracts answered wallet sync of their symbols: shown for tokens no quote names."""
        return contract_symbols(self.wallets)

    @property
    def user_id(self) -> str:
        return self.record.user_id

    @property
    def version(self) -> int:
        return self.record.version

    @classmethod
    def new(cls, user_id: str) -> StoredPortfolio:
        record = PortfolioRecord(user_id=user_id)
        return cls(
            record=record,
            ledger=Ledger.empty(
                record.cost_basis_method, scope=record.cost_basis_scope, accept_missing=record.accepts_missing
            ),
        )
