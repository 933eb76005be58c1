"""One refresh run on demand: the scheduler function with a scheduled event of now, then the queue drained.

The scheduler claims one run per window (REFRESH_INTERVAL_SECONDS), exactly as in AWS, so a second
refresh inside a window that already ran queues nothing; the report says so and when the next
window opens. The price updater still runs for whatever is waiting in the queue.

A forced run (`POST /_local/refresh?force=true`) does not wait for the next window: it is a window
of its own that starts now, to the second. The scheduler's own handler always rounds its event's
time down to a window boundary, so a forced run goes through `window_run_handler` instead: the same
planner (RunLock, sweep, queue), for the window its event names. A forced window is never a
boundary of the schedule and never one used before, so it takes no scheduled run's place, and its
refresh messages (window, tier, users) are new to the price updater's duplicate check.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from local_stack.scheduler import scheduled_event
from local_stack.sqs_poller import QueueTurns, SqsPoller

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True)
class RefreshReport:
    window: str | None
    started: bool
    users_queued: int
    messages_queued: int
    messages_processed: int
    messages_failed: int
    invocations: int
    note: str | None = None
    forced: bool = False

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "window": self.window,
            "forced": self.forced,
            "started": self.started,
            "users": self.users_queued,
            "messagesQueued": self.messages_queued,
            "messagesProcessed": self.messages_processed,
            "messagesFailed": self.messages_failed,
            "priceUpdaterInvocations": self.invocations,
        }
        if self.note:
            body["note"] = self.note
        return body


class RefreshRunner:
    def __init__(
        self,
        scheduler_handler: Handler,
        poller: SqsPoller,
        queue_turns: QueueTurns,
        *,
        context_factory: Callable[[], Any],
        interval_s: int,
        region: str = "us-east-1",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        window_handler: Handler | None = None,
    ) -> None:
        self._scheduler_handler = scheduler_handler
        self._window_handler = window_handler
        self._last_forced: datetime | None = None
        self._poller = poller
        self._queue_turns = queue_turns
        self._context_factory = context_factory
        self._interval_s = interval_s
        self._region = region
        self._clock = clock

    def invoke_scheduler(self) -> dict[str, Any]:
        """What EventBridge does each interval: one scheduled event, the queue left to the poller."""
        return self._scheduler_handler(scheduled_event(self._clock(), region=self._region), self._context_factory())

    def run_now(self, *, force: bool = False) -> RefreshReport:
        """Queue every user for this window and wait until the price updater has worked through the queue.

        `force`: a new window starting now, even when the current one already ran."""
        if force and self._window_handler is None:
            raise RuntimeError("this runner has no handler for forced runs")
        # The background poller stays off the queue meanwhile: every message of this run is
        # processed here, so the counts are this run's.
        with self._queue_turns.drain_turn():
            if force:
                assert self._window_handler is not None
                event = scheduled_event(self._forced_window(), region=self._region)
                planned = self._window_handler(event, self._context_factory()) or {}
            else:
                planned = self.invoke_scheduler() or {}
            results = self._poller.drain()
        started = bool(planned.get("started", False))
        window = planned.get("window")
        return RefreshReport(
            forced=force,
            window=window,
            started=started,
            users_queued=int(planned.get("usersQueued", 0)),
            messages_queued=int(planned.get("messages", 0)),
            messages_processed=sum(len(result.deleted) for result in results),
            messages_failed=sum(len(result.failed) for result in results),
            invocations=len(results),
            note=None if started else self._already_ran_note(window, forced=force),
        )

    def _forced_window(self) -> datetime:
        """Now, to the second: later than any forced window before it, and never a scheduled window's start.
        Called with the drain turn held, so two forced runs never pick the same second."""
        window = self._clock().astimezone(UTC).replace(microsecond=0)
        if self._last_forced is not None and window <= self._last_forced:
            window = self._last_forced + timedelta(seconds=1)
        if int(window.timestamp()) % self._interval_s == 0:
            window += timedelta(seconds=1)
        self._last_forced = window
        return window

    def _already_ran_note(self, window: str | None, *, forced: bool) -> str:
        if window is None:
            return "the scheduler queued nothing"
        if forced:
            return f"window {window} was already claimed"
        next_window = datetime.fromisoformat(window) + timedelta(seconds=self._interval_s)
        return (
            f"window {window} was already refreshed (one run per window); "
            f"the next window opens at {next_window.isoformat()} (force=true runs one now)"
        )


def window_run_handler() -> Handler:
    """The scheduler function's work for exactly the window its event's `time` names (no rounding down to
    the schedule's boundary): claim it (RunLock), sweep the prices, queue the users. The answer has the
    scheduler's shape. Built after the functions' environment is set: the planner and the logger read it."""
    from portfolio import wiring
    from portfolio.observability import logger, metrics

    @logger.inject_lambda_context
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        window = datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        # As the scheduler: pricing may use half of what is left, queueing the users needs the rest.
        deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 / 2
        result = wiring.refresh_planner().run(window, run_id=event["id"], deadline=deadline)
        return {
            "window": window.isoformat(),
            "started": result.started,
            "sweptCoins": result.sweep.coins if result.sweep else None,
            "usersQueued": result.users_queued,
            "activeUsers": result.active_users,
            "messages": result.messages,
        }

    return handler
