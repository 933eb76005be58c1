"""Live updates with stand-in ports: who is sent what, what is forgotten, what is skipped, and that a
failing or slow push never reaches the caller."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from portfolio.domain.portfolio_record import CostBasisMethod
from portfolio.domain.views import Breakdown, PortfolioSummary
from portfolio.services.live_updates import PORTFOLIO_UPDATED, LiveUpdatePublisher
from portfolio.services.ports import ConnectionGoneError, PushClaim, PushedFigures, PushOutcome

PRICES_AS_OF = datetime(2025, 1, 15, 10, 5, tzinfo=UTC)


class Registry:
    def __init__(self, **connections: list[str]) -> None:
        self.connections = {user: list(ids) for user, ids in connections.items()}
        self.lookups: list[str] = []
        self.failing = False

    def connections_of(self, user_id):
        self.lookups.append(user_id)
        if self.failing:
            raise ConnectionError("store unreachable")
        return list(self.connections.get(user_id, []))

    def remove(self, user_id, connection_id):
        self.connections[user_id].remove(connection_id)

    def add(self, user_id, connection_id):
        self.connections.setdefault(user_id, []).append(connection_id)

    def keep_alive(self, user_id, connection_id):
        pass


class Pushed:
    """The store's rules, in memory: the latest version announced, the figures delivered and their version."""

    def __init__(self) -> None:
        self.announced: dict[str, int] = {}
        self.delivered: dict[str, tuple[int, PushedFigures]] = {}

    def claim(self, user_id, version):
        if version < self.announced.get(user_id, version):
            return PushClaim(current=False)
        self.announced[user_id] = version
        kept = self.delivered.get(user_id)
        return PushClaim(current=True, delivered=None if kept is None else kept[1])

    def remember(self, user_id, version, figures):
        kept = self.delivered.get(user_id)
        if kept is None or kept[0] <= version:
            self.delivered[user_id] = (version, figures)

    def forget(self, user_id):
        self.delivered.pop(user_id, None)


class Pusher:
    def __init__(self, *, gone=(), failing=(), stall_s: float = 0.0) -> None:
        self.sent: dict[str, list[dict]] = {}
        self.gone = set(gone)
        self.failing = set(failing)
        self.stall_s = stall_s
        self._lock = threading.Lock()

    def post(self, connection_id, data):
        if self.stall_s:
            time.sleep(self.stall_s)
        if connection_id in self.gone:
            raise ConnectionGoneError(connection_id)
        if connection_id in self.failing:
            raise RuntimeError("500 from the management API")
        with self._lock:
            self.sent.setdefault(connection_id, []).append(json.loads(data))


def summary(user_id: str, value: str, pnl: str = "100", stale: int = 0) -> PortfolioSummary:
    empty = Breakdown(by_chain=[], by_category=[], by_asset=[])
    return PortfolioSummary(
        user_id=user_id,
        total_value_usd=Decimal(value),
        cost_basis_usd=Decimal(value) - Decimal(pnl),
        realized_pnl_usd=Decimal(0),
        unrealized_pnl_usd=Decimal(pnl),
        total_pnl_usd=Decimal(pnl),
        invested_usd=Decimal(value) - Decimal(pnl),
        roi_percent=None,
        unknown_cost_basis_value_usd=Decimal(0),
        breakdown=empty,
        prices_as_of=PRICES_AS_OF,
        stale_price_count=stale,
        unpriced_count=0,
        holding_count=1,
        cost_basis_method=CostBasisMethod.FIFO,
        updated_at=None,
    )


def publisher(
    registry: Registry, pusher: Pusher, budget_s: float = 1.0, pushed: Pushed | None = None
) -> LiveUpdatePublisher:
    return LiveUpdatePublisher(registry, pusher, budget_s=budget_s, max_concurrency=8, pushed=pushed or Pushed())


def test_given_a_user_with_two_connections_when_their_portfolio_changes_then_each_gets_one_update():
    registry, pusher = Registry(alice=["a1", "a2"]), Pusher()
    live = publisher(registry, pusher)

    live.portfolio_updated("alice", summary("alice", "5025.63", "525.63"), version=1)
    outcome = live.drain()

    assert outcome == PushOutcome(delivered=2)
    expected = {
        "type": PORTFOLIO_UPDATED,
        "userId": "alice",
        "totalValueUsd": "5025.63",
        "totalPnlUsd": "525.63",
        "changeUsd": None,
        "pricesAsOf": "2025-01-15T10:05:00Z",
        "stalePriceCount": 0,
    }
    assert pusher.sent == {"a1": [expected], "a2": [expected]}


def test_given_an_earlier_update_when_the_value_moves_then_change_usd_is_the_difference():
    registry, pusher = Registry(alice=["a1"]), Pusher()
    live = publisher(registry, pusher)
    live.portfolio_updated("alice", summary("alice", "1000.50"), version=1)
    live.drain()

    live.portfolio_updated("alice", summary("alice", "990.25"), version=1)
    live.drain()

    assert [message["changeUsd"] for message in pusher.sent["a1"]] == [None, "-10.25"]


def test_given_figures_equal_to_the_last_update_when_a_refresh_values_them_again_then_nothing_is_sent():
    registry, pusher = Registry(alice=["a1"]), Pusher()
    live = publisher(registry, pusher)
    live.portfolio_updated("alice", summary("alice", "1000"), version=1)
    live.drain()

    live.portfolio_updated("alice", summary("alice", "1000"), version=1)

    assert live.drain() == PushOutcome()
    assert len(pusher.sent["a1"]) == 1


def test_given_a_user_without_connections_then_nothing_is_sent_and_no_figures_are_kept():
    registry, pusher, pushed = Registry(alice=["a1"]), Pusher(), Pushed()
    live = publisher(registry, pusher, pushed=pushed)

    live.portfolio_updated("bob", summary("bob", "1000"), version=1)

    assert live.drain() == PushOutcome()
    assert pusher.sent == {}
    assert pushed.announced == pushed.delivered == {}


def test_given_two_users_when_one_changes_then_the_other_never_receives_it():
    registry, pusher = Registry(alice=["a1"], bob=["b1"]), Pusher()
    live = publisher(registry, pusher)

    live.send("alice", {"type": "alert.triggered", "userId": "alice"})

    assert list(pusher.sent) == ["a1"]


def test_given_a_gone_connection_when_sent_to_then_it_is_forgotten_and_the_others_still_get_it():
    registry, pusher = Registry(alice=["a1", "gone"]), Pusher(gone={"gone"})
    live = publisher(registry, pusher)

    outcome = live.send("alice", {"type": "alert.triggered"})

    assert outcome == PushOutcome(delivered=1, gone=1)
    assert registry.connections["alice"] == ["a1"]


def test_given_a_failing_connection_when_sent_to_then_it_is_counted_and_kept():
    registry, pusher = Registry(alice=["a1", "broken"]), Pusher(failing={"broken"})
    live = publisher(registry, pusher)

    outcome = live.send("alice", {"type": "alert.triggered"})

    assert outcome == PushOutcome(delivered=1, failed=1)
    assert registry.connections["alice"] == ["a1", "broken"]


def test_given_an_unreachable_registry_when_a_portfolio_changes_then_the_caller_never_sees_an_error():
    registry = Registry(alice=["a1"])
    registry.failing = True
    live = publisher(registry, Pusher())

    live.portfolio_updated("alice", summary("alice", "1000"), version=1)

    assert live.send("alice", {"type": "x"}) == PushOutcome()


def test_given_a_stalling_management_api_when_sending_then_the_wait_ends_at_the_budget():
    registry, pusher = Registry(alice=["a1", "a2"]), Pusher(stall_s=2.0)
    live = publisher(registry, pusher, budget_s=0.2)

    started = time.monotonic()
    outcome = live.send("alice", {"type": "x"})

    assert time.monotonic() - started < 1.0
    assert outcome == PushOutcome(failed=2)


@pytest.mark.parametrize("timeout_s", [0.0, 0.1])
def test_given_little_time_left_when_draining_then_it_waits_no_longer_than_told(timeout_s):
    registry, pusher = Registry(alice=["a1"]), Pusher(stall_s=1.0)
    live = publisher(registry, pusher, budget_s=5.0)
    live.portfolio_updated("alice", summary("alice", "1"), version=1)

    started = time.monotonic()
    outcome = live.drain(timeout_s)

    assert time.monotonic() - started < 0.6
    assert outcome.failed == 1


def test_given_many_connections_then_they_are_posted_to_concurrently():
    registry, pusher = Registry(alice=[f"a{index}" for index in range(8)]), Pusher(stall_s=0.2)
    live = publisher(registry, pusher, budget_s=5.0)

    started = time.monotonic()
    outcome = live.send("alice", {"type": "x"})

    assert outcome.delivered == 8
    assert time.monotonic() - started < 0.2 * 4  # 8 posts of 0.2 s on 8 threads, not one after another


def test_given_an_update_of_a_later_version_sent_when_an_older_one_finishes_then_it_is_not_sent():
    registry, pusher = Registry(alice=["a1"]), Pusher()
    live = publisher(registry, pusher)
    live.portfolio_updated("alice", summary("alice", "1500"), version=6)  # a write
    live.drain()

    live.portfolio_updated("alice", summary("alice", "1000"), version=5)  # a refresh that read before it
    live.drain()
    live.portfolio_updated("alice", summary("alice", "1510"), version=6)  # the next refresh
    live.drain()

    assert [(message["totalValueUsd"], message["changeUsd"]) for message in pusher.sent["a1"]] == [
        ("1500", None),
        ("1510", "10"),
    ]


def test_given_two_updates_of_the_same_version_then_both_are_sent_in_turn():
    registry, pusher = Registry(alice=["a1"]), Pusher()
    live = publisher(registry, pusher)

    live.portfolio_updated("alice", summary("alice", "1000"), version=3)
    live.drain()
    live.portfolio_updated("alice", summary("alice", "1020"), version=3)  # prices moved, nothing written
    live.drain()

    assert [message["changeUsd"] for message in pusher.sent["a1"]] == [None, "20"]


def test_given_every_post_failing_then_the_figures_are_not_what_the_next_change_is_measured_from():
    registry, pusher = Registry(alice=["a1", "a2"]), Pusher(failing={"a1", "a2"})
    live = publisher(registry, pusher)
    live.portfolio_updated("alice", summary("alice", "1000"), version=1)
    assert live.drain() == PushOutcome(failed=2)

    pusher.failing.clear()
    live.portfolio_updated("alice", summary("alice", "1000"), version=1)  # the same figures, never received
    live.drain()

    assert [message["changeUsd"] for message in pusher.sent["a1"]] == [None]
    assert [message["changeUsd"] for message in pusher.sent["a2"]] == [None]


def test_given_one_post_of_two_delivered_then_the_figures_count_as_delivered():
    registry, pusher = Registry(alice=["a1", "broken"]), Pusher(failing={"broken"})
    live = publisher(registry, pusher)
    live.portfolio_updated("alice", summary("alice", "1000"), version=1)
    live.drain()

    live.portfolio_updated("alice", summary("alice", "1000"), version=1)
    live.portfolio_updated("alice", summary("alice", "1004.5"), version=1)
    live.drain()

    assert [message["changeUsd"] for message in pusher.sent["a1"]] == [None, "4.5"]


def test_given_the_delivered_figures_forgotten_then_the_next_update_is_sent_with_no_change():
    registry, pusher, pushed = Registry(alice=["a1"]), Pusher(), Pushed()
    live = publisher(registry, pusher, pushed=pushed)
    live.portfolio_updated("alice", summary("alice", "1000"), version=2)
    live.drain()

    pushed.forget("alice")  # a new connection
    live.portfolio_updated("alice", summary("alice", "1000"), version=2)
    live.drain()
    live.portfolio_updated("alice", summary("alice", "900"), version=1)
    live.drain()

    assert [message["changeUsd"] for message in pusher.sent["a1"]] == [None, None]


def test_given_a_store_that_cannot_tell_then_the_update_is_sent_without_a_change():
    class Unknowing(Pushed):
        def claim(self, user_id, version):
            return PushClaim(current=True)

    registry, pusher = Registry(alice=["a1"]), Pusher()
    live = publisher(registry, pusher, pushed=Unknowing())

    live.portfolio_updated("alice", summary("alice", "1000"), version=1)
    live.portfolio_updated("alice", summary("alice", "1000"), version=1)
    live.drain()

    assert [message["changeUsd"] for message in pusher.sent["a1"]] == [None, None]
