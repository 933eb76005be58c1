"""Write use cases: record transactions, delete one, change the settings, link and unlink wallets.

Every write follows the same steps, so a failed request leaves the stored portfolio as it was:
1. load the user's portfolio item (record and positions, one GetItem);
2. apply the change to the positions: new transactions that sort after everything stored extend
   the positions alone; a backdated one, a deletion or other settings replay the history (one
   Query). An overdraft anywhere raises OverdraftError, a per-user limit PortfolioLimitError,
   before anything is written;
3. price the held tokens (PriceService, bounded by a deadline) and value the portfolio: a history
   whose portfolio cannot be shown is never stored;
4. commit transactions, positions and holder counts in one conditional write on the version that
   was loaded; when someone else wrote in between (VersionConflict), start again from 1 with a
   consistent read, a bounded number of times. An import larger than one DynamoDB transaction is
   committed in steps that each leave a valid history (domain/import_plan.py); a repeat of the
   request completes an import that stopped part way, since stored ids are skipped;
5. warm the cache: retire every cached view of the user, then store the fresh portfolio and assets;
   and tell the user's open WebSocket connections (live_updates.py), without waiting for them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from itertools import batched

from portfolio.domain.accounting import ARRIVING, Ledger
from portfolio.domain.arithmetic import EXACT
from portfolio.domain.chain_movements import match_chain_arrivals
from portfolio.domain.errors import (
    InvalidInputError,
    OverdraftError,
    PortfolioLimitError,
    RecordedBySyncError,
    TransactionIdConflict,
    TransactionNotFound,
    TransactionsExist,
    VersionConflict,
    WalletNotFound,
)
from portfolio.domain.import_plan import plan_stored_import
from portfolio.domain.portfolio_record import CostBasisMethod, CostBasisScope, MissingAcquisitions, PortfolioRecord
from portfolio.domain.stored_portfolio import StoredPortfolio
from portfolio.domain.tokens import TokenId
from portfolio.domain.transactions import PriceSource, Transaction, TransactionSource, TransactionType
from portfolio.domain.valuation import value_portfolio
from portfolio.domain.valued_portfolio import ValuedPortfolio
from portfolio.domain.wallets import Wallet, find_wallet
from portfolio.observability import logger
from portfolio.services.portfolio_rendering import warm_bodies
from portfolio.services.ports import (
    ActivityLog,
    HistoricalPriceLookup,
    LiveUpdates,
    PortfolioWriter,
    PriceLookup,
    PricesUnavailableError,
    WarmableCache,
)
from portfolio.services.positions import holder_changes, positions_of, replay_under, stored_or_replayed

DEFAULT_MAX_COMMIT_ATTEMPTS = 4
# A DynamoDB transaction takes 100 writes: the portfolio item and 99 transactions or holder counts.
MAX_ACTIONS_PER_STEP = 99
DEFAULT_MAX_TRANSACTIONS = 10_000
DEFAULT_MAX_TOKENS = 1_000


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    """The stored records in the order they were sent, and how many of them this call created."""

    transactions: list[Transaction]
    created: int


@dataclass(frozen=True, slots=True)
class Limits:
    max_transactions: int = DEFAULT_MAX_TRANSACTIONS
    max_tokens: int = DEFAULT_MAX_TOKENS

    def check(self, ledger: Ledger) -> None:
        if ledger.transaction_count > self.max_transactions:
            raise PortfolioLimitError(
                f"a portfolio holds at most {self.max_transactions} transactions; "
                f"this change would make it {ledger.transaction_count}",
                field="transactions",
            )
        tokens = len(ledger.held_tokens())
        if tokens > self.max_tokens:
            raise PortfolioLimitError(
                f"a portfolio holds at most {self.max_tokens} distinct tokens; this change would make it {tokens}",
                field="transactions",
            )


class TransactionRecorder:
    def __init__(
        self,
        store: PortfolioWriter,
        prices: PriceLookup,
        cache: WarmableCache,
        *,
        activity: ActivityLog | None = None,
        historical: HistoricalPriceLookup | None = None,
        limits: Limits = Limits(),
        max_commit_attempts: int = DEFAULT_MAX_COMMIT_ATTEMPTS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        live: LiveUpdates | None = None,
    ) -> None:
        self._store = store
        self._live = live
        self._prices = prices
        self._cache = cache
        self._activity = activity
        self._historical = historical
        self._limits = limits
        self._max_commit_attempts = max_commit_attempts
        self._clock = clock

    def record(
        self, user_id: str, transactions: Sequence[Transaction], *, deadline: float | None = None
    ) -> RecordOutcome:
        """Store the transactions whose ids are new; a known id sent with the content stored answers
        with the record already stored.

        Raises TransactionIdConflict for a known id sent with other content, OverdraftError or
        PortfolioLimitError (nothing written).
        """
        unique = _unique_by_id(transactions)
        self.touch(user_id)

        def attempt(consistent: bool) -> RecordOutcome:
            portfolio = self._store.load_portfolio(user_id, consistent_read=consistent)
            _check_wallets_named(portfolio, unique)
            stored = self._store.get_transactions(user_id, [transaction.id for transaction in unique])
            _check_repeats_match(transactions, stored)
            new = self._market_priced([transaction for transaction in unique if transaction.id not in stored], deadline)
            new = in_recorded_order(portfolio.version, new)
            if new and not self._commit_matched(portfolio, new, deadline=deadline):
                self._commit_import(portfolio, new, deadline=deadline)
            elif portfolio.version > 0:
                # A repeat: the first attempt may have stored everything and died before warming.
                ledger = positions_of(portfolio, self._store, consistent_read=True)
                self._warm(portfolio, self._value(portfolio, ledger, deadline))
            stored.update((transaction.id, transaction) for transaction in new)
            return RecordOutcome(transactions=[stored[transaction.id] for transaction in unique], created=len(new))

        return self._until_no_conflict(user_id, attempt)

    def delete(self, user_id: str, transaction_id: str, *, deadline: float | None = None) -> ValuedPortfolio:
        """Remove one transaction and answer the recomputed portfolio.

        Raises TransactionNotFound, or OverdraftError when a later removal would then lack holdings.
        """
        self.touch(user_id)

        def attempt(consistent: bool) -> ValuedPortfolio:
            portfolio = self._store.load_portfolio(user_id, consistent_read=consistent)
            history = self._store.load_history(user_id, consistent_read=True)
            remaining = [transaction for transaction in history if transaction.id != transaction_id]
            if len(remaining) == len(history):
                raise TransactionNotFound(transaction_id)
            doomed = next(transaction for transaction in history if transaction.id == transaction_id)
            if doomed.from_chain:
                raise RecordedBySyncError(
                    f"transaction {transaction_id} was recorded by the sync of wallet {doomed.wallet_id}; "
                    "unlink the wallet to remove what it brought",
                    field="transactionId",
                )
            current = stored_or_replayed(portfolio, history)
            portfolio = self._counted(portfolio, current)
            after = replay_under(portfolio.record, remaining)
            committed, view = self._commit(
                portfolio, after, counted=current, deadline=deadline, delete=[transaction_id]
            )
            self._warm(committed, view)
            return view

        return self._until_no_conflict(user_id, attempt)

    def change_settings(
        self,
        user_id: str,
        *,
        method: CostBasisMethod | None = None,
        scope: CostBasisScope | None = None,
        missing_acquisitions: MissingAcquisitions | None = None,
        deadline: float | None = None,
    ) -> PortfolioRecord:
        """Store the settings given (the others stay) and rebuild the positions under them. Refusing
        missing acquisitions again raises OverdraftError while the history has any (nothing written)."""
        self.touch(user_id)
        update = {
            name: value
            for name, value in (
                ("cost_basis_method", method),
                ("cost_basis_scope", scope),
                ("missing_acquisitions", missing_acquisitions),
            )
            if value is not None
        }

        def attempt(consistent: bool) -> PortfolioRecord:
            portfolio = self._store.load_portfolio(user_id, consistent_read=consistent)
            record = portfolio.record.model_copy(update=update)
            if record == portfolio.record and portfolio.version > 0:
                return portfolio.record
            history = self._store.load_history(user_id, consistent_read=True)
            current = stored_or_replayed(portfolio, history)
            portfolio = self._counted(portfolio, current)
            after = replay_under(record, history)
            changed = replace(portfolio, record=record)
            committed, view = self._commit(changed, after, counted=current, deadline=deadline)
            self._warm(committed, view)
            return committed.record

        return self._until_no_conflict(user_id, attempt)

    def apply_wallet_change(
        self, user_id: str, plan: Callable[[StoredPortfolio, Ledger], WalletChange], *, deadline: float | None = None
    ) -> StoredPortfolio | None:
        """Change the linked wallets, and record what wallet sync found. `plan` is given the portfolio
        and its positions read consistently (again after a conflict), so the differences it records
        are against what is stored; transactions already stored (the same block read twice) are
        skipped. Returns the portfolio as committed, None when there was nothing to write.

        Raises OverdraftError when a recorded movement leaves an earlier-dated user transaction
        without holdings (nothing written).
        """

        def attempt(_consistent: bool) -> StoredPortfolio | None:
            portfolio = self._store.load_portfolio(user_id, consistent_read=True)
            ledger = positions_of(portfolio, self._store, consistent_read=True)
            planned = plan(portfolio, ledger)
            ids = [transaction.id for transaction in planned.transactions]
            known = self._store.get_transactions(user_id, ids) if ids else {}
            new = in_recorded_order(
                portfolio.version, [transaction for transaction in planned.transactions if transaction.id not in known]
            )
            changed = replace(portfolio, ledger=ledger, wallets=planned.wallets)
            if new:
                return self._commit_import(changed, new, deadline=deadline)
            if planned.wallets == portfolio.wallets:
                return None
            counted = self._counted(changed, ledger)
            return self._store.commit(counted, expected_version=counted.version)

        return self._until_no_conflict(user_id, attempt)

    def remove_wallet(self, user_id: str, wallet_id: str, *, deadline: float | None = None) -> None:
        """Unlink a wallet and remove every transaction it accounts for (recorded by its sync or
        tagged with it by the user), latest first, in commits of at most MAX_ACTIONS_PER_STEP, each
        leaving a valid history; the first also drops the wallet, so a sync never re-records what is
        being removed. A repeat after a partial removal finishes it.

        Raises WalletNotFound, or OverdraftError when an untagged transaction relies on the wallet's
        coins (nothing written).
        """
        self.touch(user_id)

        def attempt(consistent: bool) -> None:
            portfolio = self._store.load_portfolio(user_id, consistent_read=consistent)
            history = self._store.load_history(user_id, consistent_read=True)
            doomed = [transaction for transaction in history if transaction.wallet_id == wallet_id]
            linked = find_wallet(portfolio.wallets, wallet_id) is not None
            if not linked and not doomed:
                raise WalletNotFound(wallet_id)
            current = stored_or_replayed(portfolio, history)
            portfolio = self._counted(portfolio, current)
            kept = [transaction for transaction in history if transaction.wallet_id != wallet_id]
            replay_under(portfolio.record, kept)  # raises OverdraftError before anything is written
            before = replace(portfolio, wallets=tuple(w for w in portfolio.wallets if w.wallet_id != wallet_id))
            counted = current
            committed, view = before, None
            removed: set[str] = set()
            for chunk in batched([t.id for t in reversed(doomed)], MAX_ACTIONS_PER_STEP) if doomed else [()]:
                removed.update(chunk)
                after = replay_under(portfolio.record, [t for t in history if t.id not in removed])
                committed, view = self._commit(before, after, counted=counted, deadline=deadline, delete=chunk)
                before, counted = committed, after
            if view is not None:
                self._warm(committed, view)

        self._until_no_conflict(user_id, attempt)

    def _until_no_conflict[T](self, user_id: str, attempt: Callable[[bool], T]) -> T:
        """Runs `attempt` until no concurrent write gets in its way: after a conflict it starts again
        from a consistent read; the last attempt's conflict reaches the caller (the API's 409)."""
        for number in range(1, self._max_commit_attempts):
            try:
                return attempt(number > 1)
            except (VersionConflict, TransactionsExist) as conflict:
                logger.info(
                    "portfolio changed while writing; retrying",
                    extra={"user_id": user_id, "attempt": number, "conflict": type(conflict).__name__},
                )
        return attempt(self._max_commit_attempts > 1)

    def _commit_import(
        self, portfolio: StoredPortfolio, new: Sequence[Transaction], *, deadline: float | None
    ) -> StoredPortfolio:
        base = positions_of(portfolio, self._store, consistent_read=True)
        portfolio = self._counted(portfolio, base)
        planned = plan_stored_import(
            base,
            new,
            history=lambda: self._store.load_history(portfolio.user_id, consistent_read=True),
            max_actions=MAX_ACTIONS_PER_STEP,
        )
        # Limits apply to where the import ends: its steps may pass through more open tokens.
        self._limits.check(planned.final)
        before, counted = portfolio, base
        committed, view = portfolio, None
        for step, after in zip(planned.steps, planned.after_each, strict=True):
            committed, view = self._commit(before, after, counted=counted, deadline=deadline, put=step)
            before, counted = committed, after
        if view is not None:
            self._warm(committed, view)
        return committed

    def _market_priced(self, transactions: Sequence[Transaction], deadline: float | None) -> list[Transaction]:
        """The transactions, those sent without a price valued at the market price of their time
        (priceSource market), and a fee paid in a token without feeUsd at that token's, all of them in
        a few coins API calls. A sale the market has no price for is refused (InvalidInputError); a buy
        or transfer in without one is of unknown cost, a transfer out leaves at cost, a fee in a token
        is valued at the coins' cost. Raises PricesUnavailableError when the coins API cannot be asked
        and a cost depends on it (nothing written); transfers out and fees are then recorded at cost."""
        wanted = [moment for transaction in transactions for moment in _market_prices_wanted(transaction)]
        if not wanted:
            return list(transactions)
        found: dict[tuple[TokenId, datetime], Decimal] = {}
        if self._historical is not None:
            try:
                found = self._historical.prices_at_many(list(dict.fromkeys(wanted)), deadline=deadline)
            except PricesUnavailableError:
                if any(_cost_needs_price(transaction) for transaction in transactions):
                    raise
                # Only transfers out and fees asked: they are recorded at cost, without the market's word.
                logger.warning("market prices unavailable: recorded at cost", extra={"transactions": len(wanted)})
        priced = []
        for index, transaction in enumerate(transactions):
            update: dict[str, object] = {}
            if _MARKET_PRICE in _wants(transaction):
                price = found.get((transaction.token, transaction.timestamp))
                if price is not None:
                    update |= {"price_usd": price, "price_source": PriceSource.MARKET}
                elif transaction.type is TransactionType.SELL:
                    moment = transaction.timestamp.isoformat()
                    raise InvalidInputError(
                        f"no market price for {transaction.token} at {moment}: send priceUsd",
                        field=f"transactions[{index}].priceUsd",
                    )
            if _FEE_PRICE in _wants(transaction) and transaction.fee_token_id and transaction.fee_amount:
                fee_price = found.get((transaction.fee_token_id, transaction.timestamp))
                if fee_price is not None:
                    update["fee_usd"] = EXACT.multiply(transaction.fee_amount, fee_price)
            priced.append(transaction.model_copy(update=update) if update else transaction)
        return priced

    def _commit_matched(
        self, portfolio: StoredPortfolio, new: Sequence[Transaction], *, deadline: float | None
    ) -> bool:
        """Acquisitions the user tags with a wallet explain the arrivals its sync recorded of the same
        coins (chain_movements.match_chain_arrivals): those are taken out in the same commit, so the
        coins are held once, at the user's cost. False when there is nothing to match, or the change
        would not fit one commit (the next sync then evens the amounts out with a transfer_out)."""
        if not any(t.wallet_id is not None and t.type in ARRIVING for t in new):
            return False
        history = self._store.load_history(portfolio.user_id, consistent_read=True)
        taken, rests = match_chain_arrivals(history, new)
        if not taken:
            return False
        kept = [transaction for transaction in history if transaction.id not in set(taken)]
        try:
            after = replay_under(portfolio.record, [*kept, *rests, *new])
        except OverdraftError:
            return False  # matched, the history would not hold: stored as sent instead
        current = stored_or_replayed(portfolio, history)
        portfolio = self._counted(portfolio, current)
        changes = len(taken) + len(rests) + len(new) + len(holder_changes(current, after))
        if changes > MAX_ACTIONS_PER_STEP:
            return False
        self._limits.check(after)
        committed, view = self._commit(
            portfolio, after, counted=current, deadline=deadline, put=[*rests, *new], delete=taken
        )
        self._warm(committed, view)
        return True

    def _counted(self, portfolio: StoredPortfolio, current: Ledger) -> StoredPortfolio:
        """The portfolio with its held tokens in the holder counts. One stored before counts existed
        gets them first, in commits of at most MAX_ACTIONS_PER_STEP counts that each also store its
        positions (what its transactions already make), so any step that lands leaves it readable."""
        if portfolio.holders_counted:
            return portfolio
        counts = sorted(holder_changes(Ledger.empty(current.method), current).items())
        migrated = portfolio
        for chunk in batched(counts, MAX_ACTIONS_PER_STEP) if counts else [()]:
            migrated = self._store.commit(
                replace(migrated, ledger=current),
                expected_version=migrated.version,
                holder_changes=dict(chunk),
            )
        logger.info(
            "holder counts added for a portfolio stored before they were kept",
            extra={"user_id": portfolio.user_id, "tokens": len(counts)},
        )
        return migrated

    def _commit(
        self,
        before: StoredPortfolio,
        after: Ledger,
        *,
        counted: Ledger,
        deadline: float | None,
        put: Sequence[Transaction] = (),
        delete: Sequence[str] = (),
    ) -> tuple[StoredPortfolio, ValuedPortfolio]:
        if not put:
            self._limits.check(after)
        changed = replace(before, record=before.record.model_copy(update={"updated_at": self._clock()}), ledger=after)
        # Computed before writing: a history whose portfolio cannot be shown is never stored.
        view = self._value(changed, after, deadline)
        committed = self._store.commit(
            changed,
            expected_version=before.version,
            put_transactions=put,
            delete_transaction_ids=delete,
            holder_changes=holder_changes(counted, after),
        )
        return committed, view

    def _value(self, portfolio: StoredPortfolio, ledger: Ledger, deadline: float | None) -> ValuedPortfolio:
        quotes = self._prices.get_prices(ledger.valued_tokens(), deadline=deadline)
        return value_portfolio(
            portfolio.user_id,
            ledger,
            quotes,
            updated_at=portfolio.record.updated_at,
            contract_symbols=portfolio.contract_symbols,
        )

    def _warm(self, portfolio: StoredPortfolio, view: ValuedPortfolio) -> None:
        self._cache.replace_views(portfolio.user_id, portfolio.version, warm_bodies(view))
        if self._live is not None:
            self._live.portfolio_updated(portfolio.user_id, view.summary, version=portfolio.version)

    def touch(self, user_id: str) -> None:
        """Marks the user as active: the refresh then values (and syncs) them every cycle."""
        if self._activity is not None:
            self._activity.touch(user_id)


# What a user may send without a price: the market's at its time is looked up (for a transfer out,
# to know the gain that left with the coins).
_MARKET_PRICED = frozenset({*ARRIVING, TransactionType.SELL, TransactionType.TRANSFER_OUT})
_MARKET_PRICE, _FEE_PRICE = "price", "fee"


def _wants(transaction: Transaction) -> set[str]:
    """Which market prices a transaction sent by the user needs looked up."""
    if transaction.source is not TransactionSource.USER:
        return set()
    wants = set()
    if transaction.price_usd is None and transaction.type in _MARKET_PRICED:
        wants.add(_MARKET_PRICE)
    if transaction.fee_token_id is not None and transaction.fee_usd is None:
        wants.add(_FEE_PRICE)
    return wants


def _cost_needs_price(transaction: Transaction) -> bool:
    """A buy, sale, transfer in or income without a price: its cost or proceeds are the market's."""
    return _MARKET_PRICE in _wants(transaction) and transaction.type is not TransactionType.TRANSFER_OUT


def _market_prices_wanted(transaction: Transaction) -> list[tuple[TokenId, datetime]]:
    wants = _wants(transaction)
    moments = []
    if _MARKET_PRICE in wants:
        moments.append((transaction.token, transaction.timestamp))
    if _FEE_PRICE in wants and transaction.fee_token_id is not None:
        moments.append((transaction.fee_token_id, transaction.timestamp))
    return moments


# Transactions of one write are numbered after those of every earlier write: room for this many per write.
SEQUENCES_PER_WRITE = 1_000_000


def in_recorded_order(version: int, transactions: Sequence[Transaction]) -> list[Transaction]:
    """The transactions numbered in the order given, after everything a write before `version` stored,
    so that those of the same timestamp replay in the order they were recorded."""
    base = (version + 1) * SEQUENCES_PER_WRITE
    return [transaction.model_copy(update={"sequence": base + index}) for index, transaction in enumerate(transactions)]


@dataclass(frozen=True, slots=True)
class WalletChange:
    """The wallets after a change (a link, a sync's new state) and the transactions a sync records."""

    transactions: list[Transaction]
    wallets: tuple[Wallet, ...]


def _check_wallets_named(portfolio: StoredPortfolio, transactions: Sequence[Transaction]) -> None:
    linked = {wallet.wallet_id for wallet in portfolio.wallets}
    for index, transaction in enumerate(transactions):
        if transaction.wallet_id is not None and transaction.wallet_id not in linked:
            raise InvalidInputError(
                f"walletId {transaction.wallet_id} is not a wallet linked to this portfolio",
                field=f"transactions[{index}].walletId",
            )


def _check_repeats_match(sent: Sequence[Transaction], stored: Mapping[str, Transaction]) -> None:
    """A known id sent again must carry the content stored under it (TransactionIdConflict otherwise),
    so a repeat is a no-op and never a change that is silently dropped."""
    for index, transaction in enumerate(sent):
        known = stored.get(transaction.id)
        differing = [] if known is None else _differing_fields(transaction, known)
        if differing:
            raise TransactionIdConflict(transaction.id, fields=differing, field=f"transactions[{index}].id")


def _differing_fields(sent: Transaction, stored: Transaction) -> list[str]:
    """The fields (as the API names them) in which `sent` differs from the stored record, leaving out
    what the server set: the sequence, and a price or fee value looked up from the market because the
    client sent none. Values compare as values: "1.50" is "1.5", a time is the same instant in any zone."""
    ignored = {"sequence"}
    if sent.price_usd is None and stored.price_source is PriceSource.MARKET:
        ignored |= {"price_usd", "price_source"}
    if sent.fee_usd is None and sent.fee_token is not None:
        ignored.add("fee_usd")
    mine, theirs = sent.model_dump(exclude=ignored), stored.model_dump(exclude=ignored)
    return [Transaction.model_fields[name].alias or name for name in mine if mine[name] != theirs[name]]


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
