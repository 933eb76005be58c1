"""Plans one refresh run: claim the window, sweep prices, queue the users that need work, in messages.

A run for a window happens once (the run lock). First the price sweep prices every held token
once (price_sweep.py). Then the users are queued by tier:
- active users (who read within ACTIVE_USER_HOURS, from the activity log) every cycle: their views
  are valued at the new prices and warmed, the summary for all of them and the asset list for
  those who read theirs within the same hours (their message's `assetUserIds`);
- idle users once every IDLE_REFRESH_EVERY_CYCLES cycles, a slice of the user index shards each
  cycle so the load is spread evenly: their views are valued on their next read instead;
- users with alert rules every cycle: an active one's message names it among its `alertUserIds`,
  the others go in messages of tier "alerts" (valued for their rules only).
Users stream from the sources straight into SendMessageBatch calls, so memory stays flat whether
there are a hundred users or a million (the active ids of the cycle are kept, to skip them among
the idle ones, and the ids of the asset list readers and of the users with alert rules, read
first, to tag them).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from portfolio.observability import logger, metrics
from portfolio.services.ports import (
    MAX_ENTRIES_PER_CALL,
    ActivityLog,
    ActivityUnavailableError,
    AlertingUsers,
    QueueEntry,
    RefreshQueue,
    RunLock,
    SendStats,
    UserDirectory,
)
from portfolio.services.price_sweep import PriceSweep, SweepOutcome
from portfolio.services.refresh_message import RefreshMessage

DEFAULT_USER_PAGE_SIZE = 1000

Tier = Literal["active", "idle", "alerts"]


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

    def __init__(
        self,
        pages: Iterable[tuple[Tier, list[str]]],
        window: datetime,
        users_per_message: int,
        alerting: set[str] | None = None,
        asset_readers: set[str] | None = None,
    ) -> None:
        self._pages = pages
        self._window = window
        self._users_per_message = users_per_message
        self._alerting = alerting or set()
        self._asset_readers = asset_readers or set()
        self.users = 0
        self.messages = 0

    def __iter__(self) -> Iterator[QueueEntry]:
        pending: list[str] = []
        pending_tier: Tier = "active"
        for tier, page in self._pages:
            if pending and tier != pending_tier:
                yield self._entry(pending, pending_tier)
                pending = []
            pending_tier = tier
            for user_id in page:
                pending.append(user_id)
                if len(pending) == self._users_per_message:
                    yield self._entry(pending, tier)
                    pending = []
        if pending:
            yield self._entry(pending, pending_tier)

    def _entry(self, user_ids: list[str], tier: Tier) -> QueueEntry:
        alert_user_ids = [user_id for user_id in user_ids if user_id in self._alerting] if tier != "idle" else []
        asset_user_ids = [user_id for user_id in user_ids if user_id in self._asset_readers] if tier == "active" else []
        message = RefreshMessage(
            window=self._window,
            user_ids=user_ids,
            tier=tier,
            alert_user_ids=alert_user_ids or None,
            asset_user_ids=asset_user_ids or None,
        )
        body = message.model_dump_json(by_alias=True, exclude_none=True)
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
    active_users: int = 0
    alert_users: int = 0
    messages: int = 0
    send_calls: int = 0
    retried_entries: int = 0
    duration_ms: float = 0.0
    sweep: SweepOutcome | None = None


class RefreshPlanner:
    def __init__(
        self,
        users: UserDirectory,
        queue: RefreshQueue,
        run_lock: RunLock,
        *,
        users_per_message: int,
        sweep: PriceSweep | None = None,
        activity: ActivityLog | None = None,
        alerting: AlertingUsers | None = None,
        active_for: timedelta = timedelta(hours=24),
        idle_every_cycles: int = 0,
        interval_s: int = 300,
        page_size: int = DEFAULT_USER_PAGE_SIZE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._users = users
        self._queue = queue
        self._run_lock = run_lock
        self._users_per_message = users_per_message
        self._sweep = sweep
        self._activity = activity
        self._alerting = alerting
        self._active_for = active_for
        self._idle_every_cycles = idle_every_cycles
        self._interval_s = interval_s
        self._page_size = page_size
        self._monotonic = monotonic

    def run(self, window: datetime, run_id: str, *, deadline: float | None = None) -> RefreshRunResult:
        """Sweep prices and queue the users of `window`, once: a second run for the same window does nothing."""
        started = self._monotonic()
        if not self._run_lock.acquire(window, owner=run_id):
            logger.info(
                "refresh window already claimed; nothing queued",
                extra={"window": window.isoformat(), "run_id": run_id},
            )
            metrics.add_metric(name="DuplicateRefreshRuns", unit="Count", value=1)
            return RefreshRunResult(window=window, started=False)

        sweep = self._run_sweep(window, deadline)
        active: set[str] = set()
        alerting = self._alerting_users(window)
        stream = _MessageStream(
            self._pages(window, active, alerting),
            window,
            self._users_per_message,
            alerting,
            asset_readers=self._asset_readers(window),
        )
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
            active_users=len(active),
            alert_users=len(alerting),
            messages=stream.messages,
            send_calls=sent.calls,
            retried_entries=sent.retried_entries,
            duration_ms=(self._monotonic() - started) * 1000,
            sweep=sweep,
        )
        _report(result)
        return result

    def _run_sweep(self, window: datetime, deadline: float | None) -> SweepOutcome | None:
        if self._sweep is None:
            return None
        try:
            return self._sweep.run(window, deadline=deadline)
        except Exception:
            # Updaters still price what they need (tiers, then the API): a late price beats no refresh.
            logger.exception("price sweep failed; users queued all the same", extra={"window": window.isoformat()})
            metrics.add_metric(name="SweepFailures", unit="Count", value=1)
            return None

    def _pages(self, window: datetime, active: set[str], alerting: set[str]) -> Iterator[tuple[Tier, list[str]]]:
        for page in self._active_pages(window):
            fresh = [user_id for user_id in page if user_id not in active]
            active.update(fresh)
            if fresh:
                yield "active", fresh
        # Sorted: the same users give the same messages, which the updater recognises when sent twice.
        alert_only = sorted(alerting - active)
        for start in range(0, len(alert_only), self._page_size):
            yield "alerts", alert_only[start : start + self._page_size]
        # Users with rules still get their idle pass: their wallets are synced there.
        for page in self._users.iter_user_ids(page_size=self._page_size, shards=self._idle_shards(window)):
            idle = [user_id for user_id in page if user_id not in active]
            if idle:
                yield "idle", idle

    def _active_pages(self, window: datetime) -> Iterator[list[str]]:
        if self._activity is None:
            return
        try:
            yield from self._activity.active_since(window - self._active_for)
        except ActivityUnavailableError as error:
            # Nobody's views can be warmed without Redis anyway; idle users are still queued.
            logger.warning("active users unknown; none warmed this cycle", extra={"error": str(error)})

    def _asset_readers(self, window: datetime) -> set[str]:
        """Active users who read their asset list: theirs is warmed too. None this cycle when Redis
        cannot say (then nobody is active either, or only summaries are warmed)."""
        if self._activity is None:
            return set()
        try:
            return self._activity.asset_readers_since(window - self._active_for)
        except ActivityUnavailableError as error:
            logger.warning("asset list readers unknown; summaries alone warmed", extra={"error": str(error)})
            return set()

    def _alerting_users(self, window: datetime) -> set[str]:
        """Every user with alert rules; none this cycle when they cannot be listed (the next one tries again)."""
        if self._alerting is None:
            return set()
        try:
            return {user_id for page in self._alerting.iter_alerting_users(self._page_size) for user_id in page}
        except Exception:
            logger.exception(
                "users with alert rules not listed; no rule evaluated this cycle", extra={"window": window.isoformat()}
            )
            metrics.add_metric(name="AlertEvaluationFailures", unit="Count", value=1)
            return set()

    def _idle_shards(self, window: datetime) -> list[int]:
        """The index shards whose users get their idle pass this cycle (none when idle refresh is off)."""
        if self._idle_every_cycles <= 0:
            return []
        cycle = int(window.timestamp()) // self._interval_s
        return [
            shard
            for shard in range(self._users.shard_count)
            if shard % self._idle_every_cycles == cycle % self._idle_every_cycles
        ]


def _report(result: RefreshRunResult) -> None:
    logger.info(
        "refresh run queued",
        extra={
            "window": result.window.isoformat(),
            "users_queued": result.users_queued,
            "active_users": result.active_users,
            "alert_users": result.alert_users,
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
