"""How many times the coins API is asked: batching, the memory tier and the shared Redis tier."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from portfolio.adapters.price_redis_tier import PriceRedisTier
from portfolio.domain.prices import PriceSource
from portfolio.settings import Settings

from local_stack.coins_api import CoinsApiServer
from tests.integration.prices.conftest import ServiceFactory, unique_evm_tokens

FIXTURES = Path(__file__).resolve().parents[2] / "unit" / "prices" / "fixtures" / "defillama"


def test_given_120_unique_tokens_when_priced_then_three_calls_of_at_most_50_coins(
    coins_api_server: CoinsApiServer, price_settings: Settings, redis_tier: PriceRedisTier, make_service: ServiceFactory
):
    # Given
    tokens = unique_evm_tokens(120)
    service = make_service(price_settings, redis_tier=redis_tier)

    # When
    quotes = service.get_prices(tokens)

    # Then
    assert coins_api_server.request_count == 3
    assert sorted(coins_api_server.coins_per_request) == [20, 50, 50]
    assert set(quotes) == set(tokens)
    assert all(quote.source is PriceSource.FRESH and not quote.stale for quote in quotes.values())
    assert all(request.search_width == "4h" for request in coins_api_server.requests)


def test_given_prices_just_fetched_when_asked_again_within_the_ttl_then_no_call_and_memory_answers(
    coins_api_server: CoinsApiServer, price_settings: Settings, redis_tier: PriceRedisTier, make_service: ServiceFactory
):
    # Given
    tokens = unique_evm_tokens(120)
    service = make_service(price_settings, redis_tier=redis_tier)
    first = service.get_prices(tokens)
    coins_api_server.reset_counters()

    # When
    second = service.get_prices(tokens)

    # Then
    assert coins_api_server.request_count == 0
    assert {token: quote.price for token, quote in second.items()} == {t: q.price for t, q in first.items()}
    assert {quote.source for quote in second.values()} == {PriceSource.MEMORY}
    assert service.stats().memory_hits == 120


def test_given_another_container_priced_the_tokens_when_a_new_instance_asks_then_redis_answers_without_a_call(
    coins_api_server: CoinsApiServer, price_settings: Settings, redis_tier: PriceRedisTier, make_service: ServiceFactory
):
    # Given: one container priced the tokens into the shared Redis
    tokens = unique_evm_tokens(120)
    first = make_service(price_settings, redis_tier=redis_tier).get_prices(tokens)
    coins_api_server.reset_counters()

    # When: a second container (its own empty memory tier, the same Redis) asks for them
    second_container = make_service(price_settings, redis_tier=redis_tier)
    quotes = second_container.get_prices(tokens)

    # Then
    assert coins_api_server.request_count == 0
    assert {quote.source for quote in quotes.values()} == {PriceSource.REDIS}
    assert {t: (q.price, q.symbol, q.decimals, q.timestamp) for t, q in quotes.items()} == {
        t: (q.price, q.symbol, q.decimals, q.timestamp) for t, q in first.items()
    }
    assert second_container.stats().redis_hits == 120

    # And then the memory tier of the second container answers the next call
    assert {q.source for q in second_container.get_prices(tokens).values()} == {PriceSource.MEMORY}


def test_given_120_tokens_in_mixed_casing_with_duplicates_when_priced_then_still_three_calls(
    coins_api_server: CoinsApiServer, price_settings: Settings, redis_tier: PriceRedisTier, make_service: ServiceFactory
):
    # Given: every token twice, once lowercase and once with its hex digits upper-cased, plus repeats
    tokens = unique_evm_tokens(120)
    shouting = [f"{token.split(':')[0]}:0x{token.split(':')[1][2:].upper()}" for token in tokens]
    asked = tokens + shouting + tokens[:30]
    service = make_service(price_settings, redis_tier=redis_tier)

    # When
    quotes = service.get_prices(asked)

    # Then: each coin sent once, in lowercase, and answered under its normalized key
    assert coins_api_server.request_count == 3
    sent = [coin for request in coins_api_server.requests for coin in request.coins]
    assert sorted(sent) == sorted(tokens)
    assert set(quotes) == set(tokens)


def test_given_native_eth_on_two_chains_when_priced_then_one_coin_is_asked_and_both_get_its_price(
    coins_api_server: CoinsApiServer, price_settings: Settings, make_service: ServiceFactory
):
    # Given
    coins_api_server.set_price("coingecko:ethereum", "3456.78", symbol="ETH", decimals=None)
    native_on_ethereum = "ethereum:0x0000000000000000000000000000000000000000"
    native_on_arbitrum = "arbitrum:0x0000000000000000000000000000000000000000"
    service = make_service(price_settings)

    # When
    quotes = service.get_prices([native_on_ethereum, native_on_arbitrum])

    # Then
    assert [request.coins for request in coins_api_server.requests] == [("coingecko:ethereum",)]
    assert quotes[native_on_ethereum].price == quotes[native_on_arbitrum].price == Decimal("3456.78")
    assert quotes[native_on_arbitrum].token == native_on_arbitrum


def test_given_real_defillama_bodies_when_priced_then_prices_are_exact_decimals_with_their_own_timestamps(
    coins_api_server: CoinsApiServer, price_settings: Settings, make_service: ServiceFactory
):
    # Given
    coins_api_server.price_every_coin = False
    coins_api_server.load_fixture(FIXTURES / "prices-current-two-erc20.json")
    coins_api_server.load_fixture(FIXTURES / "prices-current-coingecko-id.json")
    fun = "ethereum:0x419d0d8bdd9af5e606ae2232ed285aff190e711b"
    weth = "ethereum:0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
    bnb = "bsc:0x0000000000000000000000000000000000000000"
    service = make_service(price_settings)

    # When
    quotes = service.get_prices([fun, weth, bnb])

    # Then
    assert quotes[fun].price == Decimal("0.00756368")
    assert str(quotes[fun].price) == "0.00756368"
    assert (quotes[fun].symbol, quotes[fun].decimals) == ("FUN", 8)
    assert quotes[weth].price == Decimal("1582.85")
    assert int(quotes[weth].timestamp.timestamp()) == 1667555277
    assert quotes[bnb].price == Decimal("344.74")
    assert quotes[bnb].symbol == "BNB"


def test_given_memory_ttl_elapsed_when_asked_again_then_the_shared_tier_answers_not_the_api(
    coins_api_server: CoinsApiServer, price_settings: Settings, redis_tier: PriceRedisTier, make_service: ServiceFactory
):
    # Given: a clock the test moves past the memory tier's TTL (the Redis TTL is left to Redis)
    now = [1000.0]
    tokens = unique_evm_tokens(3)
    service = make_service(price_settings, redis_tier=redis_tier, clock=lambda: now[0])
    service.get_prices(tokens)
    coins_api_server.reset_counters()

    # When
    now[0] += price_settings.price_memory_ttl_s + 1
    quotes = service.get_prices(tokens)

    # Then
    assert coins_api_server.request_count == 0
    assert {quote.source for quote in quotes.values()} == {PriceSource.REDIS}
