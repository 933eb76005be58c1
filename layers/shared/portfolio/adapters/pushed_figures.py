"""What each user's WebSocket connections were told of their portfolio, in Redis.

`live-pushed:{<userId>}`, a hash (the braces are a cluster hash tag; each script names only this key):
- `version`: the latest portfolio version an update was started for. A write and a refresh, or two
  writes, finish in any order; an update of an older version than this one is not sent, so a
  client never hears older figures after newer ones, nor a changeUsd measured backwards.
- `figures`, `figuresVersion`: the figures a connection last received, and their version. They are
  written after a post succeeded, so an update no connection received is not what the next
  changeUsd is measured from; never replaced by the figures of an older version.

The key lives as long as a connection (2 h 15 min, renewed by every update). Each check-and-write is
one script call, atomic on Redis and on a Redis Cluster alike. Redis down or unset: every update is
current and none has a previous one (changeUsd null).
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from portfolio.adapters.redis_connection import REDIS_FAILURES, RedisClient
from portfolio.observability import logger
from portfolio.services.ports import PushClaim, PushedFigures

PUSHED_KEY_PREFIX = "live-pushed:"
# As long as a connection: API Gateway ends every one after 2 hours; the margin covers clock differences.
PUSHED_TTL_MS = (2 * 3600 + 15 * 60) * 1000

# KEYS: the user's key  ARGV: version, ttl ms  ->  {0} when a later version was announced, else {1, figures}
_CLAIM_LUA = """
local announced = tonumber(redis.call('HGET', KEYS[1], 'version'))
local version = tonumber(ARGV[1])
if announced and version < announced then
  return {0}
end
redis.call('HSET', KEYS[1], 'version', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, redis.call('HGET', KEYS[1], 'figures') or ''}
"""

# KEYS: the user's key  ARGV: version, figures, ttl ms  ->  1 when kept
_REMEMBER_LUA = """
local kept = tonumber(redis.call('HGET', KEYS[1], 'figuresVersion'))
if kept and tonumber(ARGV[1]) < kept then
  return 0
end
redis.call('HSET', KEYS[1], 'figures', ARGV[2], 'figuresVersion', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""


def pushed_key(user_id: str) -> str:
    return f"{PUSHED_KEY_PREFIX}{{{user_id}}}"


class RedisPushedFigures:
    def __init__(self, client: RedisClient | None, *, ttl_ms: int = PUSHED_TTL_MS) -> None:
        self._client: Any = cast(Any, client)
        self._ttl_ms = ttl_ms
        self._claim = None if client is None else self._client.register_script(_CLAIM_LUA)
        self._remember = None if client is None else self._client.register_script(_REMEMBER_LUA)

    def claim(self, user_id: str, version: int) -> PushClaim:
        if self._claim is None:
            return PushClaim(current=True)
        try:
            answer = self._claim(keys=[pushed_key(user_id)], args=[version, self._ttl_ms])
        except (*REDIS_FAILURES, OSError) as error:
            logger.warning("pushed figures not read", extra={"user_id": user_id, "error": type(error).__name__})
            return PushClaim(current=True)
        if not int(answer[0]):
            return PushClaim(current=False)
        return PushClaim(current=True, delivered=_figures_from_json(answer[1]))

    def remember(self, user_id: str, version: int, figures: PushedFigures) -> None:
        if self._remember is None:
            return
        try:
            self._remember(keys=[pushed_key(user_id)], args=[version, _figures_to_json(figures), self._ttl_ms])
        except (*REDIS_FAILURES, OSError) as error:
            logger.warning("pushed figures not kept", extra={"user_id": user_id, "error": type(error).__name__})

    def forget(self, user_id: str) -> None:
        if self._client is None:
            return
        try:
            self._client.hdel(pushed_key(user_id), "figures", "figuresVersion")
        except (*REDIS_FAILURES, OSError) as error:
            logger.warning("pushed figures not dropped", extra={"user_id": user_id, "error": type(error).__name__})


def _figures_to_json(figures: PushedFigures) -> str:
    return json.dumps(
        {
            "totalValueUsd": str(figures.total_value_usd),
            "totalPnlUsd": str(figures.total_pnl_usd),
            "stalePriceCount": figures.stale_price_count,
        }
    )


def _figures_from_json(raw: bytes | str) -> PushedFigures | None:
    if not raw:
        return None
    try:
        stored = json.loads(raw)
        return PushedFigures(
            total_value_usd=Decimal(stored["totalValueUsd"]),
            total_pnl_usd=Decimal(stored["totalPnlUsd"]),
            stale_price_count=int(stored["stalePriceCount"]),
        )
    except (ValueError, KeyError, TypeError, InvalidOperation):
        return None
