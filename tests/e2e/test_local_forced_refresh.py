"""`POST /_local/refresh?force=true`: which window a forced run gets, and how the flag is read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from local_stack.refresh import RefreshRunner
from local_stack.sqs_poller import QueueTurns
from local_stack.stack import force_flag

INTERVAL_S = 300


class _EmptyQueue:
    def drain(self) -> list[Any]:
        return []


class _Scheduler:
    """Answers as the scheduler function does: the event's window, started once per window."""

    def __init__(self, *, round_down: bool) -> None:
        self.round_down = round_down
        self.claimed: set[str] = set()
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], _context: Any) -> dict[str, Any]:
        self.events.append(event)
        moment = datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        if self.round_down:
            epoch = int(moment.timestamp())
            moment = datetime.fromtimestamp(epoch - epoch % INTERVAL_S, tz=UTC)
        window = moment.isoformat()
        started = window not in self.claimed
        self.claimed.add(window)
        return {"window": window, "started": started, "usersQueued": 2 if started else 0, "messages": int(started)}


def _runner(now: list[datetime]) -> tuple[RefreshRunner, _Scheduler, _Scheduler]:
    scheduled, forced = _Scheduler(round_down=True), _Scheduler(round_down=False)
    runner = RefreshRunner(
        scheduled,
        _EmptyQueue(),  # type: ignore[arg-type]
        QueueTurns(),
        context_factory=lambda: None,
        interval_s=INTERVAL_S,
        clock=lambda: now[0],
        window_handler=forced,
    )
    return runner, scheduled, forced


def test_a_forced_run_is_a_new_window_each_time_and_never_a_scheduled_one():
    # Given a window that already ran, at a moment that falls exactly on a window boundary
    now = [datetime(2025, 1, 15, 10, 0, 0, 250_000, tzinfo=UTC)]
    runner, scheduled, forced = _runner(now)
    assert runner.run_now().started is True
    again = runner.run_now()
    assert again.started is False
    assert "force=true" in (again.note or "")

    # When refreshes are forced twice within the same second
    first = runner.run_now(force=True)
    second = runner.run_now(force=True)

    # Then each ran, in a window of its own: the boundary second is left to the schedule
    assert (first.started, first.forced, second.started) == (True, True, True)
    assert first.window == "2025-01-15T10:00:01+00:00"
    assert second.window == "2025-01-15T10:00:02+00:00"
    assert [event["time"] for event in forced.events] == ["2025-01-15T10:00:01Z", "2025-01-15T10:00:02Z"]
    assert first.as_json()["forced"] is True
    # And the scheduler's own window is untouched by them
    assert scheduled.claimed == {"2025-01-15T10:00:00+00:00"}

    # When time moves on, a forced run takes the current second
    now[0] += timedelta(seconds=42)
    assert runner.run_now(force=True).window == "2025-01-15T10:00:42+00:00"


def test_a_runner_without_a_window_handler_refuses_to_force():
    runner = RefreshRunner(
        _Scheduler(round_down=True),
        _EmptyQueue(),  # type: ignore[arg-type]
        QueueTurns(),
        context_factory=lambda: None,
        interval_s=INTERVAL_S,
    )
    with pytest.raises(RuntimeError):
        runner.run_now(force=True)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", False),
        ("force=true", True),
        ("force=1", True),
        ("force=TRUE", True),
        ("force=false", False),
        ("force=0", False),
        ("force=", None),
        ("force=yes-please", None),
    ],
)
def test_the_force_flag_is_true_false_or_refused(query, expected):
    assert force_flag(query) is expected
