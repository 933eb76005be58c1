"""When the coins API gives no fresh price: last-known prices marked stale, or unpriced, never zero."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from portfolio.adapters.last_known_prices import LastKnownPriceStore
from portfolio.adapters.price_redis_tier import PriceRedisTier
from portfolio.domain.prices import PriceSource
from portfolio.domain.tokens import TokenId
from portfolio.settings import Settings

from local_stack.coins_api import CoinsApiServer
from tests.integration.prices.conftest import ServiceFactory, unique_evm_tokens

OBSERVED_AT = 1_700_000_000


def test_given_prices_seen_before_when_the_api_answers_500_storm_then_last_known_prices_come_back_stale(
    coins_api_server: CoinsApiServer,
    price_settings_with_tables: Settings,
    redis_tier: PriceRedisTier,
    last_known_store: LastKnownPriceStore,
    make_service: ServiceFactory,
):
    # Given: two tokens priced once (their prices reach the last-known store), one token never seen
    seen_before = unique_evm_tokens(2)
    never_seen = unique_evm_tokens(1)[0]
    coins_api_server.set_price(seen_before[0], "1.0001", symbol="USDC", decimals=6, timestamp=OBSERVED_AT)
    coins_api_server.set_price(seen_before[1], "0.000000123456789", symbol="PEPE", timestamp=OBSERVED_AT + 60)
    make_service(price_settings_with_tables, last_known=last_known_store).get_prices(seen_before)

    # When: a new container (empty memory tier) asks while every API call fails
    coins_api_server.fail_always(500)
    coins_api_server.reset_counters()
    service = make_service(price_settings_with_tables, redis_tier=redis_tier, last_known=last_known_store)
    quotes = service.get_prices([*seen_before, never_seen])

    # Then
    usdc, pepe = quotes[seen_before[0]], quotes[seen_before[1]]
    assert (usdc.price, usdc.symbol, usdc.decimals) == (Decimal("1.0001"), "USDC", 6)
    assert pepe.price == Decimal("0.000000123456789")
    assert usdc.timestamp == datetime.fromtimestamp(OBSERVED_AT, tz=UTC)
    assert pepe.timestamp == datetime.fromtimestamp(OBSERVED_AT + 60, tz=UTC)
    assert all(quote.stale and quote.source is PriceSource.LAST_KNOWN for quote in (usdc, pepe))
    assert never_seen not in quotes
    assert coins_api_server.request_count == price_settings_with_tables.price_max_attempts
    stats = service.stats()
    assert (stats.failures, stats.stale_served, stats.unpriced) == (1, 2, 1)


def test_given_a_stale_answer_when_the_api_recovers_then_the_next_call_asks_it_again(
    coins_api_server: CoinsApiServer,
    price_settings_with_tables: Settings,
    last_known_store: LastKnownPriceStore,
    make_service: ServiceFactory,
):
    # Given: a stale answer served while the API was failing
    token = unique_evm_tokens(1)[0]
    service = make_service(price_settings_with_tables, last_known=last_known_store)
    service.get_prices([token])
    service.clear_cache()
    coins_api_server.fail_always(503)
    assert service.get_price(token).stale

    # When
    coins_api_server.heal()
    quote = service.get_price(token)

    # Then: stale prices are not cached; the fresh one replaces it
    assert quote is not None
    assert (quote.stale, quote.source) == (False, PriceSource.FRESH)


def test_given_a_coin_the_api_leaves_out_when_priced_then_its_last_known_price_is_served_stale(
    coins_api_server: CoinsApiServer,
    price_settings_with_tables: Settings,
    last_known_store: LastKnownPriceStore,
    make_service: ServiceFactory,
):
    # Given
    token, other = unique_evm_tokens(2)
    service = make_service(price_settings_with_tables, last_known=last_known_store)
    service.get_prices([token, other])
    service.clear_cache()

    # When: DeFiLlama has no fresh price for one of them any more
    coins_api_server.hide(token)
    quotes = service.get_prices([token, other])

    # Then
    assert quotes[token].stale and quotes[token].source is PriceSource.LAST_KNOWN
    assert not quotes[other].stale


def test_given_a_low_confidence_price_when_priced_then_it_is_not_trusted_nor_cached(
    coins_api_server: CoinsApiServer,
    price_settings_with_tables: Settings,
    redis_tier: PriceRedisTier,
    price_redis,
    last_known_store: LastKnownPriceStore,
    make_service: ServiceFactory,
):
    # Given: a confident price already on record, and a coin never priced
    known, unknown = unique_evm_tokens(2)
    coins_api_server.set_price(known, "42.5", timestamp=OBSERVED_AT)
    make_service(price_settings_with_tables, last_known=last_known_store).get_prices([known])
    coins_api_server.set_price(known, "99.9", confidence="0.3")
    coins_api_server.set_confidence(unknown, "0.49")
    service = make_service(price_settings_with_tables, redis_tier=redis_tier, last_known=last_known_store)

    # When
    quotes = service.get_prices([known, unknown])

    # Then: the low-confidence answers are ignored: the old price stays, the new coin stays unpriced
    assert quotes[known].price == Decimal("42.5")
    assert quotes[known].stale
    assert unknown not in quotes
    assert service.stats().low_confidence == 2
    assert last_known_store.get_many([known])[known].price == Decimal("42.5")

    # And until the next refresh interval, neither is asked for again: the same answer comes from Redis
    coins_api_server.reset_counters()
    again = service.get_prices([known, unknown])
    assert coins_api_server.request_count == 0
    assert (again[known].price, again[known].stale, unknown in again) == (Decimal("42.5"), True, False)

    # And once the interval is over, the API is asked again instead of trusting a low-confidence price
    price_redis.delete(*(redis_tier.key_for(TokenId.parse(token).price_coin_id) for token in (known, unknown)))
    service.get_prices([known, unknown])
    assert coins_api_server.request_count == 1


def test_given_fresh_prices_when_fetched_then_each_is_recorded_as_last_known(
    coins_api_server: CoinsApiServer,
    price_settings_with_tables: Settings,
    last_known_store: LastKnownPriceStore,
    make_service: ServiceFactory,
    dynamodb_client,
    table_names,
):
    # Given
    token = unique_evm_tokens(1)[0]
    coins_api_server.set_price(token, "1582.85", symbol="WETH", decimals=18, timestamp=OBSERVED_AT)

    # When
    make_service(price_settings_with_tables, last_known=last_known_store).get_prices([token])

    # Then
    item = dynamodb_client.get_item(
        TableName=table_names["PortfolioTable"], Key={"pk": {"S": f"PRICE#{token}"}, "sk": {"S": "LATEST"}}
    )["Item"]
    assert item["price"] == {"S": "1582.85"}
    assert item["symbol"] == {"S": "WETH"}
    assert item["decimals"] == {"N": "18"}
    assert item["timestamp"] == {"S": "2023-11-14T22:13:20+00:00"}
    assert item["confidence"] == {"S": "0.99"}


def test_given_malformed_json_in_one_chunk_when_priced_then_the_other_chunks_are_unaffected(
    coins_api_server: CoinsApiServer, price_settings: Settings, make_service: ServiceFactory
):
    # Given: 120 tokens make three chunks; any request holding token 60 (second chunk) gets broken JSON
    tokens = unique_evm_tokens(120)
    coins_api_server.malformed_when_asked_for(tokens[60])
    service = make_service(price_settings)

    # When
    quotes = service.get_prices(tokens)

    # Then
    assert set(quotes) == set(tokens[:50] + tokens[100:])
    assert service.stats().failures == 1
    assert coins_api_server.request_count == 3


def test_given_no_last_known_store_reachable_when_the_api_prices_then_fresh_prices_still_come_back(
    coins_api_server: CoinsApiServer, price_settings: Settings, make_service: ServiceFactory, dynamodb_client
):
    # Given: a store whose table does not exist, so every DynamoDB call fails
    broken_store = LastKnownPriceStore(dynamodb_client, "no-such-table")
    tokens = unique_evm_tokens(3)
    service = make_service(price_settings, last_known=broken_store)

    # When
    quotes = service.get_prices(tokens)
    coins_api_server.hide(tokens[0])
    service.clear_cache()
    again = service.get_prices(tokens)

    # Then
    assert set(quotes) == set(tokens)
    assert set(again) == set(tokens[1:])
    assert service.stats().last_known_errors == 3
