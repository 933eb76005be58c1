"""EventBridge's schedule, locally: the scheduled event shape and a thread that sends it every interval."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

ACCOUNT_ID = "000000000000"
RULE_NAME = "local-refresh-schedule"


def scheduled_event(now: datetime | None = None, *, region: str = "us-east-1") -> dict[str, Any]:
    """What EventBridge sends a function on a schedule rule; `time` is the minute-precise firing time."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{RULE_NAME}"],
        "detail": {},
    }


class ScheduleThread(threading.Thread):
    """Calls `fire()` every `interval_s` seconds, the first time one interval after start."""

    def __init__(
        self,
        interval_s: float,
        fire: Callable[[], Any],
        *,
        on_error: Callable[[BaseException], None] = lambda _error: None,
        name: str = "refresh-schedule",
    ) -> None:
        super().__init__(name=name, daemon=True)
        self._interval_s = interval_s
        self._fire = fire
        self._on_error = on_error
        self._stop_requested = threading.Event()

    def run(self) -> None:
        while not self._stop_requested.wait(self._interval_s):
            try:
                self._fire()
            except Exception as error:  # a failed run must not end the schedule
                self._on_error(error)

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop_requested.set()
        if self.is_alive():
            self.join(timeout=timeout_s)
