"""Evaluating users' alert rules during a refresh, against the positions and prices it already loaded.

Per refresh message (`prepare`): the rules of the message's users that have any (one BatchGetItem),
the price of every asset a price rule watches (the batch's quotes; the price service only for an
asset no user of the batch holds) and, per window a value_change rule looks back over, the price of
every coin those users hold at the window's start (one BatchGetItem of the price history, kept per
container). Per user (`evaluate`): the domain's evaluation; a rule's state is written only when it
fires or re-arms, under the version read, so nothing is written on a refresh that changes nothing. A
firing counts once: the state is written first (a refresh of the same user racing this one, or the
API changing the rules, meets a version conflict and re-evaluates on the rules read afresh), and only
the firings that were written are delivered (`deliver`): to the user's open WebSocket connections
as `{"type": "alert.triggered", ...}`, and to EventBridge, ten events a call. Delivery never waits
per alert: the pushes are only started (with the invocation's other live updates, which the
handler waits for once, bounded by the push budget), and the event bus is given up on at the
invocation's deadline, so a price crossing that fires for many users at once cannot run the
refresh out of time.

Nothing here fails a refresh: rules that cannot be read, prices that cannot be had, a state that
cannot be written or a delivery that fails are logged and counted (`AlertEvaluationFailures`,
`AlertDeliveryFailures`), and the refresh goes on; the next cycle evaluates again. A firing whose
delivery failed is not sent again (its state is written): delivery is at most once per crossing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from portfolio.domain.accounting import Ledger
from portfolio.domain.alerts import (
    AlertWindow,
    Evaluation,
    FiredAlert,
    Observation,
    ValueChange,
    assets_of,
    evaluate,
    holdings_change,
    reference_token,
    windows_of,
)
from portfolio.domain.errors import VersionConflict
from portfolio.domain.performance import RETENTION
from portfolio.domain.prices import PriceQuote
from portfolio.domain.views import Resolution
from portfolio.observability import logger, metrics
from portfolio.services.ports import (
    AlertPublisher,
    AlertRuleStore,
    LiveUpdates,
    PastPrices,
    PriceLookup,
    StoredAlerts,
)

ALERT_MESSAGE_TYPE = "alert.triggered"
DEFAULT_SAVE_ATTEMPTS = 3


def resolutions_for(window: AlertWindow) -> tuple[Resolution, ...]:
    """The two finest price-history resolutions still kept that far back: 5m then 1h for 1h and 24h,
    1h then 1d for 7d (a bucket no sweep wrote at the finer one falls back to the coarser)."""
    kept = [
        resolution
        for resolution in Resolution
        if (retention := RETENTION[resolution]) is None or retention > window.length
    ]
    return tuple(kept[:2])


@dataclass
class AlertRound:
    """One refresh message's alert work: what `prepare` loaded, and what fired so far."""

    window: datetime
    stored: dict[str, StoredAlerts]
    asset_prices: dict[str, Decimal]
    past_prices: dict[AlertWindow, dict[str, Decimal]]
    deadline: float | None = None  # the invocation's, on time.monotonic()
    fired: list[FiredAlert] = field(default_factory=list)
    users_evaluated: int = 0


class AlertEvaluation:
    def __init__(
        self,
        rules: AlertRuleStore,
        prices: PriceLookup,
        past_prices: PastPrices,
        *,
        publisher: AlertPublisher | None = None,
        live: Callable[[], LiveUpdates | None] | None = None,
        save_attempts: int = DEFAULT_SAVE_ATTEMPTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rules = rules
        self._prices = prices
        self._past = past_prices
        self._publisher = publisher
        self._live = live
        self._save_attempts = save_attempts
        self._clock = clock

    def prepare(
        self,
        user_ids: Sequence[str],
        window: datetime,
        ledgers: Mapping[str, Ledger],
        quotes: dict[str, PriceQuote],
        *,
        deadline: float | None = None,
    ) -> AlertRound | None:
        """Loads what the users' rules need; None when none of them has a rule (or they cannot be read).
        Quotes fetched for assets nobody in the batch holds are added to `quotes`."""
        if not user_ids:
            return None
        try:
            stored = {user_id: found for user_id, found in self._rules.load_many(user_ids).items() if found.rules}
        except Exception as error:
            _failed("alert rules not loaded; evaluated next cycle", error, users=len(user_ids))
            return None
        if not stored:
            return None
        every_rule = [rule for found in stored.values() for rule in found.rules]
        return AlertRound(
            window=window,
            stored=stored,
            asset_prices=self._asset_prices(assets_of(every_rule), quotes, deadline),
            past_prices=self._past_prices(stored, ledgers, window),
            deadline=deadline,
        )

    def evaluate(
        self, alerts: AlertRound, user_id: str, ledger: Ledger | None, quotes: Mapping[str, PriceQuote]
    ) -> None:
        """Evaluates the user's rules (if any) and writes the states that changed; never raises. A user
        with nothing stored (`ledger` None) has its price rules evaluated; its value has no change."""
        stored = alerts.stored.get(user_id)
        if stored is None:
            return
        try:
            observation = Observation(
                at=alerts.window,
                asset_prices=alerts.asset_prices,
                value_changes=_value_changes(windows_of(stored.rules), alerts.past_prices, ledger, quotes),
            )
            alerts.fired.extend(self._settle(stored, evaluate(user_id, stored.rules, observation), observation))
            alerts.users_evaluated += 1
        except Exception as error:
            _failed("alert rules not evaluated", error, user_id=user_id)

    def deliver(self, alerts: AlertRound) -> None:
        """Sends what fired during the message: starts the pushes to the users' WebSocket connections
        (not waited for here), then puts the alerts on EventBridge until the invocation's deadline."""
        if not alerts.fired:
            return
        metrics.add_metric(name="AlertsFired", unit="Count", value=len(alerts.fired))
        for alert in alerts.fired:
            logger.info(
                "alert fired",
                extra={"user_id": alert.user_id, "alert_id": alert.alert_id, "kind": alert.rule.kind},
            )
        self._push(alerts)
        if self._publisher is not None:
            undelivered = self._publisher.publish(alerts.fired, deadline=alerts.deadline)
            if undelivered:
                metrics.add_metric(name="AlertDeliveryFailures", unit="Count", value=undelivered)

    def _push(self, alerts: AlertRound) -> None:
        """Starts each alert's message to its user's connections; none once the invocation is out of
        time (nothing would be left to wait for them)."""
        live = self._live_updates()
        if live is None:
            return
        for started, alert in enumerate(alerts.fired):
            if alerts.deadline is not None and self._clock() >= alerts.deadline:
                unpushed = len(alerts.fired) - started
                logger.warning("alerts not pushed: the invocation is out of time", extra={"alerts": unpushed})
                metrics.add_metric(name="LiveUpdateFailures", unit="Count", value=unpushed)
                return
            live.publish(alert.user_id, {"type": ALERT_MESSAGE_TYPE, **alert.payload()})

    def _live_updates(self) -> LiveUpdates | None:
        if self._live is None:
            return None
        try:
            return self._live()
        except Exception as error:
            logger.warning("live updates unavailable; alerts go to the event bus only", extra={"error": repr(error)})
            return None

    def _settle(self, stored: StoredAlerts, evaluation: Evaluation, observation: Observation) -> list[FiredAlert]:
        """Writes the changed states; returns the firings that were written. On a conflict the rules
        are read afresh and evaluated again (they may have been edited, or fired by another run)."""
        for attempt in range(1, self._save_attempts + 1):
            if not evaluation.changed:
                return []
            try:
                self._rules.save(stored, evaluation.rules)
            except VersionConflict:
                if attempt == self._save_attempts:
                    raise
                stored = self._rules.load_rules(stored.user_id)
                evaluation = evaluate(stored.user_id, stored.rules, observation)
                continue
            return list(evaluation.fired)
        return []

    def _asset_prices(
        self, assets: Iterable[str], quotes: dict[str, PriceQuote], deadline: float | None
    ) -> dict[str, Decimal]:
        tokens = {asset: token for asset in assets if (token := reference_token(asset)) is not None}
        missing = [token for token in tokens.values() if token.key not in quotes]
        if missing:
            try:
                quotes.update(self._prices.get_prices(missing, deadline=deadline))
            except Exception as error:
                _failed("asset prices for alerts not fetched", error, tokens=len(missing))
        return {asset: quotes[token.key].price for asset, token in tokens.items() if token.key in quotes}

    def _past_prices(
        self, stored: Mapping[str, StoredAlerts], ledgers: Mapping[str, Ledger], at: datetime
    ) -> dict[AlertWindow, dict[str, Decimal]]:
        past: dict[AlertWindow, dict[str, Decimal]] = {}
        for window in sorted({window for found in stored.values() for window in windows_of(found.rules)}):
            coins = {
                position.token.price_coin_id
                for user_id, found in stored.items()
                if window in windows_of(found.rules) and user_id in ledgers
                for position in ledgers[user_id].open_positions()
            }
            if not coins:
                continue
            try:
                past[window] = self._past.prices_at(coins, at - window.length, resolutions_for(window))
            except Exception as error:
                _failed("prices of the window's start not read", error, window=window.value)
        return past


def _value_changes(
    windows: Iterable[AlertWindow],
    past_prices: Mapping[AlertWindow, Mapping[str, Decimal]],
    ledger: Ledger | None,
    quotes: Mapping[str, PriceQuote],
) -> dict[AlertWindow, ValueChange]:
    changes: dict[AlertWindow, ValueChange] = {}
    if ledger is None:
        return changes
    for window in windows:
        then = past_prices.get(window)
        if then is None:
            continue
        change = holdings_change(
            (
                position.amount,
                quote.price if (quote := quotes.get(position.token.key)) is not None else None,
                then.get(position.token.price_coin_id),
            )
            for position in ledger.open_positions()
        )
        if change is not None:
            changes[window] = change
    return changes


def _failed(message: str, error: BaseException, **context: object) -> None:
    logger.warning(message, extra={**context, "error": repr(error)[:300]})
    metrics.add_metric(name="AlertEvaluationFailures", unit="Count", value=1)
