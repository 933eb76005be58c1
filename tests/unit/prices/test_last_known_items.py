"""The DynamoDB item of a last-known price: exact round trip, and unreadable items skipped."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from portfolio.adapters.last_known_prices import quote_from_item, quote_to_item
from portfolio.domain.prices import PriceQuote, PriceSource


def test_given_a_fresh_quote_when_stored_and_read_back_then_it_is_the_same_price_marked_stale():
    # Given
    fresh = PriceQuote(
        token="coingecko:ethereum",
        price=Decimal("3456.123456789012345678"),
        symbol="ETH",
        decimals=None,
        timestamp=datetime(2024, 5, 1, 12, 0, 5, tzinfo=UTC),
        confidence=Decimal("0.99"),
        source=PriceSource.FRESH,
    )

    # When
    item = quote_to_item(fresh)
    read_back = quote_from_item(item)

    # Then
    assert item["pk"] == {"S": "PRICE#coingecko:ethereum"} and item["sk"] == {"S": "LATEST"}
    assert item["price"] == {"S": "3456.123456789012345678"}
    assert "decimals" not in item
    assert read_back == fresh.model_copy(update={"source": PriceSource.LAST_KNOWN, "stale": True})


def test_given_an_item_with_a_broken_price_when_read_then_it_is_skipped_not_zero():
    item = {
        "pk": {"S": "PRICE#ethereum:0xabc"},
        "sk": {"S": "LATEST"},
        "price": {"S": "n/a"},
        "timestamp": {"S": "2024-05-01T12:00:00+00:00"},
    }

    assert quote_from_item(item) is None
