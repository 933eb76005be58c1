"""Per-user rate limits: a token bucket in Redis per caller and kind of request (reads, writes).

Keys (the braces are literal: a Redis Cluster hash tag, the same as the user's cached views):

    ratelimit:write:{<sub>}     ratelimit:read:{<sub>}

keyed by the verified token's `sub`, never by the user id of the path. Each is a hash of two
fields: `tokens` (what is left, fractional) and `at` (when it was last refilled, epoch ms).

One request is one script call (EVALSHA) on one key: the script refills the bucket for the time
elapsed since `at` (`rate` tokens a second, never above `burst`), takes one token when there is
one, stores both fields and sets the key's TTL, atomically; so containers that share Redis share
the bucket, and no two requests can take the same token. A refused request is told how long until
a token is there (the Retry-After).

Time comes from the caller's clock (Lambda's are kept in sync), in milliseconds: a container whose
clock is behind the stored `at` refills nothing, so skew never mints more than itself times the
rate. The TTL is the time an empty bucket takes to fill up, plus a second: a key that has expired
is exactly a full bucket, so idle users cost no memory.

Failures: with no Redis configured, or a kind whose rate is 0, every request is allowed without a
call. When Redis is down or answers an error the request is allowed (fail open: the route throttles
of API Gateway stay the outer bound), a warning is logged (the error's type and message, never the
caller) and the metric RateLimitUnchecked is counted; for a second after a failure Redis is not
asked again, so an outage does not add its timeouts to every request twice (the cache's and
this).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from hashlib import sha256
from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools.metrics import MetricUnit

from portfolio.adapters.portfolio_cache import _redis_unavailable_errors
from portfolio.observability import logger, metrics
from portfolio.services.ports import RateDecision, RequestKind

if TYPE_CHECKING:
    from portfolio.adapters.redis_connection import RedisClient

KEY_PREFIX = "ratelimit:"
# After a Redis failure, requests are let through unchecked for this long before Redis is tried again.
PAUSE_AFTER_FAILURE_S = 1.0
# A sub used as it is in a key; anything else (braces, which would move the hash tag, or a very long
# one) is replaced by its SHA-256.
_PLAIN_SUBJECT = re.compile(r"[A-Za-z0-9._@:|+=-]{1,128}")

# KEYS: the bucket  ARGV: rate (tokens a second), burst, now (epoch ms), ttl (ms)
# Returns {1 if a token was taken else 0, ms until one is there (0 when taken), whole tokens left}.
_TAKE_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local stored = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(stored[1])
local at = tonumber(stored[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
elseif now > at then
  tokens = math.min(burst, tokens + (now - at) * rate / 1000)
  at = now
end
local taken = 0
local wait_ms = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
else
  wait_ms = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {taken, wait_ms, math.floor(tokens)}
"""


@dataclass(frozen=True, slots=True)
class BucketLimit:
    """`rate_per_s` tokens a second up to `burst`; a rate of 0 switches the bucket off."""

    rate_per_s: float
    burst: int

    @property
    def enabled(self) -> bool:
        return self.rate_per_s > 0 and self.burst > 0

    @property
    def ttl_ms(self) -> int:
        """How long an empty bucket takes to fill up, plus a second: past it, a missing key is a full bucket."""
        return math.ceil(self.burst / self.rate_per_s * 1000) + 1000


def bucket_key(kind: RequestKind, subject: str) -> str:
    if not _PLAIN_SUBJECT.fullmatch(subject):
        subject = "sha256-" + sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{KEY_PREFIX}{kind.value}:{{{subject}}}"


class RedisRateLimiter:
    """Token buckets per (caller, kind of request) in Redis; works with redis.Redis and RedisCluster alike."""

    def __init__(
        self,
        client: RedisClient | None,
        limits: Mapping[RequestKind, BucketLimit],
        *,
        clock: Callable[[], float] = time.time,
        pause_after_failure_s: float = PAUSE_AFTER_FAILURE_S,
    ) -> None:
        self._client: Any = cast(Any, client)
        self._limits = {kind: limit for kind, limit in limits.items() if limit.enabled}
        self._clock = clock
        self._pause_after_failure_s = pause_after_failure_s
        self._paused_until = 0.0
        self._unavailable = _redis_unavailable_errors() if client is not None else ()
        self._take_script = self._client.register_script(_TAKE_LUA) if client is not None else None

    def take(self, subject: str, kind: RequestKind) -> RateDecision:
        """Take a token from the caller's bucket of this kind; allowed unchecked when it cannot be asked."""
        limit = self._limits.get(kind)
        if limit is None or self._take_script is None:
            return RateDecision(allowed=True)
        if time.monotonic() < self._paused_until:
            return self._unchecked()
        try:
            taken, wait_ms, remaining = self._take_script(
                keys=[bucket_key(kind, subject)],
                args=[limit.rate_per_s, limit.burst, int(self._clock() * 1000), limit.ttl_ms],
            )
        except self._unavailable as error:
            self._paused_until = time.monotonic() + self._pause_after_failure_s
            # The type and message only: redis-py messages name the host and the failure, never
            # credentials; the caller is not named either.
            logger.warning(
                "rate limit not checked: Redis unavailable",
                extra={"kind": kind.value, "error_type": type(error).__name__, "error": str(error)[:200]},
            )
            return self._unchecked()
        if taken:
            return RateDecision(allowed=True, remaining=int(remaining))
        metrics.add_metric(name="RateLimited", unit=MetricUnit.Count, value=1)
        return RateDecision(allowed=False, retry_after_s=int(wait_ms) / 1000, remaining=0)

    def _unchecked(self) -> RateDecision:
        metrics.add_metric(name="RateLimitUnchecked", unit=MetricUnit.Count, value=1)
        return RateDecision(allowed=True, checked=False)
