"""Alert rules evaluated by the refresher, with stand-in ports: a rule fires once when crossed, its
state is written only when it fires or re-arms, and delivery failures never fail a refresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from portfolio.domain.accounting import replay
from portfolio.domain.alerts import AlertRule, AlertStatus, PriceCondition, ValueChangeCondition
from portfolio.domain.errors import VersionConflict
from portfolio.domain.portfolio_record import PortfolioRecord
from portfolio.domain.prices import PriceQuote, PriceSource
from portfolio.domain.stored_portfolio import StoredPortfolio
from portfolio.domain.views import Resolution
from portfolio.observability import metrics
from portfolio.services.alert_evaluation import AlertEvaluation, resolutions_for
from portfolio.services.portfolio_refresher import PortfolioRefresher
from portfolio.services.ports import StoredAlerts
from portfolio.services.refresh_message import RefreshMessage

from tests.unit.domain.builders import EVM_NATIVE, tx

WINDOW = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)
ETH = f"ethereum:{EVM_NATIVE}"
ETH_COIN = "coingecko:ethereum"


class Portfolios:
    def __init__(self, **users: StoredPortfolio) -> None:
        self.users = users

    def load_portfolios(self, user_ids):
        return {user: self.users[user] for user in user_ids if user in self.users}

    def load_history(self, user_id, *, consistent_read=False):
        raise AssertionError("not read")


class Prices:
    def __init__(self, price: str) -> None:
        self.price = Decimal(price)
        self.asked: list[list[str]] = []

    def get_prices(self, tokens, *, deadline=None):
        keys = [str(token) for token in tokens]
        self.asked.append(keys)
        return {
            key: PriceQuote(token=key, price=self.price, timestamp=WINDOW, source=PriceSource.REDIS) for key in keys
        }


class Views:
    def __init__(self) -> None:
        self.warmed: list[str] = []

    def replace_views_of_many(self, replacements, kinds=()):
        self.warmed += [replacement.user_id for replacement in replacements]
        return [True] * len(replacements)


class RuleStore:
    """Rules in memory, with the store's version check; `race` makes the next save meet a conflict."""

    def __init__(self, **rules: list[AlertRule]) -> None:
        self.stored = {user: StoredAlerts(user, tuple(found), 1) for user, found in rules.items()}
        self.saves: list[str] = []
        self.fail_loads = False
        self.race: list[AlertRule] | None = None

    def load_rules(self, user_id):
        return self.stored.get(user_id, StoredAlerts(user_id))

    def load_many(self, user_ids):
        if self.fail_loads:
            raise ConnectionError("DynamoDB unreachable")
        return {user: self.stored[user] for user in user_ids if user in self.stored}

    def save(self, stored, rules):
        if self.race is not None:
            current = self.stored[stored.user_id]
            self.stored[stored.user_id] = StoredAlerts(stored.user_id, tuple(self.race), current.version + 1)
            self.race = None
        current = self.stored.get(stored.user_id, StoredAlerts(stored.user_id))
        if current.version != stored.version:
            raise VersionConflict(stored.user_id, stored.version)
        self.saves.append(stored.user_id)
        self.stored[stored.user_id] = StoredAlerts(stored.user_id, tuple(rules), stored.version + 1)
        return self.stored[stored.user_id]

    def status(self, user_id: str) -> list[AlertStatus]:
        return [rule.state.status for rule in self.stored[user_id].rules]


class PastPrices:
    def __init__(self, prices: dict[str, str] | None = None) -> None:
        self.prices = {coin: Decimal(price) for coin, price in (prices or {}).items()}
        self.asked: list[tuple[set[str], datetime, tuple[Resolution, ...]]] = []

    def prices_at(self, coin_ids, at, resolutions):
        self.asked.append((set(coin_ids), at, tuple(resolutions)))
        return {coin: price for coin, price in self.prices.items() if coin in set(coin_ids)}


class Bus:
    def __init__(self, failing: bool = False) -> None:
        self.events: list = []
        self.deadlines: list[float | None] = []
        self.failing = failing

    def publish(self, alerts, *, deadline=None):
        self.deadlines.append(deadline)
        if self.failing:
            return len(alerts)
        self.events.extend(alerts)
        return 0


class Sockets:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []

    def publish(self, user_id, message):
        self.sent.append((user_id, dict(message)))


def holder(user_id: str, eth: str = "2") -> StoredPortfolio:
    return StoredPortfolio(
        record=PortfolioRecord(user_id=user_id, version=1), ledger=replay([tx("buy", eth, price="1000")])
    )


def eth_above(price: str, alert_id: str = "a1") -> AlertRule:
    return AlertRule(
        alert_id=alert_id, created_at=WINDOW, condition=PriceCondition(kind="price", asset="ETH", above=price)
    )


def value_moves(threshold: str, window: str = "24h", alert_id: str = "v1") -> AlertRule:
    condition = ValueChangeCondition(kind="value_change", threshold_percent=threshold, window=window)
    return AlertRule(alert_id=alert_id, created_at=WINDOW, condition=condition)


class Pipeline:
    def __init__(self, rules: RuleStore, *, past: PastPrices | None = None, bus: Bus | None = None, **users):
        self.rules, self.past, self.bus, self.sockets = rules, past or PastPrices(), bus or Bus(), Sockets()
        self.views = Views()
        self.users = Portfolios(**users)
        self.prices = Prices("0")  # what the price service answers for an asset nobody of the batch holds
        self.evaluation = AlertEvaluation(rules, self.prices, self.past, publisher=self.bus, live=lambda: self.sockets)

    def cycle(self, eth_price: str, *user_ids: str, tier: str = "active", step: int = 0, alerting=None) -> int:
        self.prices.price = Decimal(eth_price)
        refresher = PortfolioRefresher(self.users, Prices(eth_price), self.views, alerts=self.evaluation)
        batch = refresher.prefetch(list(user_ids))
        message = RefreshMessage(
            window=WINDOW + timedelta(minutes=5 * step),
            user_ids=list(user_ids),
            tier=tier,
            alert_user_ids=list(user_ids if alerting is None else alerting),
        )
        refresher.refresh_message(message, batch)
        return refresher.counts.alerts_fired


def test_given_a_price_rule_when_refreshes_cross_stay_fall_and_cross_again_then_it_fires_twice_and_writes_four_times():
    rules = RuleStore(alice=[eth_above("4000")])
    pipeline = Pipeline(rules, alice=holder("alice"))

    fired = [
        pipeline.cycle(price, "alice", step=step) for step, price in enumerate(["3900", "4100", "4200", "3800", "4050"])
    ]

    assert fired == [0, 1, 0, 0, 1]
    # A state is written only when it fires or re-arms: at 4100, 3800 and 4050
    assert rules.saves == ["alice"] * 3
    assert [alert.observed for alert in pipeline.bus.events] == [Decimal("4100"), Decimal("4050")]
    user, pushed = pipeline.sockets.sent[0]
    assert user == "alice"
    assert pushed["type"] == "alert.triggered"
    assert (pushed["alertId"], pushed["userId"], pushed["observed"]) == ("a1", "alice", "4100")
    assert pushed["eventId"] == f"a1:{(WINDOW + timedelta(minutes=5)).isoformat()}"


def test_given_users_queued_for_their_rules_alone_then_they_are_evaluated_but_never_warmed():
    rules = RuleStore(alice=[eth_above("4000")])
    pipeline = Pipeline(rules, alice=holder("alice"), bob=holder("bob"))

    pipeline.cycle("4100", "alice", "bob", tier="alerts", alerting=["alice"])

    assert pipeline.views.warmed == []
    assert [alert.user_id for alert in pipeline.bus.events] == ["alice"]


def test_given_an_active_user_without_rules_then_its_rules_are_not_read():
    rules = RuleStore(alice=[eth_above("4000")])
    pipeline = Pipeline(rules, alice=holder("alice"), bob=holder("bob"))

    pipeline.cycle("4100", "alice", "bob", alerting=[])

    assert pipeline.views.warmed == ["alice", "bob"]
    assert rules.saves == [] and pipeline.bus.events == []


def test_given_a_value_change_rule_then_the_holdings_are_valued_at_the_prices_of_the_windows_start():
    # 2 ETH worth 2 x 1000 a day ago and 2 x 1060 now: +6 %
    rules = RuleStore(alice=[value_moves("5")])
    past = PastPrices({ETH_COIN: "1000"})
    pipeline = Pipeline(rules, past=past, alice=holder("alice"))

    assert pipeline.cycle("1060", "alice") == 1

    (alert,) = pipeline.bus.events
    assert (alert.observed, alert.start_value_usd, alert.end_value_usd) == (Decimal("6.00"), 2000, 2120)
    assert past.asked == [({ETH_COIN}, WINDOW - timedelta(hours=24), (Resolution.FIVE_MINUTES, Resolution.HOURLY))]


def test_given_no_price_recorded_at_the_windows_start_then_the_rule_waits_and_nothing_is_written():
    rules = RuleStore(alice=[value_moves("5")])
    pipeline = Pipeline(rules, alice=holder("alice"))

    assert pipeline.cycle("5000", "alice") == 0
    assert rules.saves == []


def counted(metric: str) -> float:
    return sum(metrics.metric_set.get(metric, {}).get("Value", []))


def test_given_the_event_bus_fails_then_the_refresh_completes_counts_it_and_the_firing_is_not_repeated():
    metrics.clear_metrics()
    rules = RuleStore(alice=[eth_above("4000")])
    pipeline = Pipeline(rules, bus=Bus(failing=True), alice=holder("alice"))

    assert pipeline.cycle("4100", "alice") == 1
    assert pipeline.cycle("4200", "alice", step=1) == 0

    assert (counted("AlertsFired"), counted("AlertDeliveryFailures")) == (1, 1)
    metrics.clear_metrics()
    assert pipeline.views.warmed == ["alice", "alice"]
    assert rules.status("alice") == [AlertStatus.FIRED]
    assert len(pipeline.sockets.sent) == 1  # the WebSocket still got it


def test_given_the_rules_cannot_be_read_then_users_are_still_warmed_and_the_failure_is_counted():
    metrics.clear_metrics()
    rules = RuleStore(alice=[eth_above("4000")])
    rules.fail_loads = True
    pipeline = Pipeline(rules, alice=holder("alice"))

    assert pipeline.cycle("4100", "alice") == 0
    assert pipeline.views.warmed == ["alice"]
    assert counted("AlertEvaluationFailures") == 1
    metrics.clear_metrics()


def test_given_the_rules_change_while_evaluated_then_the_firing_is_written_on_the_rules_read_afresh():
    rules = RuleStore(alice=[eth_above("4000")])
    # Meanwhile the user adds a rule: the first save meets a conflict, the second carries both rules
    rules.race = [eth_above("4000"), eth_above("5000", alert_id="a2")]
    pipeline = Pipeline(rules, alice=holder("alice"))

    assert pipeline.cycle("4100", "alice") == 1

    assert [rule.alert_id for rule in rules.stored["alice"].rules] == ["a1", "a2"]
    assert rules.status("alice") == [AlertStatus.FIRED, AlertStatus.ARMED]


def test_given_a_rule_on_an_asset_nobody_holds_then_its_price_is_asked_for_once():
    rules = RuleStore(
        alice=[
            AlertRule(
                alert_id="s1", created_at=WINDOW, condition=PriceCondition(kind="price", asset="SOL", below="100")
            )
        ]
    )
    prices = Prices("90")
    evaluation = AlertEvaluation(rules, prices, PastPrices(), publisher=Bus())
    quotes: dict = {}

    round_ = evaluation.prepare(["alice"], WINDOW, {}, quotes)

    assert prices.asked == [["solana:So11111111111111111111111111111111111111112"]]
    assert round_.asset_prices == {"sol": Decimal("90")}


@pytest.mark.parametrize(
    ("window", "resolutions"),
    [
        ("1h", (Resolution.FIVE_MINUTES, Resolution.HOURLY)),
        ("24h", (Resolution.FIVE_MINUTES, Resolution.HOURLY)),
        ("7d", (Resolution.HOURLY, Resolution.DAILY)),
    ],
)
def test_given_a_window_then_the_finest_history_still_kept_that_far_back_is_read(window, resolutions):
    from portfolio.domain.alerts import AlertWindow

    assert resolutions_for(AlertWindow(window)) == resolutions


def test_given_a_user_with_rules_but_no_portfolio_then_its_price_rule_still_fires():
    rules = RuleStore(newcomer=[eth_above("4000"), value_moves("5")])
    pipeline = Pipeline(rules)

    assert pipeline.cycle("4100", "newcomer", tier="alerts") == 1
    assert rules.status("newcomer") == [AlertStatus.FIRED, AlertStatus.ARMED]
