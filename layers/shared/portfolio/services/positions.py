"""The positions a use case works from: stored ones, or rebuilt from the history when there are none."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from portfolio.domain.accounting import Ledger, replay
from portfolio.domain.portfolio_record import PortfolioRecord
from portfolio.domain.stored_portfolio import StoredPortfolio
from portfolio.domain.transactions import Transaction
from portfolio.services.ports import HistorySource


def positions_of(portfolio: StoredPortfolio, history: HistorySource, *, consistent_read: bool = False) -> Ledger:
    """The stored positions; a portfolio stored before positions were kept (or whose positions no
    longer decode) replays its history instead, and the next write stores the result."""
    if portfolio.ledger is not None:
        return portfolio.ledger
    return stored_or_replayed(portfolio, history.load_history(portfolio.user_id, consistent_read=consistent_read))


def stored_or_replayed(portfolio: StoredPortfolio, transactions: Sequence[Transaction]) -> Ledger:
    """positions_of, for a use case that has read the history already."""
    if portfolio.ledger is not None:
        return portfolio.ledger
    return replay_under(portfolio.record, transactions)


def replay_under(record: PortfolioRecord, transactions: Iterable[Transaction]) -> Ledger:
    """The history replayed under the portfolio's settings (method, scope, missing acquisitions)."""
    return replay(
        transactions, record.cost_basis_method, scope=record.cost_basis_scope, accept_missing=record.accepts_missing
    )


def holder_changes(before: Ledger, after: Ledger) -> dict[str, int]:
    """+1 for each token the user starts holding, -1 for each it stops holding."""
    held_before = {token.key for token in before.held_tokens()}
    held_after = {token.key for token in after.held_tokens()}
    return {key: 1 for key in held_after - held_before} | {key: -1 for key in held_before - held_after}
