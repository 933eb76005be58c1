"""Delivering fired alerts within the invocation's time: the pushes of every alert are started at once and
waited for once (bounded by the push budget), however many users a crossing fires for and however slow
the management API; and nothing is started once the invocation is out of time."""

from __future__ import annotations

import json
import threading
import time

from portfolio.observability import metrics
from portfolio.services.alert_evaluation import AlertEvaluation
from portfolio.services.live_updates import LiveUpdatePublisher
from portfolio.services.portfolio_refresher import PortfolioRefresher
from portfolio.services.refresh_message import RefreshMessage

from tests.unit.live.test_live_updates import Registry
from tests.unit.refresh.test_alert_evaluation import (
    WINDOW,
    Bus,
    PastPrices,
    Portfolios,
    Prices,
    RuleStore,
    Sockets,
    Views,
    eth_above,
    holder,
)

BUDGET_S = 0.25
USERS = [f"user-{n}" for n in range(12)]


class StalledManagementApi:
    """A management API that takes every post and answers none until released (or 5 s pass)."""

    def __init__(self) -> None:
        self.posted: dict[str, list[dict]] = {}
        self.released = threading.Event()
        self._lock = threading.Lock()

    def post(self, connection_id, data):
        with self._lock:
            self.posted.setdefault(connection_id, []).append(json.loads(data))
        self.released.wait(5)


def test_given_a_crossing_firing_for_twelve_users_and_a_stalled_management_api_then_the_refresh_waits_one_budget():
    # Given twelve users with a rule on ETH above 4000 and one open connection each, and a
    # management API that answers nothing
    rules = RuleStore(**{user: [eth_above("4000")] for user in USERS})
    api = StalledManagementApi()
    live = LiveUpdatePublisher(Registry(**{user: [f"conn-{user}"] for user in USERS}), api, budget_s=BUDGET_S)
    bus = Bus()
    evaluation = AlertEvaluation(rules, Prices("4100"), PastPrices(), publisher=bus, live=lambda: live)
    refresher = PortfolioRefresher(
        Portfolios(**{user: holder(user) for user in USERS}), Prices("4100"), Views(), alerts=evaluation
    )
    batch = refresher.prefetch(USERS, deadline=time.monotonic() + 30)
    message = RefreshMessage(window=WINDOW, user_ids=USERS, tier="alerts", alert_user_ids=USERS)

    try:
        # When ETH at 4100 fires every rule, and the invocation then waits for its pushes
        started = time.monotonic()
        refreshed = refresher.refresh_message(message, batch)
        refreshed_in = time.monotonic() - started
        outcome = live.drain()
        finished_in = time.monotonic() - started
    finally:
        api.released.set()

    # Then the message succeeds without waiting for any push, and the one wait lasts one budget,
    # not one per alert (twelve budgets: 3 s)
    assert refreshed == len(USERS) and refresher.counts.alerts_fired == len(USERS)
    assert refreshed_in < BUDGET_S
    assert finished_in < 2 * BUDGET_S
    # And every user's connection was posted its own alert, the unanswered ones counted failed
    assert {connection: [post["userId"] for post in posts] for connection, posts in api.posted.items()} == {
        f"conn-{user}": [user] for user in USERS
    }
    assert all(posts[0]["type"] == "alert.triggered" for posts in api.posted.values())
    assert outcome.failed == len(USERS)
    # And the event bus was given the invocation's deadline
    assert len(bus.events) == len(USERS) and bus.deadlines == [batch.deadline]


def test_given_the_invocation_out_of_time_when_alerts_are_delivered_then_no_push_is_started_and_it_is_counted():
    metrics.clear_metrics()
    rules = RuleStore(alice=[eth_above("4000")], bob=[eth_above("4000")])
    sockets, bus = Sockets(), Bus()
    now = [100.0]
    evaluation = AlertEvaluation(
        rules, Prices("4100"), PastPrices(), publisher=bus, live=lambda: sockets, clock=lambda: now[0]
    )
    quotes: dict = {}
    alerts = evaluation.prepare(["alice", "bob"], WINDOW, {}, quotes, deadline=101.0)
    for user in ("alice", "bob"):
        evaluation.evaluate(alerts, user, None, quotes)

    # When the deadline has passed by the time the message's users are done
    now[0] = 101.5
    evaluation.deliver(alerts)

    # Then nothing is started that nothing would wait for; the bus decides by the same deadline
    assert sockets.sent == []
    assert sum(metrics.metric_set["LiveUpdateFailures"]["Value"]) == 2
    assert bus.deadlines == [101.0]
    metrics.clear_metrics()
