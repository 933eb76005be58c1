"""Write use cases: record transactions, delete one, change the cost-basis method.

Every write follows the same steps, so a failed request leaves the stored portfolio as it was:
1. load the user's snapshot (one Query);
2. apply the change in memory and replay the whole history (an overdraft anywhere raises
   OverdraftError before anything is written);
3. re-price the user's held tokens (PriceService, bounded by a deadline);
4. commit transactions and the new portfolio record in one conditional write on the version that
   was loaded; when someone else wrote in between (VersionConflict), start again from 1 with a
   consistent read, a bounded number of times. An import larger than one DynamoDB transaction is
   committed in steps that each leave a valid history (domain/import_plan.py); a repeat of the
   request completes an import that stopped part way, since stored ids are skipped;
5. warm the cache: retire every cached view of the user, then store the fresh portfolio and assets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from portfolio.adapters.portfolio_cache import CacheKind
from portfolio.adapters.portfolio_store import TransactionNotFound, TransactionsExist, VersionConflict
from portfolio.domain.accounting import replay
from portfolio.domain.errors import InvalidInputError
from portfolio.domain.import_plan import plan_import
from portfolio.domain.portfolio_record import CostBasisMethod, PortfolioRecord, PortfolioSnapshot
from portfolio.domain.prices import PriceQuote
from portfolio.domain.tokens import TokenId
from portfolio.domain.transactions import Transaction
from portfolio.domain.valuation import compute_portfolio
from portfolio.domain.views import PortfolioView
from portfolio.observability import logger
from portfolio.services.portfolio_pricing import held_tokens, repriced_record
from portfolio.services.portfolio_rendering import warm_bodies

DEFAULT_MAX_COMMIT_ATTEMPTS = 4
# A DynamoDB transaction takes 100 writes: the new transactions and the portfolio item.
MAX_TRANSACTIONS_PER_COMMIT = 99


class WriteStore(Protocol):
    def load(self, user_id: str, *, consistent_read: bool = False) -> PortfolioSnapshot: ...

    def commit(
        self,
        user_id: str,
        *,
        expected_version: int,
        record: PortfolioRecord,
        put_transactions: Sequence[Transaction] = (),
        delete_transaction_ids: Sequence[str] = (),
    ) -> PortfolioRecord: ...


class PriceLookup(Protocol):
    def get_prices(
        self, tokens: Iterable[TokenId | str], *, deadline: float | None = None
    ) -> dict[str, PriceQuote]: ...


class WarmableCache(Protocol):
    def replace_views(self, user_id: str, version: int, bodies: Mapping[tuple[CacheKind, str], bytes]) -> Any: ...


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    """The stored records in the order they were sent, and how many of them this call created."""

    transactions: list[Transaction]
    created: int


@dataclass(frozen=True, slots=True)
class Committed:
    snapshot: PortfolioSnapshot
    view: PortfolioView

    @property
    def record(self) -> PortfolioRecord:
        return self.snapshot.record


class TransactionRecorder:
    def __init__(
        self,
        store: WriteStore,
        prices: PriceLookup,
        cache: WarmableCache,
        *,
        max_commit_attempts: int = DEFAULT_MAX_COMMIT_ATTEMPTS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._prices = prices
        self._cache = cache
        self._max_commit_attempts = max_commit_attempts
        self._clock = clock

    def record(
        self, user_id: str, transactions: Sequence[Transaction], *, deadline: float | None = None
    ) -> RecordOutcome:
        """Store the transactions whose ids are new; a known id answers with the record already stored.

        Raises OverdraftError (nothing written) when the history with them removes more than is held.
        """
        unique = _unique_by_id(transactions)
        for attempt in self._attempts():
            snapshot = self._store.load(user_id, consistent_read=attempt > 1)
            stored = {transaction.id: transaction for transaction in snapshot.transactions}
            new = [transaction for transaction in unique if transaction.id not in stored]
            if new:
                try:
                    self._commit_import(snapshot, new, deadline=deadline)
                except (VersionConflict, TransactionsExist) as conflict:
                    self._note_conflict(user_id, attempt, conflict)
                    continue
            elif snapshot.record.version > 0:
                # A repeat: the first attempt may have stored everything and died before warming.
                self._warm(Committed(snapshot=snapshot, view=compute_portfolio(snapshot)))
            stored.update((transaction.id, transaction) for transaction in new)
            return RecordOutcome(transactions=[stored[transaction.id] for transaction in unique], created=len(new))
        raise AssertionError("unreachable: the last attempt raises")

    def delete(self, user_id: str, transaction_id: str, *, deadline: float | None = None) -> PortfolioView:
        """Remove one transaction and answer the recomputed portfolio.

        Raises TransactionNotFound, or OverdraftError when a later removal would then lack holdings.
        """
        for attempt in self._attempts():
            snapshot = self._store.load(user_id, consistent_read=attempt > 1)
            remaining = [transaction for transaction in snapshot.transactions if transaction.id != transaction_id]
            if len(remaining) == len(snapshot.transactions):
                raise TransactionNotFound(transaction_id)
            try:
                committed = self._commit(
                    snapshot, remaining, delete=[transaction_id], quotes=self._price(snapshot, remaining, deadline)
                )
                self._warm(committed)
                return committed.view
            except VersionConflict as conflict:
                self._note_conflict(user_id, attempt, conflict)
        raise AssertionError("unreachable: the last attempt raises")

    def change_cost_basis_method(
        self, user_id: str, method: CostBasisMethod, *, deadline: float | None = None
    ) -> PortfolioRecord:
        """Store the method and recompute the portfolio under it."""
        for attempt in self._attempts():
            snapshot = self._store.load(user_id, consistent_read=attempt > 1)
            if snapshot.record.cost_basis_method is method and snapshot.record.version > 0:
                return snapshot.record
            changed = snapshot.model_copy(
                update={"record": snapshot.record.model_copy(update={"cost_basis_method": method})}
            )
            try:
                committed = self._commit(
                    changed, snapshot.transactions, quotes=self._price(changed, snapshot.transactions, deadline)
                )
                self._warm(committed)
                return committed.record
            except VersionConflict as conflict:
                self._note_conflict(user_id, attempt, conflict)
        raise AssertionError("unreachable: the last attempt raises")

    def _commit_import(
        self, snapshot: PortfolioSnapshot, new: Sequence[Transaction], *, deadline: float | None
    ) -> None:
        method = snapshot.record.cost_basis_method
        steps = plan_import(snapshot.transactions, new, method, max_step=MAX_TRANSACTIONS_PER_COMMIT)
        quotes = self._price(snapshot, [*snapshot.transactions, *new], deadline)
        before = snapshot
        for step in steps:
            committed = self._commit(before, [*before.transactions, *step], put=step, quotes=quotes)
            before = committed.snapshot
        self._warm(committed)

    def _price(
        self, before: PortfolioSnapshot, transactions: Sequence[Transaction], deadline: float | None
    ) -> dict[str, PriceQuote]:
        """Quotes for what the user holds once `transactions` are the history."""
        after = before.model_copy(update={"transactions": tuple(transactions)})
        return self._prices.get_prices(held_tokens(after), deadline=deadline)

    def _commit(
        self,
        before: PortfolioSnapshot,
        transactions: Sequence[Transaction],
        *,
        quotes: Mapping[str, PriceQuote],
        put: Sequence[Transaction] = (),
        delete: Sequence[str] = (),
    ) -> Committed:
        ordered = tuple(sorted(transactions, key=lambda transaction: transaction.sort_key))
        replay(ordered, before.record.cost_basis_method)
        after = before.model_copy(update={"transactions": ordered})
        now = self._clock()
        record = repriced_record(after, quotes, now)
        # Computed before writing: a history whose portfolio cannot be shown is never stored.
        view = compute_portfolio(after.model_copy(update={"record": record}), now=now)
        stored = self._store.commit(
            before.record.user_id,
            expected_version=before.record.version,
            record=record,
            put_transactions=put,
            delete_transaction_ids=delete,
        )
        return Committed(snapshot=after.model_copy(update={"record": stored}), view=view)

    def _warm(self, committed: Committed) -> None:
        self._cache.replace_views(committed.record.user_id, committed.record.version, warm_bodies(committed.view))

    def _attempts(self) -> range:
        return range(1, self._max_commit_attempts + 1)

    def _note_conflict(self, user_id: str, attempt: int, conflict: Exception) -> None:
        logger.info("portfolio changed while writing; retrying", extra={"user_id": user_id, "attempt": attempt,
                                                                           "conflict": type(conflict).__name__})
        if attempt == self._max_commit_attempts:
            raise conflict


def _unique_by_id(transactions: Sequence[Transaction]) -> list[Transaction]:
    """The same id twice is one transaction when both are equal; two different ones are refused."""
    first_seen: dict[str, tuple[int, Transaction]] = {}
    for index, transaction in enumerate(transactions):
        seen = first_seen.setdefault(transaction.id, (index, transaction))
        if seen[1] != transaction:
            raise InvalidInputError(
                f"id {transaction.id!r} is also used by item {seen[0]} with different content",
                field=f"transactions[{index}].id",
            )
    return [transaction for _, transaction in first_seen.values()]
