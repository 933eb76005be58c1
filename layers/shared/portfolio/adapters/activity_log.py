"""Who read their portfolio lately, in Redis: the refresh values and warms only these users, and
their asset lists only for those who read their asset list.

Keys `active-users:{<shard>}` (any read) and `asset-readers:{<shard>}` (reads of the asset list)
are sorted sets (member user id, score the epoch second of the last read), 16 shards so that a
million users spread over the cluster's slots. A container writes a user's marks at most once per
TOUCH_INTERVAL_S each (a read of the asset list is a mark of both kinds: two ZADDs), so a hot
reader costs a few ZADDs every few minutes, not one per request. Redis being down loses marks,
never a read: the refresh then treats users as idle, and their views are valued on their next read
instead.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from portfolio.observability import logger
from portfolio.services.ports import ActivityUnavailableError

KEY_PREFIX = "active-users:"
ASSET_READERS_PREFIX = "asset-readers:"
SHARDS = 16
TOUCH_INTERVAL_S = 120
PAGE_SIZE = 1000
_MAX_REMEMBERED = 50_000


def _shard(user_id: str) -> int:
    return int.from_bytes(hashlib.sha256(user_id.encode()).digest()[:4], "big") % SHARDS


def activity_key(shard: int) -> str:
    return f"{KEY_PREFIX}{{{shard}}}"


def asset_readers_key(shard: int) -> str:
    return f"{ASSET_READERS_PREFIX}{{{shard}}}"


class RedisActivityLog:
    def __init__(self, client: Any, *, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._clock = clock
        self._touched: dict[tuple[str, bool], float] = {}
        self._lock = threading.Lock()

    def touch(self, user_id: str, *, asset_list: bool = False) -> None:
        """Marks a read now (`asset_list`: a read of the asset list); cheap to call on every request,
        never raises."""
        now = self._clock()
        mark = (user_id, asset_list)
        with self._lock:
            if now - self._touched.get(mark, float("-inf")) < TOUCH_INTERVAL_S:
                return
            if len(self._touched) >= _MAX_REMEMBERED:
                self._touched.clear()
            self._touched[mark] = now
        if self._client is None:
            return
        from portfolio.adapters.redis_connection import REDIS_FAILURES

        shard = _shard(user_id)
        try:
            self._client.zadd(activity_key(shard), {user_id: int(now)})
            if asset_list:
                self._client.zadd(asset_readers_key(shard), {user_id: int(now)})
        except REDIS_FAILURES as error:
            with self._lock:
                self._touched.pop(mark, None)
            logger.debug("activity not recorded", extra={"error": type(error).__name__})

    def active_since(self, since: datetime) -> Iterator[list[str]]:
        """Users who read at or after `since`, a page at a time; older marks are dropped on the way."""
        for users in self._readers_since(since, activity_key):
            for start in range(0, len(users), PAGE_SIZE):
                yield users[start : start + PAGE_SIZE]

    def asset_readers_since(self, since: datetime) -> set[str]:
        """Users who read their asset list at or after `since` (some of the active ones); older marks
        are dropped on the way."""
        return {user_id for users in self._readers_since(since, asset_readers_key) for user_id in users}

    def _readers_since(self, since: datetime, key_of: Callable[[int], str]) -> Iterator[list[str]]:
        if self._client is None:
            raise ActivityUnavailableError("no Redis configured")
        from portfolio.adapters.redis_connection import REDIS_FAILURES

        floor = int(since.timestamp())
        for shard in range(SHARDS):
            key = key_of(shard)
            try:
                self._client.zremrangebyscore(key, "-inf", f"({floor}")
                # One read per shard: paging by offset while readers keep moving members would skip some.
                members = self._client.zrangebyscore(key, floor, "+inf")
            except REDIS_FAILURES as error:
                raise ActivityUnavailableError(f"activity read failed: {type(error).__name__}") from None
            yield [member.decode() if isinstance(member, bytes) else member for member in members]
