"""The durable last-known price store against DynamoDB (moto's server, tables from template.yaml)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from portfolio.adapters.last_known_prices import LastKnownPriceStore, LastKnownPricesUnavailableError
from portfolio.domain.prices import PriceQuote, PriceSource

from tests.integration.prices.conftest import unique_evm_tokens

OBSERVED_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def quote(coin_id: str, price: str, *, seconds_later: int = 0) -> PriceQuote:
    return PriceQuote(
        token=coin_id,
        price=price,
        symbol="TKN",
        decimals=18,
        confidence="0.97",
        timestamp=OBSERVED_AT + timedelta(seconds=seconds_later),
        source=PriceSource.FRESH,
    )


def test_given_more_coins_than_one_batch_holds_when_stored_and_read_then_every_price_comes_back_exactly(
    last_known_store: LastKnownPriceStore,
):
    # Given: 130 coins, more than one BatchWriteItem (25) or BatchGetItem (100) call takes
    coins = unique_evm_tokens(130)
    quotes = [quote(coin, f"{index}.000000000000000001", seconds_later=index) for index, coin in enumerate(coins, 1)]

    # When
    last_known_store.put_many(quotes)
    found = last_known_store.get_many(coins)

    # Then
    assert set(found) == set(coins)
    assert found[coins[0]].price == Decimal("1.000000000000000001")
    assert found[coins[129]].timestamp == OBSERVED_AT + timedelta(seconds=130)
    assert all(q.stale and q.source is PriceSource.LAST_KNOWN for q in found.values())
    sixth = found[coins[5]]
    assert (sixth.symbol, sixth.decimals, sixth.confidence) == ("TKN", 18, Decimal("0.97"))


def test_given_a_coin_priced_twice_when_read_then_the_latest_price_is_kept(last_known_store: LastKnownPriceStore):
    # Given
    coin = unique_evm_tokens(1)[0]
    last_known_store.put_many([quote(coin, "1.5")])

    # When
    last_known_store.put_many([quote(coin, "1.75", seconds_later=300), quote(coin, "1.8", seconds_later=600)])

    # Then
    assert last_known_store.get_many([coin])[coin].price == Decimal("1.8")


def test_given_coins_never_priced_when_read_then_they_are_absent_not_zero(last_known_store: LastKnownPriceStore):
    # Given
    known, never_priced = unique_evm_tokens(2)
    last_known_store.put_many([quote(known, "3")])

    # When
    found = last_known_store.get_many([known, never_priced, known])

    # Then
    assert list(found) == [known]


def test_given_the_table_does_not_exist_when_read_then_the_store_raises_its_own_error(dynamodb_client):
    # Given
    store = LastKnownPriceStore(dynamodb_client, "no-such-table")

    # When / Then
    with pytest.raises(LastKnownPricesUnavailableError):
        store.get_many(["coingecko:ethereum"])
