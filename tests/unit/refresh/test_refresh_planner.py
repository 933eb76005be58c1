"""The planner's arithmetic and message stream: how many messages and SendMessageBatch calls for N users."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from portfolio.adapters.refresh_queue import RefreshQueue
from portfolio.services.refresh_planner import RefreshPlanner, refresh_sizing, refresh_window

WINDOW = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)


class UsersInPages:
    def __init__(self, count: int) -> None:
        self.user_ids = [f"user-{index:07d}" for index in range(count)]

    def iter_user_ids(self, page_size: int = 1000) -> Iterator[list[str]]:
        for start in range(0, len(self.user_ids), page_size):
            yield self.user_ids[start : start + page_size]
        if len(self.user_ids) % page_size == 0:
            yield []  # a reader learns it is done from a short or empty page


class AcceptingSqs:
    """Takes every entry, as SQS does when nothing goes wrong, and remembers what it was sent."""

    def __init__(self) -> None:
        self.calls: list[list[dict]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
        self.calls.append(Entries)
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


def plan(users: int, users_per_message: int = 10, page_size: int = 1000) -> tuple[AcceptingSqs, object]:
    sqs = AcceptingSqs()
    planner = RefreshPlanner(
        UsersInPages(users),
        RefreshQueue(sqs, "queue-url", concurrency=1),
        FreeLock(),  # type: ignore[arg-type]
        users_per_message=users_per_message,
        page_size=page_size,
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

    bodies = [json.loads(entry["MessageBody"]) for call in sqs.calls for entry in call]
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
        UsersInPages(30), RefreshQueue(sqs, "queue-url", concurrency=1), FreeLock(), users_per_message=10  # type: ignore[arg-type]
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
