"""Plans one refresh run: claim the window, enumerate users page by page, queue them in messages.

A run for a window happens once (the run lock). Users stream from the store straight into
SendMessageBatch calls, so memory stays flat whether there are a hundred users or a million.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from pydantic import Field

from portfolio.adapters.refresh_queue import MAX_ENTRIES_PER_CALL, QueueEntry, RefreshQueue, SendStats
from portfolio.adapters.run_lock import RunLock
from portfolio.domain.models import CamelModel
from portfolio.observability import logger, metrics

DEFAULT_USER_PAGE_SIZE = 1000


class RefreshMessage(CamelModel):
    """The body of one refresh message. Same window and users = same message, so consumers can dedupe."""

    window: datetime
    user_ids: list[str] = Field(min_length=1, max_length=100)


class UserDirectory(Protocol):
    def iter_user_ids(self, page_size: int = DEFAULT_USER_PAGE_SIZE) -> Iterator[list[str]]: ...


def refresh_window(moment: datetime, interval_s: int) -> datetime:
    """The start of the window `moment` falls in: 10:04:59 -> 10:00:00 for a 300 s interval."""
    epoch = int(moment.astimezone(UTC).timestamp())
    return datetime.fromtimestamp(epoch - epoch % interval_s, tz=UTC)


@dataclass(frozen=True, slots=True)
class RefreshSizing:
    """What a run costs for a number of users: the arithmetic of docs/refresh.md."""

    users: int
    user_pages: int
    messages: int
    send_calls: int


def refresh_sizing(
    users: int,
    *,
    users_per_message: int,
    page_size: int = DEFAULT_USER_PAGE_SIZE,
    shards: int = 1,
    entries_per_call: int = MAX_ENTRIES_PER_CALL,
) -> RefreshSizing:
    """Users spread evenly over the index shards; send calls assume SQS rejects no entry."""
    messages = math.ceil(users / users_per_message)
    users_per_shard = math.ceil(users / shards)
    return RefreshSizing(
        users=users,
        # Each shard is read to its end: full pages, then the short (or empty) one that ends it.
        user_pages=shards * (users_per_shard // page_size + 1),
        messages=messages,
        send_calls=math.ceil(messages / entries_per_call),
    )


class _MessageStream:
    """Turns pages of user ids into queue entries, counting as they go."""

    def __init__(self, pages: Iterable[list[str]], window: datetime, users_per_message: int) -> None:
        self._pages = pages
        self._window = window
        self._users_per_message = users_per_message
        self.users = 0
        self.messages = 0

    def __iter__(self) -> Iterator[QueueEntry]:
        pending: list[str] = []
        for page in self._pages:
            for user_id in page:
                pending.append(user_id)
                if len(pending) == self._users_per_message:
                    yield self._entry(pending)
                    pending = []
        if pending:
            yield self._entry(pending)

    def _entry(self, user_ids: list[str]) -> QueueEntry:
        body = RefreshMessage(window=self._window, user_ids=user_ids).model_dump_json(by_alias=True)
        # Ids only need to be unique within one SendMessageBatch call; a sequence number is, and is stable.
        entry = QueueEntry(id=f"m{self.messages}", body=body)
        self.users += len(user_ids)
        self.messages += 1
        return entry


@dataclass(frozen=True, slots=True)
class RefreshRunResult:
    window: datetime
    started: bool  # False when another run already owned the window
    users_queued: int = 0
    messages: int = 0
    send_calls: int = 0
    retried_entries: int = 0
    duration_ms: float = 0.0


class RefreshPlanner:
    def __init__(
        self,
        users: UserDirectory,
        queue: RefreshQueue,
        run_lock: RunLock,
        *,
        users_per_message: int,
        page_size: int = DEFAULT_USER_PAGE_SIZE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._users = users
        self._queue = queue
        self._run_lock = run_lock
        self._users_per_message = users_per_message
        self._page_size = page_size
        self._monotonic = monotonic

    def run(self, window: datetime, run_id: str) -> RefreshRunResult:
        """Queue every user for `window`, once: a second run for the same window queues nothing."""
        started = self._monotonic()
        if not self._run_lock.acquire(window, owner=run_id):
            logger.info(
                "refresh window already claimed; nothing queued",
                extra={"window": window.isoformat(), "run_id": run_id},
            )
            metrics.add_metric(name="DuplicateRefreshRuns", unit="Count", value=1)
            return RefreshRunResult(window=window, started=False)

        stream = _MessageStream(self._users.iter_user_ids(page_size=self._page_size), window, self._users_per_message)
        try:
            sent: SendStats = self._queue.send_all(stream)
        except Exception:
            # Hand the window back so a retry of this event runs it again; consumers dedupe repeats.
            self._run_lock.release(window, owner=run_id)
            logger.exception(
                "refresh run failed; window released for a retry",
                extra={"window": window.isoformat(), "users_queued_before_failure": stream.users},
            )
            raise

        result = RefreshRunResult(
            window=window,
            started=True,
            users_queued=stream.users,
            messages=stream.messages,
            send_calls=sent.calls,
            retried_entries=sent.retried_entries,
            duration_ms=(self._monotonic() - started) * 1000,
        )
        _report(result)
        return result


def _report(result: RefreshRunResult) -> None:
    logger.info(
        "refresh run queued",
        extra={
            "window": result.window.isoformat(),
            "users_queued": result.users_queued,
            "messages": result.messages,
            "send_message_batch_calls": result.send_calls,
            "retried_entries": result.retried_entries,
            "duration_ms": round(result.duration_ms, 1),
        },
    )
    metrics.add_metric(name="UsersQueued", unit="Count", value=result.users_queued)
    metrics.add_metric(name="RefreshMessages", unit="Count", value=result.messages)
    metrics.add_metric(name="SendMessageBatchCalls", unit="Count", value=result.send_calls)
    metrics.add_metric(name="SchedulerDurationMs", unit="Milliseconds", value=result.duration_ms)
