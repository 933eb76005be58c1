"""One refresh run on demand: the scheduler function with a scheduled event of now, then the queue drained.

The scheduler claims one run per window (REFRESH_INTERVAL_SECONDS), exactly as in AWS, so a second
refresh inside a window that already ran queues nothing; the report says so and when the next
window opens. The price updater still runs for whatever is waiting in the queue.
"""

from __future__ import annotations

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

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "window": self.window,
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
    ) -> None:
        self._scheduler_handler = scheduler_handler
        self._poller = poller
        self._queue_turns = queue_turns
        self._context_factory = context_factory
        self._interval_s = interval_s
        self._region = region
        self._clock = clock

    def invoke_scheduler(self) -> dict[str, Any]:
        """What EventBridge does each interval: one scheduled event, the queue left to the poller."""
        return self._scheduler_handler(scheduled_event(self._clock(), region=self._region), self._context_factory())

    def run_now(self) -> RefreshReport:
        """Queue every user for this window and wait until the price updater has worked through the queue."""
        # The background poller stays off the queue meanwhile: every message of this run is
        # processed here, so the counts are this run's.
        with self._queue_turns.drain_turn():
            planned = self.invoke_scheduler() or {}
            results = self._poller.drain()
        started = bool(planned.get("started", False))
        window = planned.get("window")
        return RefreshReport(
            window=window,
            started=started,
            users_queued=int(planned.get("usersQueued", 0)),
            messages_queued=int(planned.get("messages", 0)),
            messages_processed=sum(len(result.deleted) for result in results),
            messages_failed=sum(len(result.failed) for result in results),
            invocations=len(results),
            note=None if started else self._already_ran_note(window),
        )

    def _already_ran_note(self, window: str | None) -> str:
        if window is None:
            return "the scheduler queued nothing"
        next_window = datetime.fromisoformat(window) + timedelta(seconds=self._interval_s)
        return (
            f"window {window} was already refreshed (one run per window); "
            f"the next window opens at {next_window.isoformat()}"
        )
