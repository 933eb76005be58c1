"""Creating, listing and deleting a user's alert rules: the use cases behind /alerts.

Every change re-reads the rules (strongly consistent) and writes them back under the version read, so
a refresh recording a firing at the same moment is never overwritten, nor overwrites the change; a
conflict is retried a few times with the rules read afresh.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from portfolio.domain.alerts import (
    DEFAULT_MAX_RULES_PER_USER,
    AlertCondition,
    AlertNotFound,
    AlertRule,
    alert_id_for,
    resolved,
)
from portfolio.domain.errors import PortfolioLimitError, VersionConflict
from portfolio.services.ports import AlertRuleStore, StoredAlerts

DEFAULT_ATTEMPTS = 4


@dataclass(frozen=True, slots=True)
class CreateOutcome:
    rule: AlertRule
    created: bool  # False: the same condition was already set, and that rule is answered


class AlertRules:
    def __init__(
        self,
        store: AlertRuleStore,
        *,
        max_rules: int = DEFAULT_MAX_RULES_PER_USER,
        attempts: int = DEFAULT_ATTEMPTS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._max_rules = max_rules
        self._attempts = attempts
        self._clock = clock

    def rules(self, user_id: str) -> tuple[AlertRule, ...]:
        return self._store.load_rules(user_id).rules

    def create(self, user_id: str, condition: AlertCondition) -> CreateOutcome:
        """A new armed rule, its id derived from its condition: the same condition sent again (a retried
        request) answers the rule already set. Raises UnknownAssetError for an asset the registry does
        not know and PortfolioLimitError past the per-user limit."""
        condition = resolved(condition)
        alert_id = alert_id_for(condition)

        def change(stored: StoredAlerts) -> tuple[tuple[AlertRule, ...], CreateOutcome]:
            existing = next((rule for rule in stored.rules if rule.alert_id == alert_id), None)
            if existing is not None:
                return stored.rules, CreateOutcome(existing, created=False)
            if len(stored.rules) >= self._max_rules:
                raise PortfolioLimitError(
                    f"a portfolio has at most {self._max_rules} alert rules; delete one first", field="kind"
                )
            rule = AlertRule(alert_id=alert_id, created_at=self._clock(), condition=condition)
            return (*stored.rules, rule), CreateOutcome(rule, created=True)

        return self._apply(user_id, change)

    def delete(self, user_id: str, alert_id: str) -> None:
        """Raises AlertNotFound."""

        def change(stored: StoredAlerts) -> tuple[tuple[AlertRule, ...], None]:
            kept = tuple(rule for rule in stored.rules if rule.alert_id != alert_id)
            if len(kept) == len(stored.rules):
                raise AlertNotFound(alert_id)
            return kept, None

        self._apply(user_id, change)

    def _apply[T](self, user_id: str, change: Callable[[StoredAlerts], tuple[tuple[AlertRule, ...], T]]) -> T:
        for attempt in range(1, self._attempts + 1):
            stored = self._store.load_rules(user_id)
            rules, outcome = change(stored)
            if rules == stored.rules:
                return outcome
            try:
                self._store.save(stored, rules)
            except VersionConflict:
                if attempt == self._attempts:
                    raise
                continue
            return outcome
        raise AssertionError("unreachable: the last attempt returns or raises")
