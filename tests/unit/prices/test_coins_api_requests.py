"""The request the client sends: public or Pro URL, query, headers (captured in process, no network)."""

from __future__ import annotations

import httpx
from portfolio.adapters.coins_api import USER_AGENT, CoinsApi, make_coins_api
from portfolio.settings import Settings

COINS = ["coingecko:ethereum", "ethereum:0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"]


def capture_client(seen: list[httpx.Request]) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=b'{"coins": {}}')

    return httpx.Client(transport=httpx.MockTransport(answer))


def test_given_no_key_when_fetching_then_the_public_api_is_asked_with_the_search_width():
    seen: list[httpx.Request] = []
    api = CoinsApi(capture_client(seen), base_url="https://coins.llama.fi", search_width="4h")

    api.fetch_current(COINS)

    assert str(seen[0].url) == f"https://coins.llama.fi/prices/current/{','.join(COINS)}?searchWidth=4h"


def test_given_a_key_and_the_public_url_when_fetching_then_the_pro_api_is_asked_with_the_key_in_its_path():
    seen: list[httpx.Request] = []
    api = CoinsApi(capture_client(seen), base_url="https://coins.llama.fi", api_key="k-123")

    api.fetch_current(COINS[:1])

    assert str(seen[0].url).startswith("https://pro-api.llama.fi/k-123/coins/prices/current/coingecko:ethereum")


def test_given_settings_when_the_client_is_made_then_its_timeouts_come_from_the_settings():
    api = make_coins_api(Settings(PRICE_CONNECT_TIMEOUT_S=0.7, PRICE_READ_TIMEOUT_S=3.5))

    timeout = api._client.timeout
    assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (0.7, 3.5, 0.7, 0.7)
    assert api._client.headers["user-agent"] == USER_AGENT
    api.close()
