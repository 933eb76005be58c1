"""The Pro API key travels in the URL path, and nowhere else: not in logs, not in error text."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from portfolio.adapters.coins_api import make_coins_api
from portfolio.observability import logger
from portfolio.settings import Settings

from local_stack.coins_api import CoinsApiServer
from local_stack.ports import free_port
from tests.integration.prices.conftest import FAST_RETRIES, ServiceFactory, unique_evm_tokens

API_KEY = "pro-key-7f3a9c1d2e4b"


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Everything the service's Powertools logger and any library logger (httpx, httpcore) write, at DEBUG."""
    buffer = io.StringIO()
    service_handler = logging.StreamHandler(buffer)
    service_handler.setFormatter(logger.registered_formatter)
    library_handler = logging.StreamHandler(buffer)
    library_handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    service_logger, root = logging.getLogger(logger.name), logging.getLogger()
    previous_levels = service_logger.level, root.level
    service_logger.addHandler(service_handler)
    root.addHandler(library_handler)
    service_logger.setLevel(logging.DEBUG)
    root.setLevel(logging.DEBUG)
    yield buffer
    service_logger.removeHandler(service_handler)
    root.removeHandler(library_handler)
    service_logger.setLevel(previous_levels[0])
    root.setLevel(previous_levels[1])


@pytest.fixture
def keyed_settings(coins_api_server: CoinsApiServer) -> Settings:
    coins_api_server.required_api_key = API_KEY
    return Settings(PRICES_API_URL=coins_api_server.url, PRICES_API_KEY=API_KEY, **FAST_RETRIES)


def test_given_an_api_key_when_priced_then_it_is_sent_as_the_pro_path_segment(
    coins_api_server: CoinsApiServer, keyed_settings: Settings, make_service: ServiceFactory
):
    # Given
    tokens = unique_evm_tokens(2)

    # When
    quotes = make_service(keyed_settings).get_prices(tokens)

    # Then
    assert set(quotes) == set(tokens)
    [request] = coins_api_server.requests
    assert request.api_key == API_KEY
    assert request.path.startswith(f"/{API_KEY}/coins/prices/current/")
    assert "user-agent" in request.headers and "python-httpx" not in request.headers["user-agent"]


def test_given_an_api_key_and_a_failing_api_when_priced_then_no_log_line_holds_the_key(
    coins_api_server: CoinsApiServer, keyed_settings: Settings, make_service: ServiceFactory, captured_logs: io.StringIO
):
    # Given: an answer of every kind that gets logged: 500, 429, a dropped connection, then success
    coins_api_server.fail_next(1, status=500)
    coins_api_server.fail_next(1, status=429, retry_after="0")
    coins_api_server.drop_next(1)
    tokens = unique_evm_tokens(2)

    # When
    quotes = make_service(keyed_settings).get_prices(tokens)
    coins_api_server.fail_always(503)
    make_service(keyed_settings).get_prices(unique_evm_tokens(1))

    # Then
    output = captured_logs.getvalue()
    assert set(quotes) == set(tokens)
    assert "retrying" in output and "coins API chunk failed" in output
    assert "HTTP Request" in output  # httpx's own request lines were captured, with the key masked
    assert API_KEY not in output


def test_given_an_api_key_when_a_request_fails_then_the_error_text_and_repr_do_not_hold_the_key(
    keyed_settings: Settings,
):
    # Given: nothing listens at the API's address
    settings = keyed_settings.model_copy(update={"prices_api_url": f"http://127.0.0.1:{free_port()}"})
    coins_api = make_coins_api(settings)

    # When
    result = coins_api.fetch_current(["ethereum:0x" + "a" * 40])

    # Then
    assert not result.ok
    assert "ConnectError" in (result.error or "")
    assert API_KEY not in (result.error or "")
    assert API_KEY not in repr(coins_api)
    coins_api.close()
