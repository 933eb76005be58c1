"""PriceService logic with in-process adapters: grouping, tiers, confidence, stats and metrics."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

import fakeredis
import pytest
from portfolio.adapters.coins_api import ChunkResult
from portfolio.adapters.price_redis_tier import PriceRedisTier
from portfolio.domain.errors import InvalidInputError
from portfolio.domain.prices import PriceQuote, PriceSource
from portfolio.domain.tokens import TokenId
from portfolio.observability import metrics
from portfolio.services.price_service import PriceService
from portfolio.settings import Settings

OBSERVED_AT = datetime(2024, 5, 1, tzinfo=UTC)
USDC = "ethereum:0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
SOL_NATIVE = "solana:So11111111111111111111111111111111111111112"


class InProcessCoinsApi:
    """Prices every coin in its book; records each chunk it was asked and how many ran at once."""

    def __init__(self, book: dict[str, str] | None = None, *, confidence: str = "0.99") -> None:
        self.book = dict(book or {})
        self.confidence = Decimal(confidence)
        self.chunks: list[tuple[str, ...]] = []
        self.most_at_once = 0
        self._running = 0
        self._lock = threading.Lock()

    def fetch_current(self, coin_ids: Sequence[str], *, deadline: float | None = None) -> ChunkResult:
        with self._lock:
            self.chunks.append(tuple(coin_ids))
            self._running += 1
            self.most_at_once = max(self.most_at_once, self._running)
        time.sleep(0.01)  # long enough for concurrent chunks to overlap
        with self._lock:
            self._running -= 1
        quotes = {
            coin: PriceQuote(
                token=coin,
                price=self.book[coin],
                timestamp=OBSERVED_AT,
                confidence=self.confidence,
                source=PriceSource.FRESH,
            )
            for coin in coin_ids
            if coin in self.book
        }
        return ChunkResult(tuple(coin_ids), quotes=quotes, attempts=1, latency_ms=[1.0])


def evm_tokens(count: int) -> list[str]:
    return [f"ethereum:0x{index:040x}" for index in range(1, count + 1)]


def settings(**values: object) -> Settings:
    return Settings(**values)


def test_given_more_chunks_than_workers_when_priced_then_chunks_respect_batch_size_and_concurrency():
    # Given
    tokens = evm_tokens(230)
    api = InProcessCoinsApi(dict.fromkeys(tokens, "1"))
    service = PriceService(api, None, None, settings(PRICE_BATCH_SIZE=20, PRICE_MAX_CONCURRENCY=3))

    # When
    quotes = service.get_prices(tokens)

    # Then
    assert len(quotes) == 230
    assert sorted(len(chunk) for chunk in api.chunks) == [10] + [20] * 11
    assert 1 < api.most_at_once <= 3


def test_given_natives_of_several_chains_when_priced_then_each_maps_back_from_its_coingecko_id():
    # Given
    api = InProcessCoinsApi({"coingecko:ethereum": "3000", "coingecko:solana": "150.25"})
    service = PriceService(api, None, None, settings())
    asked = [
        "ethereum:0x0000000000000000000000000000000000000000",
        "base:0x0000000000000000000000000000000000000000",
        SOL_NATIVE,
    ]

    # When
    quotes = service.get_prices(asked)

    # Then
    assert sorted(api.chunks[0]) == ["coingecko:ethereum", "coingecko:solana"]
    assert {token: quote.price for token, quote in quotes.items()} == {
        asked[0]: Decimal(3000),
        asked[1]: Decimal(3000),
        SOL_NATIVE: Decimal("150.25"),
    }
    assert all(quote.token == token for token, quote in quotes.items())


def test_given_token_ids_and_strings_for_one_coin_when_priced_then_it_is_asked_once_under_its_normalized_key():
    api = InProcessCoinsApi({USDC: "1.0002"})
    service = PriceService(api, None, None, settings())

    shouting = "Ethereum:0x" + USDC.split(":0x")[1].upper()
    quotes = service.get_prices([TokenId.parse(shouting), shouting, USDC, TokenId("ethereum", USDC.split(":")[1])])

    assert api.chunks == [(USDC,)]
    assert list(quotes) == [USDC]


def test_given_a_malformed_token_when_priced_then_the_caller_is_told_which_input_is_wrong():
    service = PriceService(InProcessCoinsApi(), None, None, settings())

    with pytest.raises(InvalidInputError):
        service.get_prices(["ethereum:not-an-address"])


def test_given_an_unpriced_token_when_asked_alone_then_the_answer_is_none_never_zero():
    service = PriceService(InProcessCoinsApi(), None, None, settings())

    assert service.get_price(USDC) is None
    assert service.stats().unpriced == 1


def test_given_prices_below_the_confidence_threshold_when_priced_then_they_are_unpriced():
    # Given
    api = InProcessCoinsApi({USDC: "1"}, confidence="0.49")
    service = PriceService(api, None, None, settings(PRICE_MIN_CONFIDENCE="0.5"))

    # When / Then
    assert service.get_prices([USDC]) == {}
    assert (service.stats().low_confidence, service.stats().unpriced) == (1, 1)


def test_given_a_price_exactly_at_the_threshold_when_priced_then_it_is_trusted():
    api = InProcessCoinsApi({USDC: "1"}, confidence="0.5")
    service = PriceService(api, None, None, settings(PRICE_MIN_CONFIDENCE="0.5"))

    assert service.get_prices([USDC])[USDC].source is PriceSource.FRESH


def test_given_a_cleared_cache_when_asked_again_then_the_api_is_asked_again():
    api = InProcessCoinsApi({USDC: "1"})
    service = PriceService(api, None, None, settings())
    service.get_prices([USDC])

    service.clear_cache()
    service.get_prices([USDC])

    assert len(api.chunks) == 2


def test_given_a_memory_ttl_of_zero_when_asked_twice_then_the_memory_tier_is_off():
    api = InProcessCoinsApi({USDC: "1"})
    service = PriceService(api, None, None, settings(PRICE_MEMORY_TTL_SECONDS=0))

    service.get_prices([USDC])
    service.get_prices([USDC])

    assert len(api.chunks) == 2


def test_given_a_shared_tier_when_a_second_instance_asks_then_it_is_served_from_that_tier():
    # Given
    tier = PriceRedisTier(fakeredis.FakeRedis(), settings())
    api = InProcessCoinsApi({USDC: "1.0001"})
    PriceService(api, tier, None, settings()).get_prices([USDC])

    # When
    quote = PriceService(api, tier, None, settings()).get_price(USDC)

    # Then
    assert len(api.chunks) == 1
    assert quote is not None and (quote.source, quote.price) == (PriceSource.REDIS, Decimal("1.0001"))


def test_given_a_mixed_call_when_stats_are_read_then_each_tier_is_counted_per_coin():
    # Given
    tier = PriceRedisTier(fakeredis.FakeRedis(), settings())
    tokens = evm_tokens(4)
    api = InProcessCoinsApi(dict.fromkeys(tokens[:3], "2"))
    PriceService(api, tier, None, settings()).get_prices(tokens[:1])
    service = PriceService(api, tier, None, settings())
    service.get_prices(tokens[1:2])

    # When: one coin in memory, one in Redis, one fresh, one unpriced
    service.get_prices(tokens)

    # Then
    stats = service.stats()
    assert (stats.memory_hits, stats.redis_hits, stats.misses, stats.unpriced) == (1, 1, 3, 1)
    assert (stats.api_calls, stats.coins_requested, stats.failures) == (2, 3, 0)


def test_given_no_lambda_invocation_when_prices_are_fetched_then_metrics_are_recorded_without_error():
    # Given
    metrics.clear_metrics()
    service = PriceService(InProcessCoinsApi({USDC: "1"}), None, None, settings())

    # When
    service.get_prices([USDC, *evm_tokens(2)])
    service.get_prices([USDC])

    # Then
    recorded = metrics.metric_set
    assert recorded["PriceApiCalls"]["Value"] == [1.0]
    assert recorded["UnpricedCoins"]["Value"] == [2.0]
    assert recorded["PriceCacheHits"]["Value"] == [1.0]
    metrics.clear_metrics()
