"""The WebSocket API's routes: a connection is opened ($connect), kept alive (ping) and closed
($disconnect). The authorizer has already verified the token; the connection belongs to its `sub`.

A connecting user is marked active (the activity log), so the refresh values them every cycle and
their connections hear of every price move, not only of their next read. The figures last pushed
to the user are forgotten, so the new connection's first update is sent even if nothing moved.

A user holds at most `max_connections` open connections: each one is a post of every update, on
the pool all users' pushes share, so one user opening thousands would slow everyone's updates.
"""

from __future__ import annotations

from portfolio.observability import logger
from portfolio.services.ports import ActivityLog, ConnectionRegistry, PushedFiguresStore

DEFAULT_MAX_CONNECTIONS = 10


class TooManyConnectionsError(Exception):
    """The user already holds the most open connections allowed."""


class LiveConnections:
    def __init__(
        self,
        registry: ConnectionRegistry,
        *,
        activity: ActivityLog | None = None,
        pushed: PushedFiguresStore | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self._registry = registry
        self._activity = activity
        self._pushed = pushed
        self._max_connections = max_connections

    def connect(self, user_id: str, connection_id: str) -> None:
        """Raises TooManyConnectionsError when the user holds the most allowed, and the store's error
        when the connection cannot be recorded: API Gateway then refuses it (the client retries),
        rather than opening a connection no update would reach. Two connects of one user at the same
        moment may both pass the count: the cap is a bound on abuse, and pushes are capped as well."""
        if self._registry.open_count(user_id) >= self._max_connections:
            raise TooManyConnectionsError
        self._registry.add(user_id, connection_id)
        if self._pushed is not None:
            self._pushed.forget(user_id)
        self._touch(user_id)

    def disconnect(self, user_id: str, connection_id: str) -> None:
        """Never raises: a connection not removed now expires, or is removed at the next push (410)."""
        try:
            self._registry.remove(user_id, connection_id)
        except Exception as error:
            logger.warning("connection not removed", extra={"user_id": user_id, "error": type(error).__name__})

    def ping(self, user_id: str, connection_id: str) -> None:
        self._registry.keep_alive(user_id, connection_id)
        self._touch(user_id)

    def _touch(self, user_id: str) -> None:
        if self._activity is not None:
            self._activity.touch(user_id)
