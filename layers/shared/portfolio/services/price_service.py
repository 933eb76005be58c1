"""Prices for many tokens at once: memory tier -> Redis tier -> coins API -> last-known, in that order.

Tokens are normalized and grouped by the coin id DeFiLlama is asked for (natives as `coingecko:<id>`),
so casing variants, duplicates and one native on several chains cost one coin. Only fresh prices with
enough confidence fill the caches and the last-known store; a coin the API gives no fresh price for
falls back to its last-known price (stale, with its own timestamp) or stays unpriced. Never zero.
That outcome is remembered in Redis for one refresh interval, so the coin is not asked for again
on every write.

`sweep` is the refresh's one pricing pass: every held coin goes to the API once, whatever the
tiers hold, in chunks fetched concurrently; everything else reads what it left in the tiers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from datetime import datetime
from decimal import Decimal

from aws_lambda_powertools.metrics import MetricUnit

from portfolio.domain.prices import PriceQuote, PriceSource
from portfolio.domain.tokens import TokenId, normalize_token
from portfolio.observability import logger, metrics
from portfolio.services.ports import (
    ChunkResult,
    CoinsApi,
    PricesUnavailableError,
    PriceTier,
    PriceTierUnavailableError,
    SharedPriceTier,
    SweepResult,
)
from portfolio.settings import Settings


@dataclass
class PriceStats:
    """Counters since the service was built; coin counts are per unique coin id, not per token."""

    memory_hits: int = 0
    redis_hits: int = 0
    misses: int = 0  # coins found in neither cache tier
    api_calls: int = 0  # HTTP requests, retries included
    coins_requested: int = 0  # coin ids sent to the API, once per chunk
    retries: int = 0
    failures: int = 0  # chunks that got no usable answer
    low_confidence: int = 0
    stale_served: int = 0
    unpriced: int = 0
    redis_errors: int = 0
    last_known_errors: int = 0
    api_latency_ms_sum: float = 0.0

    @property
    def api_latency_ms_mean(self) -> float:
        return self.api_latency_ms_sum / self.api_calls if self.api_calls else 0.0

    def add(self, other: PriceStats) -> None:
        for stat in fields(self):
            setattr(self, stat.name, getattr(self, stat.name) + getattr(other, stat.name))


_METRICS: tuple[tuple[str, str, MetricUnit], ...] = (
    ("memory_hits", "PriceMemoryHits", MetricUnit.Count),
    ("redis_hits", "PriceRedisHits", MetricUnit.Count),
    ("misses", "PriceCacheMisses", MetricUnit.Count),
    ("api_calls", "PriceApiCalls", MetricUnit.Count),
    ("coins_requested", "PriceCoinsRequested", MetricUnit.Count),
    ("retries", "PriceApiRetries", MetricUnit.Count),
    ("failures", "PriceApiFailures", MetricUnit.Count),
    ("low_confidence", "LowConfidencePrices", MetricUnit.Count),
    ("stale_served", "StalePrices", MetricUnit.Count),
    ("unpriced", "UnpricedCoins", MetricUnit.Count),
    ("redis_errors", "PriceCacheErrors", MetricUnit.Count),
    ("last_known_errors", "LastKnownPriceErrors", MetricUnit.Count),
)


_MAX_REMEMBERED_TOKEN_IDS = 100_000
# (coin, moment) pairs one /batchHistorical call asks for; its query string stays a few KB.
HISTORICAL_PAIRS_PER_CALL = 100
MAX_REMEMBERED_HISTORICAL_PRICES = 50_000


class _MemoryEntry:
    """A coin's quote in the memory tier, with the per-token copies already served from it.

    Quotes are immutable, so the copy made for a token on the first hit is handed out again on
    every later hit until the entry expires.
    """

    __slots__ = ("expires_at", "quote", "served")

    def __init__(self, expires_at: float, quote: PriceQuote) -> None:
        self.expires_at = expires_at
        self.quote = quote
        self.served: dict[str, PriceQuote] = {}

    def served_as(self, token_key: str) -> PriceQuote:
        served = self.served.get(token_key)
        if served is None:
            served = self.quote.model_copy(update={"token": token_key, "source": PriceSource.MEMORY, "stale": False})
            self.served[token_key] = served
        return served


class PriceService:
    """One per container: the memory tier lives as long as the instance."""

    def __init__(
        self,
        coins_api: CoinsApi,
        redis_tier: SharedPriceTier | None,
        last_known_store: PriceTier | None,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._coins_api = coins_api
        self._redis_tier = redis_tier
        self._last_known = last_known_store
        self._batch_size = settings.price_batch_size
        self._max_concurrency = settings.price_max_concurrency
        self._memory_ttl_s = settings.price_memory_ttl_s
        self._min_confidence = settings.price_min_confidence
        self._clock = clock
        self._memory: dict[str, _MemoryEntry] = {}
        self._historical: dict[tuple[str, int], Decimal] = {}  # (coin, unix time) -> price: never changes
        self._token_ids: dict[TokenId | str, tuple[str, str]] = {}
        self._stats = PriceStats()
        self._lock = threading.Lock()

    def get_price(self, token: TokenId | str, *, deadline: float | None = None) -> PriceQuote | None:
        """The token's quote, or None when it is unpriced."""
        _coin_id, key = self._coin_and_key(token)
        return self.get_prices([key], deadline=deadline).get(key)

    def get_prices(self, tokens: Iterable[TokenId | str], *, deadline: float | None = None) -> dict[str, PriceQuote]:
        """Quotes keyed by TokenId.key; unpriced tokens are absent. `deadline` is a time.monotonic() value."""
        tokens_by_coin = self._group_by_coin(tokens)
        tally = PriceStats()
        priced, missing = self._read_memory(tokens_by_coin, tally)
        if missing:
            from_redis = self._read_redis(missing, tally)
            known = {coin_id: quote for coin_id, quote in from_redis.items() if quote is not None}
            self._remember(quote for quote in known.values() if not quote.stale)
            missing = [coin_id for coin_id in missing if coin_id not in from_redis]
            _serve(known, tokens_by_coin, priced)
            tally.stale_served += sum(1 for quote in known.values() if quote.stale)
            tally.unpriced += len(from_redis) - len(known)
        tally.misses = len(missing)
        if missing:
            fresh = self._fetch_fresh(missing, deadline, tally)
            self._store_fresh(fresh, tally)
            _serve(fresh, tokens_by_coin, priced)
            not_fresh = [coin_id for coin_id in missing if coin_id not in fresh]
            if not_fresh:
                stale = self._fall_back(not_fresh, tally)
                _serve(stale, tokens_by_coin, priced)
        self._record(tally)
        return priced

    def sweep(self, tokens: Iterable[TokenId | str], *, deadline: float | None = None) -> SweepResult:
        """Every coin of `tokens` from the coins API once (no cache tier is read), then stored in
        every tier; a coin with no fresh price falls back to its last-known price, as in get_prices."""
        coin_ids = list(self._group_by_coin(tokens))
        tally = PriceStats(misses=len(coin_ids))
        fresh = self._fetch_fresh(coin_ids, deadline, tally) if coin_ids else {}
        self._store_fresh(fresh, tally)
        not_fresh = [coin_id for coin_id in coin_ids if coin_id not in fresh]
        stale = self._fall_back(not_fresh, tally) if not_fresh else {}
        self._record(tally)
        return SweepResult(
            fresh=fresh,
            stale=stale,
            unpriced=[coin_id for coin_id in not_fresh if coin_id not in stale],
            api_calls=tally.api_calls,
        )

    def _fall_back(self, not_fresh: list[str], tally: PriceStats) -> dict[str, PriceQuote]:
        """Last-known quotes (stale) for coins the API gave nothing fresh for, remembered for one interval."""
        stale = self._read_last_known(not_fresh, tally)
        tally.stale_served += len(stale)
        tally.unpriced += len(not_fresh) - len(stale)
        if self._redis_tier is not None:
            try:
                self._redis_tier.put_no_fresh({coin_id: stale.get(coin_id) for coin_id in not_fresh})
            except PriceTierUnavailableError as error:
                tally.redis_errors += 1
                logger.warning("price cache tier not written", extra={"error": str(error)})
        return stale

    def close(self) -> None:
        """Releases the coins API's connections (a container never needs to; tools and tests do)."""
        close = getattr(self._coins_api, "close", None)
        if close is not None:
            close()

    def clear_cache(self) -> None:
        """Forgets the memory tier (the shared tiers are left alone)."""
        with self._lock:
            self._memory.clear()

    def stats(self) -> PriceStats:
        with self._lock:
            return replace(self._stats)

    def _coin_and_key(self, token: TokenId | str) -> tuple[str, str]:
        """(coin id to ask for, normalized token key); raises InvalidInputError for a malformed token."""
        # Holdings name the same tokens call after call; parsing each once keeps the warm path cheap.
        known = self._token_ids.get(token)
        if known is None:
            if isinstance(token, TokenId):
                token_id = normalize_token(token.chain, token.address, field="token")
            else:
                token_id = TokenId.parse(token)
            if len(self._token_ids) >= _MAX_REMEMBERED_TOKEN_IDS:
                self._token_ids.clear()
            known = self._token_ids[token] = (token_id.price_coin_id, token_id.key)
        return known

    def _group_by_coin(self, tokens: Iterable[TokenId | str]) -> dict[str, list[str]]:
        """Coin id -> the distinct token keys that asked for it, in first-seen order."""
        tokens_by_coin: dict[str, list[str]] = {}
        for token in tokens:
            coin_id, key = self._coin_and_key(token)
            keys = tokens_by_coin.setdefault(coin_id, [])
            if key not in keys:
                keys.append(key)
        return tokens_by_coin

    def _read_memory(
        self, tokens_by_coin: dict[str, list[str]], tally: PriceStats
    ) -> tuple[dict[str, PriceQuote], list[str]]:
        """Per-token quotes this container still holds, and the coins it does not."""
        now = self._clock()
        priced: dict[str, PriceQuote] = {}
        missing: list[str] = []
        with self._lock:
            for coin_id, token_keys in tokens_by_coin.items():
                entry = self._memory.get(coin_id)
                if entry is None or entry.expires_at <= now:
                    missing.append(coin_id)
                    continue
                for token_key in token_keys:
                    priced[token_key] = entry.served_as(token_key)
        tally.memory_hits = len(tokens_by_coin) - len(missing)
        return priced, missing

    def _read_redis(self, coin_ids: list[str], tally: PriceStats) -> dict[str, PriceQuote | None]:
        if self._redis_tier is None:
            return {}
        try:
            found = self._redis_tier.get_many(coin_ids)
        except PriceTierUnavailableError as error:
            tally.redis_errors += 1
            logger.warning("price cache tier skipped", extra={"error": str(error)})
            return {}
        tally.redis_hits = sum(1 for quote in found.values() if quote is not None and not quote.stale)
        return found

    def prices_at(
        self, tokens: Iterable[TokenId], at: datetime, *, deadline: float | None = None
    ) -> dict[TokenId, Decimal]:
        """Market prices at a past moment, straight from the coins API (no tier holds them), in chunks."""
        unique = list(dict.fromkeys(tokens))
        if not unique:
            return {}
        tally = PriceStats()
        coin_ids = list({token.price_coin_id for token in unique})
        quotes = self._fetch_fresh(coin_ids, deadline, tally, at=at)
        self._record(tally)
        if tally.failures >= -(-len(coin_ids) // self._batch_size):
            raise PricesUnavailableError(f"no historical price request succeeded ({tally.failures} failed)")
        return {token: quotes[token.price_coin_id].price for token in unique if token.price_coin_id in quotes}

    def prices_at_many(
        self, moments: Iterable[tuple[TokenId, datetime]], *, deadline: float | None = None
    ) -> dict[tuple[TokenId, datetime], Decimal]:
        """Prices at past moments from `/batchHistorical`, HISTORICAL_PAIRS_PER_CALL (coin, moment) pairs a
        call; a past moment's price does not change, so what was found is kept for this container's life."""
        wanted = {(token, at): (token.price_coin_id, int(at.timestamp())) for token, at in moments}
        with self._lock:
            missing = sorted({pair for pair in wanted.values() if pair not in self._historical})
        if missing:
            self._fetch_historical_pairs(missing, deadline)
        with self._lock:
            return {key: price for key, pair in wanted.items() if (price := self._historical.get(pair)) is not None}

    def _fetch_historical_pairs(self, pairs: list[tuple[str, int]], deadline: float | None) -> None:
        chunks = [pairs[i : i + HISTORICAL_PAIRS_PER_CALL] for i in range(0, len(pairs), HISTORICAL_PAIRS_PER_CALL)]

        def fetch(chunk: list[tuple[str, int]]) -> ChunkResult:
            moments: dict[str, list[int]] = {}
            for coin_id, at in chunk:
                moments.setdefault(coin_id, []).append(at)
            return self._coins_api.fetch_batch_historical(moments, deadline=deadline)

        workers = min(self._max_concurrency, len(chunks))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="coins-api") as pool:
            results = list(pool.map(fetch, chunks))
        tally = PriceStats()
        found: dict[tuple[str, int], Decimal] = {}
        for result in results:
            tally.api_calls += result.attempts
            tally.retries += result.retries
            if not result.ok:
                tally.failures += 1
                logger.warning("coins API historical chunk failed", extra={"error": result.error})
                continue
            for key, quote in result.quotes.items():
                if quote.confidence is not None and quote.confidence < self._min_confidence:
                    tally.low_confidence += 1
                    continue
                coin_id, _, at = key.rpartition("@")
                found[(coin_id, int(at))] = quote.price
        self._record(tally)
        with self._lock:
            if len(self._historical) + len(found) > MAX_REMEMBERED_HISTORICAL_PRICES:
                self._historical.clear()
            self._historical.update(found)
        if tally.failures:
            # A price the coins API did not answer is not a price it does not have: nothing is guessed.
            raise PricesUnavailableError(f"{tally.failures} of {len(chunks)} historical price requests failed")

    def _fetch_fresh(
        self, coin_ids: list[str], deadline: float | None, tally: PriceStats, *, at: datetime | None = None
    ) -> dict[str, PriceQuote]:
        chunks = [coin_ids[i : i + self._batch_size] for i in range(0, len(coin_ids), self._batch_size)]

        def fetch(chunk: list[str]) -> ChunkResult:
            if at is None:
                return self._coins_api.fetch_current(chunk, deadline=deadline)
            return self._coins_api.fetch_historical(chunk, at, deadline=deadline)

        if len(chunks) == 1:
            results = [fetch(chunks[0])]
        else:
            workers = min(self._max_concurrency, len(chunks))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="coins-api") as pool:
                results = list(pool.map(fetch, chunks))
        fresh: dict[str, PriceQuote] = {}
        for result in results:
            tally.api_calls += result.attempts
            tally.retries += result.retries
            tally.api_latency_ms_sum += sum(result.latency_ms)
            if result.attempts:
                tally.coins_requested += len(result.requested)
            if not result.ok:
                tally.failures += 1
                logger.warning("coins API chunk failed", extra={"error": result.error, "coins": len(result.requested)})
                continue
            for coin_id, quote in result.quotes.items():
                if quote.confidence is not None and quote.confidence < self._min_confidence:
                    tally.low_confidence += 1
                    continue
                fresh[coin_id] = quote
        return fresh

    def _store_fresh(self, fresh: dict[str, PriceQuote], tally: PriceStats) -> None:
        if not fresh:
            return
        self._remember(fresh.values())
        if self._redis_tier is not None:
            try:
                self._redis_tier.put_many(fresh.values())
            except PriceTierUnavailableError as error:
                tally.redis_errors += 1
                logger.warning("price cache tier not written", extra={"error": str(error)})
        if self._last_known is not None:
            try:
                self._last_known.put_many(fresh.values())
            except PriceTierUnavailableError as error:
                tally.last_known_errors += 1
                logger.warning("last-known prices not written", extra={"error": str(error)})

    def _read_last_known(self, coin_ids: list[str], tally: PriceStats) -> dict[str, PriceQuote]:
        if self._last_known is None:
            return {}
        try:
            found = self._last_known.get_many(coin_ids)
        except PriceTierUnavailableError as error:
            tally.last_known_errors += 1
            logger.warning("last-known prices unavailable", extra={"error": str(error)})
            return {}
        return {
            coin_id: quote.model_copy(update={"source": PriceSource.LAST_KNOWN, "stale": True})
            for coin_id, quote in found.items()
            if coin_id in coin_ids
        }

    def _remember(self, quotes: Iterable[PriceQuote]) -> None:
        if self._memory_ttl_s <= 0:
            return
        expires_at = self._clock() + self._memory_ttl_s
        with self._lock:
            for quote in quotes:
                self._memory[quote.token] = _MemoryEntry(expires_at, quote)

    def _record(self, tally: PriceStats) -> None:
        with self._lock:
            self._stats.add(tally)
        _emit_metrics(tally)


def _serve(quotes: dict[str, PriceQuote], tokens_by_coin: dict[str, list[str]], priced: dict[str, PriceQuote]) -> None:
    """Adds each coin's quote under every token key that asked for that coin."""
    for coin_id, quote in quotes.items():
        for token_key in tokens_by_coin[coin_id]:
            priced[token_key] = quote.model_copy(update={"token": token_key})


def _emit_metrics(tally: PriceStats) -> None:
    cache_hits = tally.memory_hits + tally.redis_hits
    try:
        if cache_hits:
            metrics.add_metric(name="PriceCacheHits", unit=MetricUnit.Count, value=cache_hits)
        for attribute, name, unit in _METRICS:
            value = getattr(tally, attribute)
            if value:
                metrics.add_metric(name=name, unit=unit, value=value)
        if tally.api_calls:
            metrics.add_metric(name="PriceApiLatency", unit=MetricUnit.Milliseconds, value=tally.api_latency_ms_mean)
    except Exception as error:  # metrics must never cost a price
        logger.debug("price metrics not emitted", extra={"error": type(error).__name__})
