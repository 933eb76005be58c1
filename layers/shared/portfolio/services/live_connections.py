"""The WebSocket API's routes: a connection is opened ($connect), kept alive (ping) and closed
($disconnect). The authorizer has already verified the token; the connection belongs to its `sub`.

A connecting user is marked active (the activity log), so the refresh values them every cycle and
their connections hear of every price move, not only of their next read.
"""

from __future__ import annotations

from portfolio.observability import logger
from portfolio.services.ports import ActivityLog, ConnectionRegistry


class LiveConnections:
    def __init__(self, registry: ConnectionRegistry, *, activity: ActivityLog | None = None) -> None:
        self._registry = registry
        self._activity = activity

    def connect(self, user_id: str, connection_id: str) -> None:
        """Raises when the connection cannot be recorded: API Gateway then refuses it (the client
        retries), rather than opening a connection no update would reach."""
        self._registry.add(user_id, connection_id)
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
