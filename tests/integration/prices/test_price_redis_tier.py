"""The shared Redis tier against the real Redis, and the service when Redis is gone."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import redis
from portfolio.adapters.price_redis_tier import PriceCacheUnavailableError, PriceRedisTier
from portfolio.domain.prices import PriceQuote, PriceSource
from portfolio.settings import Settings
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException

from local_stack.coins_api import CoinsApiServer
from local_stack.embedded_redis import RedisServer
from local_stack.ports import free_port

# A single-node cluster owning every slot; it refuses cross-slot multi-key commands as a real cluster does.
from tests.integration.prices.conftest import ServiceFactory, unique_evm_tokens

OBSERVED_AT = datetime(2024, 5, 1, tzinfo=UTC)


def short_timeout_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=0.05, socket_connect_timeout=0.1)


def test_given_fresh_prices_when_stored_then_each_coin_has_its_own_key_with_the_configured_ttl(
    coins_api_server: CoinsApiServer,
    price_settings: Settings,
    price_redis: redis.Redis,
    redis_tier: PriceRedisTier,
    make_service: ServiceFactory,
):
    # Given
    token = unique_evm_tokens(1)[0]
    coins_api_server.set_price(token, "0.000123")

    # When
    make_service(price_settings, redis_tier=redis_tier).get_prices([token])

    # Then
    key = redis_tier.key_for(token)
    assert 0 < price_redis.ttl(key) <= price_settings.price_redis_ttl_s
    assert b'"price":"0.000123"' in price_redis.get(key)


def test_given_a_garbled_value_in_redis_when_read_then_it_counts_as_a_miss(
    price_redis: redis.Redis, redis_tier: PriceRedisTier
):
    # Given
    good, garbled = unique_evm_tokens(2)
    price_redis.set(redis_tier.key_for(garbled), b"{not json", ex=60)
    price_redis.set(
        redis_tier.key_for(good),
        b'{"token":"x","price":"2.5","timestamp":"2024-01-01T00:00:00Z","source":"fresh"}',
        ex=60,
    )

    # When
    found = redis_tier.get_many([good, garbled])

    # Then
    assert list(found) == [good]
    assert (found[good].price, found[good].token, found[good].source) == (Decimal("2.5"), good, PriceSource.REDIS)


def test_given_nothing_listens_where_redis_should_be_when_priced_then_the_api_still_prices_everything(
    coins_api_server: CoinsApiServer, price_settings: Settings, make_service: ServiceFactory
):
    # Given
    unreachable = PriceRedisTier(short_timeout_client(f"redis://127.0.0.1:{free_port()}/0"), price_settings)
    tokens = unique_evm_tokens(3)
    service = make_service(price_settings, redis_tier=unreachable)

    # When
    quotes = service.get_prices(tokens)

    # Then: the read and the write of tier 2 both failed, neither was fatal
    assert set(quotes) == set(tokens)
    assert {quote.source for quote in quotes.values()} == {PriceSource.FRESH}
    assert service.stats().redis_errors == 2


def test_given_redis_killed_after_it_was_warm_when_a_new_container_prices_then_the_api_answers(
    own_redis: RedisServer, coins_api_server: CoinsApiServer, price_settings: Settings, make_service: ServiceFactory
):
    # Given: one container warmed the tier, then the Redis node dies
    tier = PriceRedisTier(short_timeout_client(own_redis.url), price_settings)
    tokens = unique_evm_tokens(2)
    make_service(price_settings, redis_tier=tier).get_prices(tokens)
    own_redis.kill()
    coins_api_server.reset_counters()

    # When
    service = make_service(price_settings, redis_tier=tier)
    quotes = service.get_prices(tokens)

    # Then
    assert set(quotes) == set(tokens)
    assert coins_api_server.request_count == 1
    assert service.stats().redis_errors == 2


def test_given_redis_is_down_when_the_tier_is_used_directly_then_it_raises_its_own_error(
    own_redis: RedisServer, price_settings: Settings
):
    # Given
    tier = PriceRedisTier(short_timeout_client(own_redis.url), price_settings)
    own_redis.kill()

    # When / Then
    with pytest.raises(PriceCacheUnavailableError):
        tier.get_many(["ethereum:0x" + "1" * 40])


def test_given_cluster_mode_when_quotes_span_many_slots_then_they_are_written_and_read_in_one_call(
    cluster_url: str,
    price_settings: Settings,
):
    # Given: coins whose keys hash to many different slots, which a cross-slot MGET would be refused for
    client = RedisCluster.from_url(cluster_url, socket_timeout=0.5, socket_connect_timeout=0.5)
    tier = PriceRedisTier(client, price_settings)
    coins = unique_evm_tokens(20)
    quotes = [
        PriceQuote(token=coin, price=f"{index}.25", timestamp=OBSERVED_AT, source=PriceSource.FRESH)
        for index, coin in enumerate(coins, 1)
    ]
    with pytest.raises(RedisClusterException):
        client.mget([tier.key_for(coin) for coin in coins])

    # When
    tier.put_many(quotes)
    found = tier.get_many(coins)

    # Then
    assert {coin: quote.price for coin, quote in found.items()} == {q.token: q.price for q in quotes}
    client.close()
