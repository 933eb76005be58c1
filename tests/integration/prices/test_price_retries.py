"""Retries against a coins API that really answers 429 / 5xx, drops connections or answers slowly.

Attempts are counted at the server; no assertion depends on how long anything took.
"""

from __future__ import annotations

import time

import pytest
from portfolio.domain.prices import PriceSource
from portfolio.settings import Settings

from local_stack.coins_api import CoinsApiServer
from tests.integration.prices.conftest import FAST_RETRIES, ServiceFactory, unique_evm_tokens


class RecordingSleep:
    """Really sleeps, and remembers each wait the client chose."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(seconds)


def test_given_a_429_with_retry_after_when_priced_then_the_client_waits_that_long_and_succeeds(
    coins_api_server: CoinsApiServer, price_settings: Settings, make_service: ServiceFactory
):
    # Given
    coins_api_server.fail_next(1, status=429, retry_after="0.03")
    sleep = RecordingSleep()
    token = unique_evm_tokens(1)[0]
    service = make_service(price_settings, api_options={"sleep": sleep})

    # When
    quote = service.get_price(token)

    # Then
    assert quote is not None and quote.source is PriceSource.FRESH
    assert [request.status for request in coins_api_server.requests] == [429, 200]
    assert len(sleep.waits) == 1 and sleep.waits[0] >= 0.03
    assert service.stats().retries == 1


def test_given_a_retry_after_longer_than_the_backoff_cap_when_priced_then_the_chunk_gives_up_without_retrying(
    coins_api_server: CoinsApiServer, price_settings: Settings, make_service: ServiceFactory
):
    # Given: the server asks for 120 s of patience; the cap in these settings is 0.05 s
    coins_api_server.fail_next(1, status=429, retry_after="120")
    service = make_service(price_settings)

    # When
    quotes = service.get_prices(unique_evm_tokens(2))

    # Then
    assert quotes == {}
    assert coins_api_server.request_count == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_given_an_api_that_always_fails_when_priced_then_attempts_stop_at_the_configured_maximum(
    status: int, coins_api_server: CoinsApiServer, price_settings: Settings, make_service: ServiceFactory
):
    # Given
    coins_api_server.fail_always(status)
    service = make_service(price_settings)

    # When
    quotes = service.get_prices(unique_evm_tokens(3))

    # Then
    assert quotes == {}
    assert coins_api_server.request_count == price_settings.price_max_attempts
    stats = service.stats()
    assert (stats.api_calls, stats.retries, stats.failures) == (4, 3, 1)


def test_given_a_client_error_when_priced_then_it_is_not_retried(
    coins_api_server: CoinsApiServer, price_settings: Settings, make_service: ServiceFactory
):
    # Given
    coins_api_server.fail_next(1, status=400)

    # When
    quotes = make_service(price_settings).get_prices(unique_evm_tokens(1))

    # Then
    assert quotes == {}
    assert coins_api_server.request_count == 1


def test_given_dropped_connections_when_priced_then_the_client_retries_and_succeeds(
    coins_api_server: CoinsApiServer, price_settings: Settings, make_service: ServiceFactory
):
    # Given
    coins_api_server.drop_next(2)
    tokens = unique_evm_tokens(2)

    # When
    quotes = make_service(price_settings).get_prices(tokens)

    # Then
    assert set(quotes) == set(tokens)
    assert [request.status for request in coins_api_server.requests] == [None, None, 200]


def test_given_an_api_slower_than_the_read_timeout_when_priced_then_each_attempt_times_out_and_attempts_are_bounded(
    coins_api_server: CoinsApiServer, make_service: ServiceFactory
):
    # Given
    settings = Settings(
        PRICES_API_URL=coins_api_server.url, **(FAST_RETRIES | {"PRICE_READ_TIMEOUT_S": 0.05}), PRICE_MAX_ATTEMPTS=2
    )
    coins_api_server.delay_s = 0.3
    service = make_service(settings)

    # When
    quotes = service.get_prices(unique_evm_tokens(1))

    # Then
    assert quotes == {}
    assert coins_api_server.request_count == 2
    assert service.stats().failures == 1


def test_given_a_deadline_already_past_when_priced_then_no_request_is_made(
    coins_api_server: CoinsApiServer, price_settings: Settings, make_service: ServiceFactory
):
    # Given
    service = make_service(price_settings)

    # When
    quotes = service.get_prices(unique_evm_tokens(3), deadline=time.monotonic() - 0.001)

    # Then
    assert quotes == {}
    assert coins_api_server.request_count == 0


def test_given_a_backoff_that_would_pass_the_deadline_when_the_api_fails_then_no_retry_is_made(
    coins_api_server: CoinsApiServer, make_service: ServiceFactory
):
    # Given: backoff of 10 s (jitter pinned to its maximum) against a deadline 5 s away
    settings = Settings(
        PRICES_API_URL=coins_api_server.url, PRICE_BACKOFF_BASE_S=10, PRICE_BACKOFF_CAP_S=10, PRICE_MAX_ATTEMPTS=4
    )
    coins_api_server.fail_always(503)
    sleep = RecordingSleep()
    service = make_service(settings, api_options={"sleep": sleep, "rng": lambda: 1.0})

    # When
    quotes = service.get_prices(unique_evm_tokens(1), deadline=time.monotonic() + 5)

    # Then
    assert quotes == {}
    assert coins_api_server.request_count == 1
    assert sleep.waits == []


def test_given_a_retry_after_beyond_the_deadline_when_rate_limited_then_no_retry_is_made(
    coins_api_server: CoinsApiServer, make_service: ServiceFactory
):
    # Given: the server asks for 3 s, the backoff cap would allow it, the deadline does not
    settings = Settings(PRICES_API_URL=coins_api_server.url, PRICE_BACKOFF_BASE_S=0.01, PRICE_BACKOFF_CAP_S=10)
    coins_api_server.fail_always(429, retry_after="3")
    sleep = RecordingSleep()
    service = make_service(settings, api_options={"sleep": sleep})

    # When
    service.get_prices(unique_evm_tokens(1), deadline=time.monotonic() + 1)

    # Then
    assert coins_api_server.request_count == 1
    assert sleep.waits == []


def test_given_a_slow_api_and_a_near_deadline_when_priced_then_the_request_is_cut_at_the_deadline(
    coins_api_server: CoinsApiServer, make_service: ServiceFactory
):
    # Given: a read timeout far beyond the deadline; the deadline must shorten it
    settings = Settings(
        PRICES_API_URL=coins_api_server.url, PRICE_READ_TIMEOUT_S=30, PRICE_BACKOFF_BASE_S=0.01, PRICE_MAX_ATTEMPTS=4
    )
    coins_api_server.delay_s = 1.0
    service = make_service(settings)

    # When
    quotes = service.get_prices(unique_evm_tokens(1), deadline=time.monotonic() + 0.2)

    # Then: one attempt, cut short, and no retry after the deadline
    assert quotes == {}
    assert coins_api_server.request_count == 1
    assert service.stats().failures == 1
