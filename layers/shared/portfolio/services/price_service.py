"""Prices for many tokens at once: memory tier -> Redis tier -> coins API -> last-known, in that order.

Tokens are normalized and grouped by the coin id DeFiLlama is asked for (natives as `coingecko:<id>`),
so casing variants, duplicates and one native on several chains cost one coin. Only fresh prices with
enough confidence fill the caches and the last-known store; a coin the API gives no fresh price for
falls back to its last-known price (stale, with its own timestamp) or stays unpriced. Never zero.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields, replace
from typing import Protocol

from aws_lambda_powertools.metrics import MetricUnit

from portfolio.adapters.coins_api import ChunkResult
from portfolio.adapters.last_known_prices import LastKnownPricesUnavailableError
from portfolio.adapters.price_redis_tier import PriceCacheUnavailableError
from portfolio.domain.prices import PriceQuote, PriceSource
from portfolio.domain.tokens import TokenId, normalize_token
from portfolio.observability import logger, metrics
from portfolio.settings import Settings


class CoinsApiPort(Protocol):
    def fetch_current(self, coin_ids: Sequence[str], *, deadline: float | None = None) -> ChunkResult: ...


class PriceTierPort(Protocol):
    def get_many(self, coin_ids: Sequence[str]) -> dict[str, PriceQuote]: ...

    def put_many(self, quotes: Iterable[PriceQuote]) -> None: ...


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


class PriceService:
    """One per container: the memory tier lives as long as the instance."""

    def __init__(
        self,
        coins_api: CoinsApiPort,
        redis_tier: PriceTierPort | None,
        last_known_store: PriceTierPort | None,
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
        self._memory: dict[str, tuple[float, PriceQuote]] = {}
        self._stats = PriceStats()
        self._lock = threading.Lock()

    def get_price(self, token: TokenId | str, *, deadline: float | None = None) -> PriceQuote | None:
        """The token's quote, or None when it is unpriced."""
        key = _normalize(token).key
        return self.get_prices([key], deadline=deadline).get(key)

    def get_prices(self, tokens: Iterable[TokenId | str], *, deadline: float | None = None) -> dict[str, PriceQuote]:
        """Quotes keyed by TokenId.key; unpriced tokens are absent. `deadline` is a time.monotonic() value."""
        tokens_by_coin = _group_by_coin(tokens)
        tally = PriceStats()
        quotes = self._read_memory(tokens_by_coin, tally)
        missing = [coin_id for coin_id in tokens_by_coin if coin_id not in quotes]
        if missing:
            from_redis = self._read_redis(missing, tally)
            self._remember(from_redis.values())
            quotes.update(from_redis)
            missing = [coin_id for coin_id in missing if coin_id not in from_redis]
        tally.misses = len(missing)
        if missing:
            fresh = self._fetch_fresh(missing, deadline, tally)
            self._store_fresh(fresh, tally)
            quotes.update(fresh)
            not_fresh = [coin_id for coin_id in missing if coin_id not in fresh]
            if not_fresh:
                stale = self._read_last_known(not_fresh, tally)
                tally.stale_served = len(stale)
                tally.unpriced = len(not_fresh) - len(stale)
                quotes.update(stale)
        self._record(tally)
        return {
            token_key: quote.model_copy(update={"token": token_key})
            for coin_id, quote in quotes.items()
            for token_key in tokens_by_coin[coin_id]
        }

    def clear_cache(self) -> None:
        """Forgets the memory tier (the shared tiers are left alone)."""
        with self._lock:
            self._memory.clear()

    def stats(self) -> PriceStats:
        with self._lock:
            return replace(self._stats)

    def _read_memory(self, tokens_by_coin: dict[str, list[str]], tally: PriceStats) -> dict[str, PriceQuote]:
        now = self._clock()
        found: dict[str, PriceQuote] = {}
        with self._lock:
            for coin_id in tokens_by_coin:
                entry = self._memory.get(coin_id)
                if entry is None:
                    continue
                expires_at, quote = entry
                if expires_at <= now:
                    del self._memory[coin_id]
                    continue
                found[coin_id] = quote.model_copy(update={"source": PriceSource.MEMORY})
        tally.memory_hits = len(found)
        return found

    def _read_redis(self, coin_ids: list[str], tally: PriceStats) -> dict[str, PriceQuote]:
        if self._redis_tier is None:
            return {}
        try:
            found = self._redis_tier.get_many(coin_ids)
        except PriceCacheUnavailableError as error:
            tally.redis_errors += 1
            logger.warning("price cache tier skipped", extra={"error": str(error)})
            return {}
        tally.redis_hits = len(found)
        return found

    def _fetch_fresh(self, coin_ids: list[str], deadline: float | None, tally: PriceStats) -> dict[str, PriceQuote]:
        chunks = [coin_ids[i : i + self._batch_size] for i in range(0, len(coin_ids), self._batch_size)]
        if len(chunks) == 1:
            results = [self._coins_api.fetch_current(chunks[0], deadline=deadline)]
        else:
            workers = min(self._max_concurrency, len(chunks))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="coins-api") as pool:
                results = list(pool.map(lambda chunk: self._coins_api.fetch_current(chunk, deadline=deadline), chunks))
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
            except PriceCacheUnavailableError as error:
                tally.redis_errors += 1
                logger.warning("price cache tier not written", extra={"error": str(error)})
        if self._last_known is not None:
            try:
                self._last_known.put_many(fresh.values())
            except LastKnownPricesUnavailableError as error:
                tally.last_known_errors += 1
                logger.warning("last-known prices not written", extra={"error": str(error)})

    def _read_last_known(self, coin_ids: list[str], tally: PriceStats) -> dict[str, PriceQuote]:
        if self._last_known is None:
            return {}
        try:
            found = self._last_known.get_many(coin_ids)
        except LastKnownPricesUnavailableError as error:
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
                self._memory[quote.token] = (expires_at, quote)

    def _record(self, tally: PriceStats) -> None:
        with self._lock:
            self._stats.add(tally)
        _emit_metrics(tally)


def _normalize(token: TokenId | str) -> TokenId:
    if isinstance(token, TokenId):
        return normalize_token(token.chain, token.address, field="token")
    return TokenId.parse(token)


def _group_by_coin(tokens: Iterable[TokenId | str]) -> dict[str, list[str]]:
    """Coin id -> the distinct token keys that asked for it, in first-seen order."""
    tokens_by_coin: dict[str, list[str]] = {}
    for token in tokens:
        token_id = _normalize(token)
        keys = tokens_by_coin.setdefault(token_id.price_coin_id, [])
        if token_id.key not in keys:
            keys.append(token_id.key)
    return tokens_by_coin


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
