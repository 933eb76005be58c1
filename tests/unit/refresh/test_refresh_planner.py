"""The planner's arithmetic and message stream: how many messages and SendMessageBatch calls for N users."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from portfolio.adapters.activity_log import ActivityUnavailableError
from portfolio.adapters.refresh_queue import RefreshQueue
from portfolio.services.price_sweep import SweepOutcome
from portfolio.services.refresh_planner import RefreshPlanner, refresh_sizing, refresh_window

WINDOW = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)


class UsersInPages:
    """The user index: users spread over `shards` shards by their number."""

    def __init__(self, count: int, shards: int = 1) -> None:
        self.user_ids = [f"user-{index:07d}" for index in range(count)]
        self.shard_count = shards

    def iter_user_ids(self, page_size: int = 1000, *, shards=None) -> Iterator[list[str]]:
        for shard in range(self.shard_count) if shards is None else shards:
            users = [user for index, user in enumerate(self.user_ids) if index % self.shard_count == shard]
            for start in range(0, len(users), page_size):
                yield users[start : start + page_size]
            if len(users) % page_size == 0:
                yield []  # a reader learns it is done from a short or empty page


class RecentReaders:
    """The activity log: who read lately, or Redis down."""

    def __init__(self, user_ids: list[str], *, down: bool = False, asset_readers: list[str] | None = None) -> None:
        self.user_ids = user_ids
        self.down = down
        self.asset_readers = asset_readers or []
        self.asked_since: list[datetime] = []

    def touch(self, user_id: str, *, asset_list: bool = False) -> None:
        self.user_ids.append(user_id)
        if asset_list:
            self.asset_readers.append(user_id)

    def active_since(self, since: datetime) -> Iterator[list[str]]:
        self.asked_since.append(since)
        if self.down:
            raise ActivityUnavailableError("redis down")
        yield list(self.user_ids)

    def asset_readers_since(self, since: datetime) -> set[str]:
        if self.down:
            raise ActivityUnavailableError("redis down")
        return set(self.asset_readers)


class RecordingSweep:
    def __init__(self, calls: list[str], *, fails: bool = False) -> None:
        self.calls = calls
        self.fails = fails

    def run(self, window: datetime, *, deadline: float | None = None) -> SweepOutcome:
        self.calls.append("sweep")
        if self.fails:
            raise RuntimeError("coins API unreachable and last-known prices unreadable")
        return SweepOutcome(
            tokens=3, coins=3, fresh=3, stale=0, unpriced=0, api_calls=1, history_items=9, duration_ms=1.0
        )


class AcceptingSqs:
    """Takes every entry, as SQS does when nothing goes wrong, and remembers what it was sent."""

    def __init__(self, order: list[str] | None = None) -> None:
        self.calls: list[list[dict]] = []
        self.order = [] if order is None else order

    def bodies(self) -> list[dict]:
        return [json.loads(entry["MessageBody"]) for call in self.calls for entry in call]

    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
        self.calls.append(Entries)
        self.order.append("send")
        return {"Successful": [{"Id": entry["Id"], "MessageId": entry["Id"]} for entry in Entries], "Failed": []}


class FreeLock:
    def __init__(self) -> None:
        self.claimed: set[datetime] = set()

    def acquire(self, window: datetime, owner: str) -> bool:
        if window in self.claimed:
            return False
        self.claimed.add(window)
        return True

    def release(self, window: datetime, owner: str) -> None:
        self.claimed.discard(window)


def plan(
    users: int | UsersInPages, users_per_message: int = 10, page_size: int = 1000, **options
) -> tuple[AcceptingSqs, object]:
    """A run where, unless options say otherwise, every user is due its idle pass (every cycle)."""
    sqs = AcceptingSqs(options.pop("order", None))
    planner = RefreshPlanner(
        users if isinstance(users, UsersInPages) else UsersInPages(users),
        RefreshQueue(sqs, "queue-url", concurrency=1),
        FreeLock(),  # type: ignore[arg-type]
        users_per_message=users_per_message,
        page_size=page_size,
        **({"idle_every_cycles": 1} | options),
    )
    return sqs, planner.run(WINDOW, run_id="run-1")


@pytest.mark.parametrize(
    ("users", "users_per_message", "messages", "calls"),
    [
        (0, 10, 0, 0),
        (1, 10, 1, 1),
        (10, 10, 1, 1),
        (11, 10, 2, 1),
        (100, 10, 10, 1),
        (101, 10, 11, 2),
        (1_000_000, 10, 100_000, 10_000),
        (1_000_000, 100, 10_000, 1_000),
    ],
)
def test_given_n_users_when_sizing_a_run_then_messages_and_calls_are_the_ceilings(
    users, users_per_message, messages, calls
):
    sizing = refresh_sizing(users, users_per_message=users_per_message)

    assert (sizing.messages, sizing.send_calls) == (messages, calls)


def test_given_a_million_users_and_pages_of_1000_when_sizing_then_about_a_thousand_pages_are_read():
    assert refresh_sizing(1_000_000, users_per_message=10, page_size=1000, shards=16).user_pages == 1008


@pytest.mark.parametrize(("users", "page_size"), [(2345, 1000), (2000, 1000), (37, 7), (5, 1000)])
def test_given_users_in_pages_when_a_run_is_planned_then_every_user_is_queued_once_in_full_messages(users, page_size):
    sqs, result = plan(users, users_per_message=10, page_size=page_size)

    bodies = sqs.bodies()
    queued = [user for body in bodies for user in body["userIds"]]
    assert queued == UsersInPages(users).user_ids
    assert all(len(body["userIds"]) == 10 for body in bodies[:-1])
    assert {body["window"] for body in bodies} == {"2025-01-15T10:00:00Z"}
    sizing = refresh_sizing(users, users_per_message=10)
    assert (result.users_queued, result.messages, result.send_calls) == (users, sizing.messages, sizing.send_calls)
    assert len(sqs.calls) == sizing.send_calls
    assert all(len(call) <= 10 for call in sqs.calls)


def test_given_the_same_users_when_planned_twice_then_entry_ids_and_bodies_are_identical():
    first, _ = plan(57)
    second, _ = plan(57)

    assert first.calls == second.calls
    assert [entry["Id"] for entry in first.calls[0]] == [f"m{index}" for index in range(6)]


def test_given_a_window_already_planned_when_planned_again_then_nothing_is_sent():
    sqs = AcceptingSqs()
    planner = RefreshPlanner(
        UsersInPages(30),
        RefreshQueue(sqs, "queue-url", concurrency=1),
        FreeLock(),  # type: ignore[arg-type]
        users_per_message=10,
        idle_every_cycles=1,
    )

    first = planner.run(WINDOW, run_id="event-1")
    second = planner.run(WINDOW, run_id="event-1-redelivered")

    assert (first.started, first.messages) == (True, 3)
    assert (second.started, second.messages) == (False, 0)
    assert len(sqs.calls) == 1


@pytest.mark.parametrize(
    ("moment", "window"),
    [
        (datetime(2025, 1, 15, 10, 0, tzinfo=UTC), datetime(2025, 1, 15, 10, 0, tzinfo=UTC)),
        (datetime(2025, 1, 15, 10, 4, 59, 999000, tzinfo=UTC), datetime(2025, 1, 15, 10, 0, tzinfo=UTC)),
        (datetime(2025, 1, 15, 10, 5, tzinfo=UTC), datetime(2025, 1, 15, 10, 5, tzinfo=UTC)),
    ],
)
def test_given_an_event_time_when_flooring_to_the_interval_then_the_window_start_is_found(moment, window):
    assert refresh_window(moment, 300) == window


def test_given_recent_readers_when_planned_then_they_are_queued_first_as_active_and_not_again_as_idle():
    # Given 25 users, of whom 3 read within the active period
    readers = RecentReaders(["user-0000004", "user-0000011", "user-0000020"])

    # When the run is planned
    sqs, result = plan(25, activity=readers, active_for=timedelta(hours=6))

    # Then the readers come first, in an active message, and the 22 others once, in idle ones
    bodies = sqs.bodies()
    assert bodies[0] == {"window": "2025-01-15T10:00:00Z", "userIds": readers.user_ids, "tier": "active"}
    idle = [user for body in bodies[1:] for user in body["userIds"]]
    assert {body["tier"] for body in bodies[1:]} == {"idle"}
    assert sorted(idle) == sorted(set(UsersInPages(25).user_ids) - set(readers.user_ids))
    assert readers.asked_since == [WINDOW - timedelta(hours=6)]
    assert (result.active_users, result.users_queued) == (3, 25)


def test_given_idle_users_every_fourth_cycle_when_four_windows_are_planned_then_each_user_comes_once():
    users = UsersInPages(40, shards=8)
    queued: list[str] = []

    for cycle in range(4):
        sqs = AcceptingSqs()
        planner = RefreshPlanner(
            users,
            RefreshQueue(sqs, "queue-url", concurrency=1),
            FreeLock(),  # type: ignore[arg-type]
            users_per_message=10,
            idle_every_cycles=4,
        )
        planner.run(WINDOW + timedelta(minutes=5 * cycle), run_id=f"run-{cycle}")
        this_cycle = [user for body in sqs.bodies() for user in body["userIds"]]
        assert len(this_cycle) == 10  # two of the eight shards a cycle
        queued += this_cycle

    assert sorted(queued) == users.user_ids


def test_given_idle_refresh_off_and_nobody_reading_when_planned_then_nothing_is_queued():
    sqs, result = plan(30, idle_every_cycles=0, activity=RecentReaders([]))

    assert (result.users_queued, sqs.calls) == (0, [])


def test_given_redis_down_when_planned_then_no_one_is_active_but_idle_users_are_still_queued():
    sqs, result = plan(12, activity=RecentReaders(["user-0000001"], down=True))

    assert {body["tier"] for body in sqs.bodies()} == {"idle"}
    assert (result.active_users, result.users_queued) == (0, 12)


def test_given_a_sweep_when_planned_then_prices_are_swept_before_any_user_is_queued():
    order: list[str] = []

    _, result = plan(15, sweep=RecordingSweep(order), order=order)

    assert order == ["sweep", "send"]
    assert result.sweep.api_calls == 1


def test_given_the_sweep_fails_when_planned_then_users_are_queued_all_the_same():
    order: list[str] = []

    _, result = plan(15, sweep=RecordingSweep(order, fails=True), order=order)

    assert order == ["sweep", "send"]
    assert (result.sweep, result.users_queued) == (None, 15)


def test_given_readers_of_their_asset_list_when_planned_then_their_active_messages_name_them():
    # Given 3 recent readers, 2 of whom read their asset list, and 6 idle users
    readers = RecentReaders(
        ["user-0000001", "user-0000004", "user-0000005"], asset_readers=["user-0000004", "user-0000005"]
    )

    sqs, _ = plan(9, activity=readers, users_per_message=2)

    # Then each active message names its asset list readers, and no idle message names anyone
    active = [body for body in sqs.bodies() if body["tier"] == "active"]
    assert [(body["userIds"], body.get("assetUserIds")) for body in active] == [
        (["user-0000001", "user-0000004"], ["user-0000004"]),
        (["user-0000005"], ["user-0000005"]),
    ]
    assert not any("assetUserIds" in body for body in sqs.bodies() if body["tier"] != "active")
