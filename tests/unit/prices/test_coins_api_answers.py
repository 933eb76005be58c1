"""Reading DeFiLlama's answers: exact Decimals, absent coins, broken bodies, Retry-After."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from portfolio.adapters.coins_api import parse_batch_historical_body, parse_prices_body, parse_retry_after

FIXTURES = Path(__file__).parent / "fixtures" / "defillama"
FUN = "ethereum:0x419d0d8bdd9af5e606ae2232ed285aff190e711b"
WETH = "ethereum:0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"


def test_given_the_real_two_erc20_body_when_parsed_then_prices_are_exact_decimals_not_floats():
    # When
    quotes = parse_prices_body((FIXTURES / "prices-current-two-erc20.json").read_bytes(), [FUN, WETH])

    # Then
    assert quotes[FUN].price == Decimal("0.00756368")
    assert isinstance(quotes[FUN].price, Decimal)
    assert (quotes[FUN].symbol, quotes[FUN].decimals, quotes[FUN].confidence) == ("FUN", 8, Decimal("0.99"))
    assert quotes[WETH].timestamp == datetime.fromtimestamp(1667555277, tz=UTC)
    assert quotes[WETH].token == WETH


def test_given_the_real_coingecko_body_without_decimals_when_parsed_then_decimals_are_unknown():
    quotes = parse_prices_body((FIXTURES / "prices-current-coingecko-id.json").read_bytes(), ["coingecko:binancecoin"])

    assert quotes["coingecko:binancecoin"].price == Decimal("344.74")
    assert quotes["coingecko:binancecoin"].decimals is None


def test_given_the_real_body_for_an_unknown_coin_when_parsed_then_the_coin_is_absent_not_zero():
    assert parse_prices_body((FIXTURES / "prices-current-unknown-coin.json").read_bytes(), [FUN]) == {}


def test_given_coins_not_asked_for_in_the_answer_when_parsed_then_they_are_ignored():
    quotes = parse_prices_body((FIXTURES / "prices-current-two-erc20.json").read_bytes(), [WETH])

    assert list(quotes) == [WETH]


@pytest.mark.parametrize(
    "entry",
    [
        '{"price": 0, "timestamp": 1700000000}',
        '{"price": -1.5, "timestamp": 1700000000}',
        '{"price": "12.5", "timestamp": 1700000000}',
        '{"price": true, "timestamp": 1700000000}',
        '{"price": 1.5}',
        '{"price": 1.5, "timestamp": "yesterday"}',
        '{"price": 1.5, "timestamp": 1700000000, "confidence": "high"}',
        '"1.5"',
    ],
)
def test_given_an_unusable_entry_when_parsed_then_only_that_coin_is_left_without_a_price(entry: str):
    # Given
    body = f'{{"coins": {{"{FUN}": {entry}, "{WETH}": {{"price": 2, "timestamp": 1700000000}}}}}}'.encode()

    # When
    quotes = parse_prices_body(body, [FUN, WETH])

    # Then
    assert list(quotes) == [WETH]
    assert quotes[WETH].price == Decimal(2)


@pytest.mark.parametrize(
    "body", [b'{"coins": {"ethereum:0x', b"<html>502 Bad Gateway</html>", b"[]", b'{"coins": []}', b"{}", b"\xff\xfe"]
)
def test_given_a_body_that_is_not_the_api_shape_when_parsed_then_the_whole_chunk_fails(body: bytes):
    with pytest.raises(ValueError):
        parse_prices_body(body, [FUN])


def test_given_exponent_notation_when_parsed_then_the_price_keeps_every_digit():
    body = f'{{"coins": {{"{FUN}": {{"price": 1.23456789e-7, "timestamp": 1700000000}}}}}}'.encode()

    assert parse_prices_body(body, [FUN])[FUN].price == Decimal("0.000000123456789")


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("3", 3.0),
        (" 0 ", 0.0),
        ("0.25", 0.25),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ("-1", None),
        ("soon", None),
        ("NaN", None),
        (None, None),
    ],
)
def test_given_a_retry_after_header_when_parsed_then_only_the_seconds_form_counts(header, seconds):
    assert parse_retry_after(header) == seconds


def test_given_a_batch_historical_answer_when_parsed_then_each_moment_gets_the_price_observed_nearest_it() -> None:
    # Given /batchHistorical's answer in its documented shape (prices observed near the moments asked)
    body = (
        b'{"coins": {"avax:0xb97ef9ef8734c71904d8002f8b6bc66dd9c48a6e": {"symbol": "USDC", "prices": ['
        b'{"timestamp": 1666876674, "price": 0.999436, "confidence": 0.99},'
        b'{"timestamp": 1666862343, "price": 1.000123, "confidence": 0.99}]}}}'
    )
    moments = {"avax:0xb97ef9ef8734c71904d8002f8b6bc66dd9c48a6e": [1666876743, 1666862343], "coingecko:ethereum": [1]}

    # When parsed
    quotes = parse_batch_historical_body(body, moments)

    # Then each (coin, moment) asked has the nearest price, exactly; a coin left out has none
    assert {key: str(quote.price) for key, quote in quotes.items()} == {
        "avax:0xb97ef9ef8734c71904d8002f8b6bc66dd9c48a6e@1666876743": "0.999436",
        "avax:0xb97ef9ef8734c71904d8002f8b6bc66dd9c48a6e@1666862343": "1.000123",
    }
    assert quotes["avax:0xb97ef9ef8734c71904d8002f8b6bc66dd9c48a6e@1666876743"].symbol == "USDC"


def test_given_no_batch_historical_point_near_a_moment_when_parsed_then_that_moment_has_no_price() -> None:
    body = b'{"coins": {"coingecko:ethereum": {"symbol": "ETH", "prices": [{"timestamp": 1000, "price": 2300}]}}}'

    quotes = parse_batch_historical_body(body, {"coingecko:ethereum": [1000, 1000 + 30 * 86400]}, within_s=4 * 3600)

    assert list(quotes) == ["coingecko:ethereum@1000"]
