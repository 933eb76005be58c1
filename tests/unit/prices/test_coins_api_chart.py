"""`/chart`: the request the client sends (captured in process) and how its answer is read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from portfolio.adapters.coins_api import CoinsApi, parse_chart_body, period_text

ETH = "coingecko:ethereum"
USDC = "ethereum:0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
START = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def capture_client(seen: list[httpx.Request], body: bytes = b'{"coins": {}}') -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=body)

    return httpx.Client(transport=httpx.MockTransport(answer))


def test_given_two_coins_when_a_chart_is_fetched_then_one_call_names_both_with_start_span_and_period():
    # Given
    seen: list[httpx.Request] = []
    api = CoinsApi(capture_client(seen), base_url="https://coins.llama.fi", search_width="4h")

    # When 240 points three hours apart are asked for
    result = api.fetch_chart([ETH, USDC], start=START, step=timedelta(hours=3), points=240)

    # Then one request names both coins, and each point may be observed up to one step from its moment
    assert result.ok and result.series == {}
    [request] = seen
    assert request.url.path == f"/chart/{ETH},{USDC}"
    assert dict(request.url.params) == {
        "start": str(int(START.timestamp())),
        "span": "240",
        "period": "3h",
        "searchWidth": "3h",
    }


def test_given_a_key_when_a_chart_is_fetched_then_the_pro_api_is_asked_with_the_key_in_its_path():
    seen: list[httpx.Request] = []
    api = CoinsApi(capture_client(seen), base_url="https://coins.llama.fi", api_key="k-123")

    api.fetch_chart([ETH], start=START, step=timedelta(days=1), points=10)

    assert str(seen[0].url).startswith(f"https://pro-api.llama.fi/k-123/coins/chart/{ETH}?")


def test_given_the_documented_chart_body_when_parsed_then_prices_are_exact_decimals_oldest_first():
    # Given an answer in /chart's documented shape, its points out of order and one repeated
    body = (
        b'{"coins": {"coingecko:ethereum": {"symbol": "ETH", "confidence": 0.99, "prices": ['
        b'{"timestamp": 1735732800, "price": 3401.12345678901234},'
        b'{"timestamp": 1735689600, "price": 3350.5},'
        b'{"timestamp": 1735732800, "price": 3401.12345678901234}]},'
        b' "ethereum:0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48": {"decimals": 6, "symbol": "USDC",'
        b' "confidence": 1, "prices": [{"timestamp": 1735689600, "price": 1.0001}]}}}'
    )

    # When
    series, confidence = parse_chart_body(body, [ETH, USDC])

    # Then every digit is kept, each coin's points are oldest first, one per timestamp
    assert series[ETH] == [
        (datetime(2025, 1, 1, 0, 0, tzinfo=UTC), Decimal("3350.5")),
        (datetime(2025, 1, 1, 12, 0, tzinfo=UTC), Decimal("3401.12345678901234")),
    ]
    assert all(isinstance(price, Decimal) for _, price in series[ETH])
    assert series[USDC] == [(datetime(2025, 1, 1, 0, 0, tzinfo=UTC), Decimal("1.0001"))]
    assert confidence == {ETH: Decimal("0.99"), USDC: Decimal(1)}


@pytest.mark.parametrize(
    "point",
    [
        '{"timestamp": 1735689600, "price": 0}',
        '{"timestamp": 1735689600, "price": -2}',
        '{"timestamp": 1735689600, "price": "3350.5"}',
        '{"timestamp": 1735689600, "price": true}',
        '{"timestamp": "yesterday", "price": 3350.5}',
        '{"price": 3350.5}',
        '"3350.5"',
    ],
)
def test_given_an_unusable_point_when_parsed_then_only_that_point_is_dropped(point: str):
    body = (
        f'{{"coins": {{"{ETH}": {{"symbol": "ETH", "prices": [{point}, '
        f'{{"timestamp": 1735732800, "price": 3401}}]}}}}}}'
    ).encode()

    series, _ = parse_chart_body(body, [ETH])

    assert series[ETH] == [(datetime(2025, 1, 1, 12, 0, tzinfo=UTC), Decimal(3401))]


def test_given_a_coin_left_out_or_without_prices_when_parsed_then_it_has_no_series_not_zero():
    body = f'{{"coins": {{"{USDC}": {{"symbol": "USDC", "confidence": 0.99, "prices": []}}}}}}'.encode()

    assert parse_chart_body(body, [ETH, USDC]) == ({}, {})


@pytest.mark.parametrize("body", [b'{"coins": {"coingecko:eth', b"<html>502</html>", b"[]", b'{"coins": []}', b"{}"])
def test_given_a_body_that_is_not_the_chart_shape_when_fetched_then_the_call_fails_as_malformed(body: bytes):
    api = CoinsApi(capture_client([], body), base_url="https://coins.llama.fi")

    result = api.fetch_chart([ETH], start=START, step=timedelta(hours=1), points=3)

    assert not result.ok and (result.error or "").startswith("malformed answer")
    assert result.series == {}


@pytest.mark.parametrize(
    ("step", "text"),
    [
        (timedelta(minutes=5), "5m"),
        (timedelta(minutes=90), "90m"),
        (timedelta(hours=3), "3h"),
        (timedelta(hours=48), "2d"),
        (timedelta(days=1), "1d"),
    ],
)
def test_given_a_step_when_written_as_a_period_then_the_largest_whole_unit_is_used(step: timedelta, text: str):
    assert period_text(step) == text


@pytest.mark.parametrize("step", [timedelta(0), timedelta(seconds=90), -timedelta(hours=1)])
def test_given_a_step_that_is_not_whole_minutes_when_written_as_a_period_then_it_is_refused(step: timedelta):
    with pytest.raises(ValueError):
        period_text(step)
