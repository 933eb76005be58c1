"""Live updates: messages to a user's open WebSocket connections, through API Gateway's management API.

- A message goes to every open connection of ONE user, the ids read from that user's own partition:
  no user is ever sent another user's message. A user with no connection costs one cheap lookup
  (the registry's Redis index), so a refresh can ask for every user it values.
- The posts of a message, and of every message an invocation starts, run concurrently on a small
  pool of threads. `send` waits for its own; `publish` and `portfolio_updated` return at once and
  the function waits for everything they started with `drain`, once, before the invocation ends
  (Lambda freezes whatever is still running when it returns). Either wait is bounded by the push
  budget: a slow or failing management API never fails a write or a refresh, nor delays it longer
  than that.
- A connection the management API reports gone (410) is forgotten at once; any other failure is
  logged and counted (LiveUpdateFailures) and the connection kept: a later message may reach it.

`portfolio.updated` carries the summary's figures as the API shows them (decimal strings), and
`changeUsd`: totalValueUsd less the totalValueUsd of the previous update delivered to the user,
that is, received by at least one of their connections (null when there is none lately). An update
whose value, P&L and stale price count equal the previous one delivered is not pushed: a refresh
whose prices did not move sends nothing.

Writes and refreshes finish in any order, so each update carries the portfolio version it was
valued from and is sent only while no update of a later version was started (one atomic check in
Redis, PushedFiguresStore): a refresh that read version 5 and finishes after a write of version 6
sends nothing, rather than the older figures after the newer ones.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from enum import StrEnum
from typing import Any

from portfolio.domain.money import to_decimal_string
from portfolio.domain.valued_portfolio import SummaryFigures
from portfolio.observability import logger, metrics
from portfolio.services.portfolio_rendering import json_datetime
from portfolio.services.ports import (
    ConnectionGoneError,
    ConnectionPusher,
    ConnectionRegistry,
    PushClaim,
    PushedFigures,
    PushedFiguresStore,
    PushOutcome,
)

PORTFOLIO_UPDATED = "portfolio.updated"
DEFAULT_BUDGET_S = 1.0
DEFAULT_CONCURRENCY = 16


class Delivery(StrEnum):
    DELIVERED = "delivered"
    GONE = "gone"
    FAILED = "failed"


def portfolio_figures(summary: SummaryFigures) -> PushedFigures:
    return PushedFigures(
        total_value_usd=summary.total_value_usd,
        total_pnl_usd=summary.total_pnl_usd,
        stale_price_count=summary.stale_price_count,
    )


def portfolio_updated_message(summary: SummaryFigures, previous: PushedFigures | None) -> dict[str, Any]:
    """The `portfolio.updated` message: the summary's figures in the API's JSON form."""
    change = None if previous is None else summary.total_value_usd - previous.total_value_usd
    return {
        "type": PORTFOLIO_UPDATED,
        "userId": summary.user_id,
        "totalValueUsd": to_decimal_string(summary.total_value_usd),
        "totalPnlUsd": to_decimal_string(summary.total_pnl_usd),
        "changeUsd": None if change is None else to_decimal_string(change),
        "pricesAsOf": None if summary.prices_as_of is None else json_datetime(summary.prices_as_of),
        "stalePriceCount": summary.stale_price_count,
    }


class LiveUpdatePublisher:
    def __init__(
        self,
        registry: ConnectionRegistry,
        pusher: ConnectionPusher,
        *,
        budget_s: float = DEFAULT_BUDGET_S,
        max_concurrency: int = DEFAULT_CONCURRENCY,
        pushed: PushedFiguresStore | None = None,
    ) -> None:
        self._registry = registry
        self._pusher = pusher
        self._pushed = pushed
        self._budget_s = budget_s
        self._max_concurrency = max_concurrency
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._started: list[Future[Delivery]] = []  # by publish and portfolio_updated, since the last drain

    # What the use cases call ------------------------------------------------------------------------

    def send(self, user_id: str, message: Mapping[str, Any]) -> PushOutcome:
        futures = self._start(user_id, message)
        return self._settle(futures)

    def publish(self, user_id: str, message: Mapping[str, Any]) -> None:
        futures = self._start(user_id, message)
        with self._lock:
            self._started.extend(futures)

    def portfolio_updated(self, user_id: str, summary: SummaryFigures, *, version: int) -> None:
        try:
            connections = self._registry.connections_of(user_id)
            if not connections:
                return
            claim = PushClaim(current=True) if self._pushed is None else self._pushed.claim(user_id, version)
            figures = portfolio_figures(summary)
            if not claim.current or claim.delivered == figures:
                return
            delivered = None if self._pushed is None else _Once(self._pushed.remember, user_id, version, figures)
            message = portfolio_updated_message(summary, claim.delivered)
            futures = self._post_all(user_id, connections, message, on_delivered=delivered)
            with self._lock:
                self._started.extend(futures)
        except Exception as error:  # a push never fails the write or the refresh that asked for it
            _count_failure("update not started", user_id, error)

    def drain(self, timeout_s: float | None = None) -> PushOutcome:
        with self._lock:
            futures, self._started = self._started, []
        return self._settle(futures, timeout_s)

    # Delivery ---------------------------------------------------------------------------------------

    def _start(self, user_id: str, message: Mapping[str, Any]) -> list[Future[Delivery]]:
        try:
            connections = self._registry.connections_of(user_id)
            return self._post_all(user_id, connections, message) if connections else []
        except Exception as error:
            _count_failure("message not started", user_id, error)
            return []

    def _post_all(
        self,
        user_id: str,
        connections: Iterable[str],
        message: Mapping[str, Any],
        *,
        on_delivered: Callable[[], None] | None = None,
    ) -> list[Future[Delivery]]:
        data = json.dumps(message, separators=(",", ":")).encode()
        executor = self._pool()
        return [
            executor.submit(self._post, user_id, connection_id, data, on_delivered) for connection_id in connections
        ]

    def _post(
        self, user_id: str, connection_id: str, data: bytes, on_delivered: Callable[[], None] | None = None
    ) -> Delivery:
        try:
            self._pusher.post(connection_id, data)
        except ConnectionGoneError:
            try:
                self._registry.remove(user_id, connection_id)
            except Exception as error:  # its TTL removes it anyway
                logger.warning("gone connection not removed", extra={"user_id": user_id, "error": type(error).__name__})
            return Delivery.GONE
        except Exception as error:
            logger.warning(
                "live update not delivered",
                extra={"user_id": user_id, "connection_id": connection_id, "error": type(error).__name__},
            )
            return Delivery.FAILED
        if on_delivered is not None:
            try:
                on_delivered()
            except Exception as error:  # the message reached the connection all the same
                logger.warning("delivered figures not kept", extra={"user_id": user_id, "error": type(error).__name__})
        return Delivery.DELIVERED

    def _settle(self, futures: list[Future[Delivery]], timeout_s: float | None = None) -> PushOutcome:
        if not futures:
            return PushOutcome()
        budget_s = self._budget_s if timeout_s is None else max(0.0, min(self._budget_s, timeout_s))
        done, late = wait(futures, timeout=budget_s)
        counts = {delivery: 0 for delivery in Delivery}
        for future in done:
            counts[future.result()] += 1
        outcome = PushOutcome(
            delivered=counts[Delivery.DELIVERED],
            gone=counts[Delivery.GONE],
            failed=counts[Delivery.FAILED] + len(late),
        )
        if late:
            # Posts still queued behind slow ones are dropped: nothing outlives the budget by more than one call.
            for future in late:
                future.cancel()
            logger.warning("live updates still unanswered after the budget", extra={"connections": len(late)})
        metrics.add_metric(name="LiveUpdatesDelivered", unit="Count", value=outcome.delivered)
        if outcome.gone:
            metrics.add_metric(name="LiveConnectionsGone", unit="Count", value=outcome.gone)
        if outcome.failed:
            metrics.add_metric(name="LiveUpdateFailures", unit="Count", value=outcome.failed)
        return outcome

    def _pool(self) -> ThreadPoolExecutor:
        # Made on first use: a container that never pushes starts no thread (and none is in a snapshot).
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self._max_concurrency, thread_name_prefix="live-update")
            return self._executor


class _Once:
    """Calls `action(*args)` the first time it is called, from whichever post thread gets there first."""

    def __init__(self, action: Callable[..., None], *args: Any) -> None:
        self._action = action
        self._args = args
        self._lock = threading.Lock()
        self._called = False

    def __call__(self) -> None:
        with self._lock:
            if self._called:
                return
            self._called = True
        self._action(*self._args)


def _count_failure(what: str, user_id: str, error: Exception) -> None:
    logger.warning(what, extra={"user_id": user_id, "error": type(error).__name__})
    metrics.add_metric(name="LiveUpdateFailures", unit="Count", value=1)
