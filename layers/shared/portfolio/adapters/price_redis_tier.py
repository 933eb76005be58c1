"""The shared price tier in Redis: one key per priced coin, read and written in one round trip per call.

Key: `price:v1:<coin id>`, e.g. `price:v1:ethereum:0xc02a...` or `price:v1:coingecko:ethereum` (the id
DeFiLlama is asked for, so a native priced for one chain serves every chain). Value: the PriceQuote as
JSON, the price a decimal string. TTL: settings.price_redis_ttl_s. `v1` names the value's format, so a
format change reads old values as misses instead of failing on them.

A coin the coins API gave no fresh price for is remembered for one refresh interval: its key then
holds its last-known quote marked stale, or `{"unpriced": true}`, so that no reader asks the API
for it again before the next sweep.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import ValidationError

from portfolio.adapters.redis_connection import REDIS_FAILURES as _REDIS_FAILURES
from portfolio.domain.prices import PriceQuote, PriceSource
from portfolio.services.ports import PriceTierUnavailableError
from portfolio.settings import Settings

DEFAULT_KEY_PREFIX = "price:v1:"
_UNPRICED = b'{"unpriced":true}'


class PriceCacheUnavailableError(PriceTierUnavailableError):
    """Redis did not answer (down, timed out, refused): the caller skips this tier."""


class PriceRedisTier:
    """Reads and writes coin quotes; works with redis.Redis and redis.RedisCluster alike."""

    def __init__(self, client: Any, settings: Settings, *, key_prefix: str = DEFAULT_KEY_PREFIX) -> None:
        self._client = client
        self._ttl_s = settings.price_redis_ttl_s
        self._no_fresh_ttl_s = settings.refresh_interval_s
        self._key_prefix = key_prefix

    def key_for(self, coin_id: str) -> str:
        return f"{self._key_prefix}{coin_id}"

    def get_many(self, coin_ids: Sequence[str]) -> dict[str, PriceQuote | None]:
        """Cached quotes by coin id; None for a coin known to have no price this interval; missing
        and unreadable values are simply absent."""
        if not coin_ids:
            return {}
        # Per-key GETs in one non-transactional pipeline rather than MGET: in cluster mode an MGET
        # across hash slots is refused, and a shared hash tag would pile every price onto one shard.
        # redis-py's cluster pipeline groups the GETs by node; on a single node it is one round trip.
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for coin_id in coin_ids:
                    pipe.get(self.key_for(coin_id))
                values = pipe.execute()
        except _REDIS_FAILURES as error:
            raise PriceCacheUnavailableError(f"price tier read failed: {type(error).__name__}") from None
        quotes: dict[str, PriceQuote | None] = {}
        for coin_id, raw in zip(coin_ids, values, strict=True):
            if raw is None:
                continue
            if raw == _UNPRICED:
                quotes[coin_id] = None
                continue
            try:
                cached = PriceQuote.model_validate_json(raw)
            except ValidationError:
                continue
            source = PriceSource.LAST_KNOWN if cached.stale else PriceSource.REDIS
            quotes[coin_id] = cached.model_copy(update={"token": coin_id, "source": source})
        return quotes

    def put_no_fresh(self, fallbacks: dict[str, PriceQuote | None]) -> None:
        """Remembers, for one refresh interval, coins with no fresh price: their stale fallback or unpriced."""
        if not fallbacks:
            return
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for coin_id, quote in fallbacks.items():
                    value = (
                        _UNPRICED
                        if quote is None
                        else quote.model_copy(update={"stale": True}).model_dump_json(by_alias=True)
                    )
                    pipe.set(self.key_for(coin_id), value, ex=self._no_fresh_ttl_s)
                pipe.execute()
        except _REDIS_FAILURES as error:
            raise PriceCacheUnavailableError(f"price tier write failed: {type(error).__name__}") from None

    def put_many(self, quotes: Iterable[PriceQuote]) -> None:
        """Stores fresh quotes (keyed by their `token`, the coin id) with the tier's TTL, in one pipeline."""
        batch = list(quotes)
        if not batch:
            return
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for quote in batch:
                    pipe.set(self.key_for(quote.token), quote.model_dump_json(by_alias=True), ex=self._ttl_s)
                pipe.execute()
        except _REDIS_FAILURES as error:
            raise PriceCacheUnavailableError(f"price tier write failed: {type(error).__name__}") from None
