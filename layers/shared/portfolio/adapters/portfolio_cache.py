"""Cache-aside for a user's read views in Redis: one round trip per hit, O(1) invalidation, no stampedes.

Keys (the braces are literal: a Redis Cluster hash tag, so all keys of one user share one slot and
MGET or a script over several of them is legal in cluster mode):

    portfolio:cross-chain:{alice}           assets:cross-chain:{alice}:<filterKey>
    performance:cross-chain:{alice}         transactions:cross-chain:{alice}:<filterKey>

A filter key is appended only when it is not empty. Each view also has a generation key,
`gen:<kind>:cross-chain:{alice}`, and while a miss is being loaded a lock key,
`lock:<view key>`.

Invalidation: a generation token stored in front of each value
    The generation key of a (user, kind) holds a random token (16 hex characters). A value is stored as the
    token it was written under followed by the exact response body. A read is one MGET of the
    generation key and the value key; the body is served only when the two tokens agree, and is
    returned as stored (a slice, no parsing). Invalidating writes new tokens to the user's
    generation keys in one script call: one round trip whatever the number of filter keys, and
    neither KEYS nor SCAN. Superseded values are simply never served again and are overwritten or
    expire.

    Why the token lives in the value rather than in the key name (`...:{alice}:g7`):
    - the hit path is a plain MGET of two declared keys: one round trip without a script, and
      cluster-safe because both keys are named in the command;
    - a miss remembers the token it saw before loading and its fill is written only if that token
      is still current, so a load that read the database before an invalidation cannot put old
      data under the new generation;
    - a view is overwritten in place, so frequent invalidation does not leave old generations of
      keys occupying memory until they expire.
    Tag sets were not chosen: invalidating them costs a read of the set and a delete whose size
    grows with the number of filter keys, and every write has to maintain the set.

    Tokens are random rather than INCR counters: a generation key that expired and was created
    again can never hand out a token an old value still carries. A generation key lives twice the
    longest value TTL, so by the time it expires every value written before it existed (tagged with
    the initial token) has expired too.

Stampede protection
    On a miss one caller takes a short lock (SET NX PX) and loads; its fill stores the value and
    drops the lock in one atomic script. The others poll the value and the lock in one MGET for a
    short budget; they return the value when it appears, and load themselves when the lock is gone
    without a value (the loader failed or an invalidation overtook it) or the budget runs out.

Metrics
    Hits, misses and errors are counted per kind (stats()) and published as the Powertools metrics
    CacheHit, CacheMiss and CacheError, batched: see publish_metrics().

Failures
    The client carries short socket timeouts (see redis_connection). Every Redis error is caught,
    counted and logged (type and message): a read becomes a miss, a write or invalidation is skipped and
    reports False. The client reconnects by itself when Redis returns.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import computed_field

from portfolio.observability import logger, metrics
from portfolio.services.ports import PRICED_KINDS, CacheKind, ViewReplacement
from portfolio.wire_format import CamelModel

if TYPE_CHECKING:
    from portfolio.adapters.redis_connection import RedisClient
    from portfolio.settings import Settings

GENERATION_BYTES = 16
INITIAL_GENERATION = b"0" * GENERATION_BYTES

# Handing every single hit to Powertools costs more than the Redis round trip of a local hit, so counts
# are batched and published at most this often (and whenever publish_metrics() is called).
METRICS_PUBLISH_INTERVAL_S = 1.0


def _redis_unavailable_errors() -> tuple[type[BaseException], ...]:
    # Imported with the first cache, not with this module: importing a handler needs no redis-py.
    from redis.exceptions import RedisClusterException, RedisError

    return (RedisError, RedisClusterException, OSError)


# KEYS: generation key, value key, ... (pairs)  ARGV: initial generation, then body, ttl ms, ... (pairs)
_WRITE_CURRENT_LUA = """
for i = 1, #KEYS, 2 do
  local generation = redis.call('GET', KEYS[i]) or ARGV[1]
  redis.call('SET', KEYS[i + 1], generation .. ARGV[i + 1], 'PX', ARGV[i + 2])
end
return #KEYS / 2
"""

# KEYS: generation key, value key, lock key
# ARGV: initial generation, generation seen before loading, body, ttl ms, lock token ('' when not held)
_FILL_LUA = """
local stored = 0
if (redis.call('GET', KEYS[1]) or ARGV[1]) == ARGV[2] then
  redis.call('SET', KEYS[2], ARGV[2] .. ARGV[3], 'PX', ARGV[4])
  stored = 1
end
if ARGV[5] ~= '' and redis.call('GET', KEYS[3]) == ARGV[5] then
  redis.call('DEL', KEYS[3])
end
return stored
"""

# KEYS: lock key  ARGV: lock token
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: generation keys  ARGV: new token, ttl ms
_NEW_GENERATION_LUA = """
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
end
return #KEYS
"""


# KEYS: version key, the generation keys to renew (ARGV[4] of them), then the value keys to write
# ARGV: portfolio version, new token, generation ttl ms, count of generation keys, then body, ttl ms, ...
_REPLACE_LUA = """
if tonumber(ARGV[1]) < tonumber(redis.call('GET', KEYS[1]) or '-1') then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
local renewed = tonumber(ARGV[4])
for i = 2, renewed + 1 do
  redis.call('SET', KEYS[i], ARGV[2], 'PX', ARGV[3])
end
for i = renewed + 2, #KEYS do
  local body = 5 + (i - renewed - 2) * 2
  redis.call('SET', KEYS[i], ARGV[2] .. ARGV[body], 'PX', ARGV[body + 1])
end
return 1
"""


# Retire every view of a user unless views of this version (or a later one) were written already.
_RETIRE_BEFORE_LUA = """
if tonumber(ARGV[1]) <= tonumber(redis.call('GET', KEYS[1]) or '-1') then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], ARGV[2], 'PX', ARGV[3])
end
return 1
"""


class CacheKey:
    """The Redis keys of one cached view."""

    __slots__ = ("filter_key", "generation", "kind", "lock", "user_id", "value")

    def __init__(self, kind: CacheKind, user_id: str, filter_key: str = "") -> None:
        # A brace inside the user id would move the hash tag and scatter the user's keys over slots.
        if not user_id or "{" in user_id or "}" in user_id:
            raise ValueError("user id must be non-empty and free of braces")
        self.kind = kind
        self.user_id = user_id
        self.filter_key = filter_key
        base = f"{kind.value}:cross-chain:{{{user_id}}}"
        self.value = f"{base}:{filter_key}" if filter_key else base
        self.generation = f"gen:{base}"
        self.lock = f"lock:{self.value}"


def version_key(user_id: str) -> str:
    """The highest portfolio version whose views were written (same hash tag as the user's views)."""
    return f"ver:cross-chain:{{{user_id}}}"


def jittered_ttl_ms(ttl_s: int, jitter_ratio: float, rng: random.Random) -> int:
    """The TTL shortened by a random share of at most jitter_ratio.

    Shortening (never lengthening) keeps the configured TTL the bound on how stale a view can be.
    """
    return max(1, int(ttl_s * 1000 * (1 - rng.random() * jitter_ratio)))


class KindStats(CamelModel):
    hits: int = 0
    misses: int = 0
    errors: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def hit_rate(self) -> float:
        reads = self.hits + self.misses
        return self.hits / reads if reads else 0.0


class CacheStats(KindStats):
    """Totals since the cache was created, and the same counts per kind."""

    kinds: dict[CacheKind, KindStats]


class PortfolioCache:
    """Cached response bodies of a user's views; works with redis.Redis and redis.RedisCluster alike.

    `client` None switches the cache off: reads miss, writes are skipped, get_or_load always loads.
    """

    def __init__(
        self,
        client: RedisClient | None,
        settings: Settings,
        *,
        lock_ttl_ms: int = 3_000,
        wait_ms: int = 500,
        poll_interval_ms: int = 10,
        rng: random.Random | None = None,
    ) -> None:
        # Any: redis.Redis and RedisCluster share the commands used here but no common type.
        self._client: Any = cast(Any, client)
        self._unavailable = _redis_unavailable_errors()
        self._ttl_s = {
            CacheKind.PORTFOLIO: settings.portfolio_cache_ttl_s,
            CacheKind.ASSETS: settings.portfolio_cache_ttl_s,
            CacheKind.PERFORMANCE: settings.portfolio_cache_ttl_s,
            CacheKind.TRANSACTIONS: settings.transactions_cache_ttl_s,
        }
        self._jitter_ratio = settings.cache_ttl_jitter_ratio
        self._generation_ttl_ms = 2 * max(self._ttl_s.values()) * 1000
        self._lock_ttl_ms = lock_ttl_ms
        self._wait_s = wait_ms / 1000
        self._poll_s = poll_interval_ms / 1000
        self._rng = rng or random.Random()  # noqa: S311 - TTL jitter, not a secret
        self._counts: Counter[tuple[CacheKind, str]] = Counter()
        self._counts_lock = threading.Lock()
        self._unpublished: Counter[str] = Counter()
        self._next_publish = 0.0
        if client is not None:
            self._write_current = self._client.register_script(_WRITE_CURRENT_LUA)
            self._fill_script = self._client.register_script(_FILL_LUA)
            self._release_script = self._client.register_script(_RELEASE_LUA)
            self._new_generation = self._client.register_script(_NEW_GENERATION_LUA)
            self._replace_script = self._client.register_script(_REPLACE_LUA)
            self._retire_before_script = self._client.register_script(_RETIRE_BEFORE_LUA)

    @property
    def enabled(self) -> bool:
        return self._client is not None

    def ttl_ms(self, kind: CacheKind) -> int:
        """A fresh jittered TTL for a value of this kind."""
        return jittered_ttl_ms(self._ttl_s[kind], self._jitter_ratio, self._rng)

    # Reads

    def get(self, kind: CacheKind, user_id: str, filter_key: str = "") -> bytes | None:
        """The cached body exactly as stored, or None on a miss or when Redis is unavailable."""
        key = CacheKey(kind, user_id, filter_key)
        if self._client is None:
            self._record(kind, "misses")
            return None
        try:
            _, body = self._read(key)
        except self._unavailable as error:
            self._record_error(kind, "get", error)
            self._record(kind, "misses")
            return None
        self._record(kind, "hits" if body is not None else "misses")
        return body

    def get_or_load(self, kind: CacheKind, user_id: str, loader: Callable[[], bytes], filter_key: str = "") -> bytes:
        """The cached body, or the loader's body (then cached); concurrent misses on a key load once.

        The loader's exceptions propagate; the lock is released first so waiters do not wait for nothing.
        """
        key = CacheKey(kind, user_id, filter_key)
        if self._client is None:
            self._record(kind, "misses")
            return loader()
        try:
            generation, body = self._read(key)
            if body is not None:
                self._record(kind, "hits")
                return body
            lock_token = self._try_lock(key)
            if lock_token is None:
                body = self._wait_for_fill(key)
                if body is not None:
                    self._record(kind, "hits")
                    return body
        except self._unavailable as error:
            self._record_error(kind, "get_or_load", error)
            self._record(kind, "misses")
            return loader()
        self._record(kind, "misses")
        try:
            body = loader()
        except BaseException:
            if lock_token is not None:
                self._release(key, lock_token)
            raise
        self._fill(key, generation, body, lock_token or "")
        return body

    # Writes

    def set(self, kind: CacheKind, user_id: str, body: bytes, filter_key: str = "") -> bool:
        """Store a body under the current generation; False when Redis is unavailable."""
        return self.set_many(user_id, {(kind, filter_key): body})

    def set_many(self, user_id: str, bodies: Mapping[tuple[CacheKind, str], bytes]) -> bool:
        """Store several views of one user in one round trip (warm writes); False when Redis is unavailable."""
        if self._client is None:
            return False
        if not bodies:
            return True
        keys: list[str] = []
        args: list[bytes | int] = [INITIAL_GENERATION]
        for (kind, filter_key), body in bodies.items():
            key = CacheKey(kind, user_id, filter_key)
            keys += [key.generation, key.value]
            args += [body, self.ttl_ms(kind)]
        try:
            self._write_current(keys=keys, args=args)
        except self._unavailable as error:
            for kind in {kind for kind, _ in bodies}:
                self._record_error(kind, "set", error)
            return False
        return True

    def replace_views(
        self,
        user_id: str,
        version: int,
        bodies: Mapping[tuple[CacheKind, str], bytes],
        kinds: Iterable[CacheKind] = tuple(CacheKind),
    ) -> bool:
        """Retire every cached view of these kinds (all of them after a write; the priced ones after a
        refresh, which leaves transaction pages alone) and store `bodies`, atomically, unless views of a
        later portfolio version were already written.

        Writers finish in any order (a refresh that read version 5 may warm after a transaction
        saved and warmed version 6); the version check keeps the older views out. False when
        refused or when Redis is unavailable.
        """
        if self._client is None:
            return False
        keys, args = self._replacement(user_id, version, bodies, kinds)
        try:
            return bool(self._replace_script(keys=keys, args=args))
        except self._unavailable as error:
            self._record_replace_error(error)
            return False

    def replace_views_of_many(
        self, replacements: Sequence[ViewReplacement], kinds: Iterable[CacheKind] = tuple(CacheKind)
    ) -> list[bool]:
        """replace_views for several users in one round trip: what a refresh does for a message's
        users. Each user's keys share a slot, so on a cluster the pipeline sends every node the
        scripts of its users. The script goes as EVAL, not EVALSHA: a cluster pipeline cannot load
        a script a node lost and send it again. One answer per user: False where refused or not
        written (a user id no key can be made of included: the others are written all the same)."""
        if self._client is None or not replacements:
            return [False] * len(replacements)
        kinds = tuple(dict.fromkeys(kinds))
        sent: list[int] = []  # the indexes of the replacements in the pipeline
        try:
            pipeline = self._client.pipeline(transaction=False)
            for index, replacement in enumerate(replacements):
                try:
                    keys, args = self._replacement(replacement.user_id, replacement.version, replacement.bodies, kinds)
                except ValueError as error:
                    logger.warning("views not replaced", extra={"error": str(error)})
                    continue
                # As a command: a cluster pipeline's eval() is not Redis's EVAL.
                pipeline.execute_command("EVAL", _REPLACE_LUA, len(keys), *keys, *args)
                sent.append(index)
            answers = pipeline.execute(raise_on_error=False) if sent else []
        except self._unavailable as error:
            self._record_replace_error(error)
            return [False] * len(replacements)
        written = [False] * len(replacements)
        for index, answer in zip(sent, answers, strict=True):
            if isinstance(answer, BaseException):
                self._record_replace_error(answer)
            written[index] = answer == 1
        return written

    def _record_replace_error(self, error: BaseException) -> None:
        for kind in CacheKind:
            self._record_error(kind, "replace", error)

    def _replacement(
        self,
        user_id: str,
        version: int,
        bodies: Mapping[tuple[CacheKind, str], bytes],
        kinds: Iterable[CacheKind],
    ) -> tuple[list[str], list[bytes | int | str]]:
        """The keys and arguments of _REPLACE_LUA for one user."""
        renewed = [CacheKey(kind, user_id).generation for kind in dict.fromkeys(kinds)]
        values: list[str] = []
        args: list[bytes | int | str] = [
            version,
            secrets.token_hex(GENERATION_BYTES // 2),
            self._generation_ttl_ms,
            len(renewed),
        ]
        for (kind, filter_key), body in bodies.items():
            values.append(CacheKey(kind, user_id, filter_key).value)
            args += [body, self.ttl_ms(kind)]
        return [version_key(user_id), *renewed, *values], args

    # Invalidation

    def retire_views_before(self, user_id: str, version: int) -> bool:
        """Retire every cached view of the user unless views of `version` or a later one were written
        (the writer of `version` warmed them). True once no view older than `version` can be served,
        including when there is no cache; False when Redis is unavailable."""
        if self._client is None:
            return True
        renewed = [CacheKey(kind, user_id).generation for kind in CacheKind]
        token = secrets.token_hex(GENERATION_BYTES // 2)
        try:
            self._retire_before_script(
                keys=[version_key(user_id), *renewed], args=[version, token, self._generation_ttl_ms]
            )
        except self._unavailable as error:
            for kind in CacheKind:
                self._record_error(kind, "retire", error)
            return False
        return True

    def invalidate(self, user_id: str, kinds: Iterable[CacheKind]) -> bool:
        """Retire every cached value of these kinds for the user (all filter keys) in one round trip."""
        chosen = list(dict.fromkeys(kinds))
        if self._client is None:
            return False
        if not chosen:
            return True
        generation_keys = [CacheKey(kind, user_id).generation for kind in chosen]
        token = secrets.token_hex(GENERATION_BYTES // 2)
        try:
            self._new_generation(keys=generation_keys, args=[token, self._generation_ttl_ms])
        except self._unavailable as error:
            for kind in chosen:
                self._record_error(kind, "invalidate", error)
            return False
        return True

    def invalidate_user(self, user_id: str) -> bool:
        """Every kind and every filter key of the user (an operator's or a test's reset; writes replace views)."""
        return self.invalidate(user_id, CacheKind)

    def invalidate_portfolio(self, user_id: str) -> bool:
        """The priced views (portfolio, assets, performance), keeping transaction pages."""
        return self.invalidate(user_id, PRICED_KINDS)

    # Housekeeping

    def stats(self) -> CacheStats:
        """Every read counts as a hit or a miss (an unavailable Redis is a miss); errors are counted besides."""
        with self._counts_lock:
            counts = dict(self._counts)
        kinds = {
            kind: KindStats(
                hits=counts.get((kind, "hits"), 0),
                misses=counts.get((kind, "misses"), 0),
                errors=counts.get((kind, "errors"), 0),
            )
            for kind in CacheKind
        }
        return CacheStats(
            hits=sum(k.hits for k in kinds.values()),
            misses=sum(k.misses for k in kinds.values()),
            errors=sum(k.errors for k in kinds.values()),
            kinds=kinds,
        )

    def publish_metrics(self) -> None:
        """Hand the counts gathered since the last call to Powertools as CacheHit / CacheMiss / CacheError.

        Called by itself at most once per METRICS_PUBLISH_INTERVAL_S; a handler may call it before its
        metrics are flushed so that every count lands in the invocation that caused it.
        """
        with self._counts_lock:
            unpublished, self._unpublished = self._unpublished, Counter()
            self._next_publish = time.monotonic() + METRICS_PUBLISH_INTERVAL_S
        for outcome, count in unpublished.items():
            metrics.add_metric(name=_METRIC_NAMES[outcome], unit=MetricUnit.Count, value=count)

    def close(self) -> None:
        """Close the client's connections (a later call would open new ones)."""
        if self._client is not None:
            self._client.close()

    # Internals

    def _read(self, key: CacheKey) -> tuple[bytes, bytes | None]:
        """The current generation and the body stored under it, in one round trip."""
        generation, stored = self._client.mget(key.generation, key.value)
        return _current_body(generation, stored)

    def _try_lock(self, key: CacheKey) -> str | None:
        token = secrets.token_hex(8)
        acquired = self._client.set(key.lock, token, nx=True, px=self._lock_ttl_ms)
        return token if acquired else None

    def _wait_for_fill(self, key: CacheKey) -> bytes | None:
        """Poll until another caller's fill appears; None when its lock is gone without one or time is up."""
        deadline = time.monotonic() + self._wait_s
        while time.monotonic() < deadline:
            time.sleep(self._poll_s)
            generation, stored, lock = self._client.mget(key.generation, key.value, key.lock)
            _, body = _current_body(generation, stored)
            if body is not None:
                return body
            if lock is None:
                return None
        return None

    def _fill(self, key: CacheKey, generation: bytes, body: bytes, lock_token: str) -> None:
        try:
            self._fill_script(
                keys=[key.generation, key.value, key.lock],
                args=[INITIAL_GENERATION, generation, body, self.ttl_ms(key.kind), lock_token],
            )
        except self._unavailable as error:
            self._record_error(key.kind, "fill", error)

    def _release(self, key: CacheKey, lock_token: str) -> None:
        try:
            self._release_script(keys=[key.lock], args=[lock_token])
        except self._unavailable as error:
            self._record_error(key.kind, "release", error)

    def _record(self, kind: CacheKind, outcome: str) -> None:
        with self._counts_lock:
            self._counts[(kind, outcome)] += 1
            self._unpublished[outcome] += 1
            due = time.monotonic() >= self._next_publish
        if due:
            self.publish_metrics()

    def _record_error(self, kind: CacheKind, operation: str, error: BaseException) -> None:
        self._record(kind, "errors")
        # The type and message only: redis-py messages name the host and the failure, never credentials.
        logger.warning(
            "Redis cache unavailable",
            extra={
                "operation": operation,
                "kind": kind.value,
                "error_type": type(error).__name__,
                "error": str(error)[:200],
            },
        )


_METRIC_NAMES = {"hits": "CacheHit", "misses": "CacheMiss", "errors": "CacheError"}


def _current_body(generation: bytes | None, stored: bytes | None) -> tuple[bytes, bytes | None]:
    current = generation or INITIAL_GENERATION
    if stored is not None and len(current) == GENERATION_BYTES and stored.startswith(current):
        return current, stored[GENERATION_BYTES:]
    return current, None
