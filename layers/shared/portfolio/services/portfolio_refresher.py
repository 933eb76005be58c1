"""Syncs the wallets of one SQS batch of refresh messages, values its active users and warms their views.

The sweep has already priced every held token for the window, so this reads and writes little:
1. prefetch: the portfolio items of every user of every message (BatchGetItem, 100 keys a
   request) and the quotes of the union of the active users' held tokens (memory, then Redis; the
   coins API only for a token the sweep missed);
2. per message: sync the linked wallets of its users, active and idle (wallet_sync.py: one read
   per chain for the whole message), which writes only for users whose chains moved; then value
   each active user from its stored positions (never a replay) and replace the cached views (the
   summary, and the asset list of the message's `assetUserIds`: valuing and writing the list
   costs as much as the summary, so it is warmed only for who reads it),
   guarded by the version read, so a write that lands meanwhile keeps its own, newer views; a user
   with open WebSocket connections whose figures moved is sent `portfolio.updated` (started here,
   all of the invocation's pushes concurrently; the handler waits for them once, bounded).

Users with alert rules (a message's `alertUserIds`) have them evaluated against the same positions
and quotes (alert_evaluation.py); users queued for their rules alone (tier "alerts") are not warmed
and their wallets wait for their idle pass.

Prices moving write nothing to DynamoDB: they do not change a user's positions. A user is started
only while the invocation has time left for it; the others of the message are retried later.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, NamedTuple

from portfolio.domain.accounting import Ledger
from portfolio.domain.prices import PriceQuote
from portfolio.domain.stored_portfolio import StoredPortfolio
from portfolio.domain.valuation import value_portfolio
from portfolio.domain.valued_portfolio import SummaryFigures
from portfolio.observability import logger, metrics
from portfolio.services.alert_evaluation import AlertEvaluation, AlertRound
from portfolio.services.portfolio_rendering import warm_bodies
from portfolio.services.ports import (
    PRICED_KINDS,
    LiveUpdates,
    PortfolioBatchSource,
    PriceLookup,
    ViewReplacement,
    WarmableCache,
)
from portfolio.services.positions import positions_of
from portfolio.services.refresh_message import RefreshMessage

if TYPE_CHECKING:  # only a type here: wallet sync is built by the wiring, off the cold start
    from portfolio.services.wallet_sync import WalletSync

DEFAULT_USER_BUDGET_S = 0.5
DEFAULT_WALLET_BUDGET_S = 10.0


class UserRefreshError(Exception):
    """Some users of a message could not be refreshed; the others were."""

    def __init__(self, failures: Mapping[str, BaseException]) -> None:
        described = ", ".join(f"{user_id}: {type(error).__name__}" for user_id, error in failures.items())
        super().__init__(f"{len(failures)} user(s) not refreshed ({described})")
        self.failures = dict(failures)


class Warmed(NamedTuple):
    """A user's fresh views, and the summary their connections are sent."""

    views: ViewReplacement
    summary: SummaryFigures


class OutOfTimeError(Exception):
    """Too little of the invocation was left to start this user; its message comes back later."""


@dataclass
class RefreshCounts:
    users_valued: int = 0  # valued and their views warmed
    users_missing: int = 0
    users_failed: int = 0
    users_deferred: int = 0
    users_idle: int = 0
    wallet_users_synced: int = 0
    wallet_transactions: int = 0
    alert_users_evaluated: int = 0
    alerts_fired: int = 0


@dataclass
class RefreshBatch:
    """What the prefetch found: each user's portfolio (or why it failed to load) and the quotes; and
    what became of the batch's users. Each invocation has its own batch, so its counts (and the
    metrics reported from them) are that invocation's alone, however long the container lives."""

    portfolios: dict[str, StoredPortfolio] = field(default_factory=dict)
    load_errors: dict[str, Exception] = field(default_factory=dict)
    quotes: dict[str, PriceQuote] = field(default_factory=dict)
    tokens: int = 0
    deadline: float | None = None  # time.monotonic() past which no user may start
    idle: set[str] = field(default_factory=set)  # loaded for their wallets only
    counts: RefreshCounts = field(default_factory=RefreshCounts)
    # How many of the batch's messages name each user, and who is done: refreshed by the last of
    # them, their portfolio let go (a batch holds a thousand; the refresh runs ~3 % faster on a
    # heap that does not keep them all to the end).
    uses: Counter[str] = field(default_factory=Counter)
    done: set[str] = field(default_factory=set)
    _finished: set[tuple[object, ...]] = field(default_factory=set)

    @property
    def stale_tokens(self) -> int:
        return sum(1 for quote in self.quotes.values() if quote.stale)

    def finish(self, message: RefreshMessage, failed: Iterable[str]) -> None:
        """The message's users are done with, once: those it did not fail, and no later message
        names, are let go. A user that failed keeps its portfolio, so running the message again
        (when its outcome could not be recorded) retries it."""
        key = (message.window, message.tier, tuple(message.user_ids))
        if key in self._finished:
            return
        self._finished.add(key)
        kept = set(failed)
        for user_id in message.user_ids:
            self.uses[user_id] -= 1
            if self.uses[user_id] <= 0 and user_id not in kept and self.portfolios.pop(user_id, None) is not None:
                self.done.add(user_id)


class PortfolioRefresher:
    def __init__(
        self,
        store: PortfolioBatchSource,
        prices: PriceLookup,
        cache: WarmableCache,
        *,
        wallets: Callable[[], WalletSync | None] | None = None,
        wallet_budget_s: float = DEFAULT_WALLET_BUDGET_S,
        user_budget_s: float = DEFAULT_USER_BUDGET_S,
        monotonic: Callable[[], float] = time.monotonic,
        live: LiveUpdates | None = None,
        alerts: AlertEvaluation | None = None,
    ) -> None:
        self._store = store
        self._live = live
        self._alerts = alerts
        self._prices = prices
        self._cache = cache
        self._wallets = wallets
        self._wallet_budget_s = wallet_budget_s
        self._user_budget_s = user_budget_s
        self._monotonic = monotonic
        self._last_counts = RefreshCounts()

    @property
    def counts(self) -> RefreshCounts:
        """The counts of the batch prefetched last (what its invocation reported)."""
        return self._last_counts

    def prefetch(
        self, user_ids: Iterable[str], *, idle_user_ids: Iterable[str] = (), deadline: float | None = None
    ) -> RefreshBatch:
        """Every user's portfolio item (idle users' too: their wallets are synced) and the quotes of
        the active users' held tokens, each read once."""
        batch = RefreshBatch(deadline=deadline)
        self._last_counts = batch.counts
        # With repeats: a user two messages name is used twice.
        named, idle_named = list(user_ids), list(idle_user_ids)
        batch.uses.update(named + idle_named)
        active = list(dict.fromkeys(named))
        unique = list(dict.fromkeys([*active, *idle_named]))
        try:
            loaded = self._store.load_portfolios(unique)
        except Exception as error:  # reported per message, so SQS brings them back
            batch.load_errors = dict.fromkeys(unique, error)
            return batch
        for user_id, outcome in loaded.items():
            if isinstance(outcome, Exception):
                batch.load_errors[user_id] = outcome
            else:
                batch.portfolios[user_id] = outcome
        batch.idle = set(unique) - set(active)
        held = {token.key: token for ledger in self._ledgers(batch) for token in ledger.valued_tokens()}
        batch.tokens = len(held)
        batch.quotes = self._prices.get_prices(held.values(), deadline=deadline)
        return batch

    def _ledgers(self, batch: RefreshBatch) -> Iterable[Ledger]:
        for user_id, portfolio in list(batch.portfolios.items()):
            if user_id in batch.idle:
                continue
            if portfolio.ledger is not None:
                yield portfolio.ledger
                continue
            try:  # stored before positions were kept: rebuilt once here, stored by the next write
                ledger = positions_of(portfolio, self._store)
            except Exception as error:
                batch.load_errors[user_id] = error
                del batch.portfolios[user_id]
                continue
            batch.portfolios[user_id] = replace(portfolio, ledger=ledger)
            yield ledger

    def refresh_message(self, message: RefreshMessage, batch: RefreshBatch) -> int:
        """Refresh every user of the message; if any fails, the others still complete, then this raises.

        The linked wallets of every user of the message are synced first; an idle message stops
        there (its users are valued on their next read). What fired is delivered once the message's
        users are done, failed ones or not.
        """
        if message.tier != "alerts":
            self._sync_wallets(message, batch)
        if message.tier == "idle":
            batch.counts.users_idle += len(message.user_ids)
            batch.finish(message, failed=())
            return 0
        alerts = self._prepare_alerts(message, batch)
        asset_readers = set(message.asset_user_ids or ())
        warm = message.tier == "active"
        warmed: list[Warmed] = []
        failures: dict[str, BaseException] = {}
        refreshed = 0
        for user_id in message.user_ids:
            try:
                asset_list = user_id in asset_readers
                if self.refresh_user(user_id, batch, warm=warm, asset_list=asset_list, alerts=alerts, warmed=warmed):
                    refreshed += 1
            except OutOfTimeError as error:
                failures[user_id] = error
                batch.counts.users_deferred += 1
            except Exception as error:
                failures[user_id] = error
                batch.counts.users_failed += 1
                logger.warning(
                    "user not refreshed",
                    extra={"user_id": user_id, "window": message.window.isoformat(), "error": repr(error)[:300]},
                )
        try:
            self._store_views(warmed)
        finally:  # what fired is delivered whatever became of the views
            if alerts is not None and self._alerts is not None:
                self._alerts.deliver(alerts)
                batch.counts.alert_users_evaluated += alerts.users_evaluated
                batch.counts.alerts_fired += len(alerts.fired)
        batch.finish(message, failed=failures)
        if failures:
            raise UserRefreshError(failures)
        return refreshed

    def _prepare_alerts(self, message: RefreshMessage, batch: RefreshBatch) -> AlertRound | None:
        if self._alerts is None or not message.alert_user_ids:
            return None
        ledgers = {
            user_id: portfolio.ledger
            for user_id in message.alert_user_ids
            if (portfolio := batch.portfolios.get(user_id)) is not None and portfolio.ledger is not None
        }
        return self._alerts.prepare(
            message.alert_user_ids, message.window, ledgers, batch.quotes, deadline=batch.deadline
        )

    def _sync_wallets(self, message: RefreshMessage, batch: RefreshBatch) -> None:
        """Sync the message's users' wallets; who was recorded anew is valued from what was committed."""
        wallet_sync = None if self._wallets is None else self._wallets()
        if wallet_sync is None:
            return
        linked = {
            user_id: batch.portfolios[user_id]
            for user_id in message.user_ids
            if user_id in batch.portfolios and batch.portfolios[user_id].wallets
        }
        if not linked:
            return
        reads_end = self._monotonic() + self._wallet_budget_s
        if batch.deadline is not None:
            reads_end = min(batch.deadline, reads_end)
        result = wallet_sync.sync(linked, deadline=batch.deadline, read_deadline=reads_end)
        batch.counts.wallet_users_synced += result.users_synced
        batch.counts.wallet_transactions += result.transactions_recorded
        batch.portfolios.update(result.committed)
        unpriced = {
            token.key: token
            for user_id, portfolio in result.committed.items()
            if user_id not in batch.idle and portfolio.ledger is not None
            for token in portfolio.ledger.valued_tokens()
            if token.key not in batch.quotes
        }
        if unpriced:
            batch.quotes.update(self._prices.get_prices(unpriced.values(), deadline=batch.deadline))

    def refresh_user(
        self,
        user_id: str,
        batch: RefreshBatch,
        *,
        warm: bool = True,
        asset_list: bool = True,
        alerts: AlertRound | None = None,
        warmed: list[Warmed] | None = None,
    ) -> bool:
        """Value one active user and warm its views (`warm`: the summary, and the asset list when
        `asset_list`), and evaluate its alert rules (`alerts`); False for a user with nothing stored.
        With `warmed`, the views join it, to be stored with the others of the message in one round
        trip (_store_views); without, they are stored now."""
        if user_id in batch.load_errors:
            raise batch.load_errors[user_id]
        if user_id in batch.done:  # refreshed by this message already, which runs again: nothing to add
            return True
        if batch.deadline is not None and batch.deadline - self._monotonic() < self._user_budget_s:
            raise OutOfTimeError(f"less than {self._user_budget_s} s left in the invocation")
        portfolio = batch.portfolios.get(user_id)
        if portfolio is None or portfolio.ledger is None:
            batch.counts.users_missing += 1
            if alerts is not None and self._alerts is not None:  # price rules hold with nothing held too
                self._alerts.evaluate(alerts, user_id, None, batch.quotes)
            return False
        if warm:
            view = value_portfolio(
                user_id,
                portfolio.ledger,
                batch.quotes,
                updated_at=portfolio.record.updated_at,
                contract_symbols=portfolio.contract_symbols,
                with_assets=asset_list,
            )
            fresh = Warmed(
                ViewReplacement(user_id, portfolio.version, warm_bodies(view, asset_list=asset_list)), view.summary
            )
            if warmed is None:
                self._store_views([fresh])
            else:
                warmed.append(fresh)
            batch.counts.users_valued += 1
        if alerts is not None and self._alerts is not None:
            self._alerts.evaluate(alerts, user_id, portfolio.ledger, batch.quotes)
        return True

    def _store_views(self, warmed: list[Warmed]) -> None:
        """Every priced view of these users is retired, and the fresh ones stored, guarded by the
        version valued (a view not warmed is valued on its next read); then each user's open
        connections hear of it."""
        if not warmed:
            return
        self._cache.replace_views_of_many([fresh.views for fresh in warmed], kinds=PRICED_KINDS)
        if self._live is not None:
            for fresh in warmed:
                # Carries the version valued: a write that saved a later one meanwhile keeps it from going out.
                self._live.portfolio_updated(fresh.views.user_id, fresh.summary, version=fresh.views.version)

    def report(self, *, messages: int, failed_messages: int, batch: RefreshBatch, duration_ms: float) -> None:
        counts = batch.counts
        logger.info(
            "refresh batch done",
            extra={
                "messages": messages,
                "failed_messages": failed_messages,
                "users_valued": counts.users_valued,
                "users_missing": counts.users_missing,
                "users_failed": counts.users_failed,
                "users_deferred": counts.users_deferred,
                "users_idle": counts.users_idle,
                "wallet_users_synced": counts.wallet_users_synced,
                "wallet_transactions": counts.wallet_transactions,
                "alert_users_evaluated": counts.alert_users_evaluated,
                "alerts_fired": counts.alerts_fired,
                "users_not_loaded": len(batch.load_errors),
                "unique_tokens": batch.tokens,
                "stale_prices": batch.stale_tokens,
                "duration_ms": round(duration_ms, 1),
            },
        )
        # PriceApiCalls and StalePrices are emitted by the PriceService itself, into this same flush.
        metrics.add_metric(name="UsersRefreshed", unit="Count", value=counts.users_valued)
        metrics.add_metric(name="UsersIdle", unit="Count", value=counts.users_idle)
        metrics.add_metric(name="RefreshFailures", unit="Count", value=counts.users_failed)
        metrics.add_metric(name="RefreshDeferred", unit="Count", value=counts.users_deferred)
        metrics.add_metric(name="RefreshDurationMs", unit="Milliseconds", value=duration_ms)
