"""Coins API calls for one refresh, through PriceService against per-user fetching; and the warm-path overhead.

    .venv/bin/python -m benchmarks.price_calls

1. One refresh of USERS users holding overlapping sets drawn from UNIQUE_TOKENS tokens, in messages of
   USERS_PER_MESSAGE users, handled by CONTAINERS warm containers (each its own memory tier, one shared
   Redis), against the naive design that asked the API once per user. Both run against the same local
   coins API, and the calls are counted at that server.
2. The service's cost per token on a warm memory tier, against a plain dict lookup of the same quotes,
   median of REPETITIONS runs.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import redis
from portfolio.adapters.coins_api import make_coins_api
from portfolio.adapters.price_redis_tier import PriceRedisTier
from portfolio.domain.prices import PriceQuote
from portfolio.observability import metrics
from portfolio.services.price_service import PriceService
from portfolio.settings import Settings

from tests.support.fake_coins_api import FakeCoinsApi
from tests.support.processes import RedisServer

USERS = 1_000
UNIQUE_TOKENS = 200
USERS_PER_MESSAGE = 10
CONTAINERS = 4
HOLDINGS_PER_USER = (3, 25)
REPETITIONS = 7
LOOPS_PER_REPETITION = 200
SEED = 20240501


def _token_universe() -> list[str]:
    return [f"ethereum:0x{index:040x}" for index in range(1, UNIQUE_TOKENS + 1)]


def _holdings(tokens: list[str]) -> list[list[str]]:
    """Each user's tokens; popular tokens (low rank) are held by many users, as in real portfolios."""
    rng = random.Random(SEED)
    weights = [1 / (rank + 1) for rank in range(len(tokens))]
    users = []
    for _ in range(USERS):
        count = rng.randint(*HOLDINGS_PER_USER)
        held: set[str] = set()
        while len(held) < count:
            held.update(rng.choices(tokens, weights=weights, k=count - len(held)))
        users.append(sorted(held))
    return users


@contextlib.contextmanager
def _redis_client() -> Iterator[redis.Redis]:
    server = RedisServer().start()
    client = redis.Redis.from_url(server.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        yield client
    finally:
        client.close()
        server.stop()


def _refresh_calls(
    api: FakeCoinsApi, settings: Settings, client: redis.Redis, users: list[list[str]]
) -> dict[str, Any]:
    """API calls for one refresh: messages of users go round-robin to warm containers sharing one Redis."""
    prefix = f"bench-price-{uuid.uuid4().hex[:8]}:"
    containers = [
        PriceService(make_coins_api(settings), PriceRedisTier(client, settings, key_prefix=prefix), None, settings)
        for _ in range(CONTAINERS)
    ]
    messages = [users[start : start + USERS_PER_MESSAGE] for start in range(0, len(users), USERS_PER_MESSAGE)]
    api.reset_counters()
    unpriced = 0
    for index, message in enumerate(messages):
        batch_tokens = {token for holding in message for token in holding}
        unpriced += len(batch_tokens) - len(containers[index % CONTAINERS].get_prices(batch_tokens))
    for container in containers:
        container.close()
    return {"calls": api.request_count, "coins_sent": api.coins_requested, "unpriced": unpriced}


def _naive_calls(api: FakeCoinsApi, settings: Settings, users: list[list[str]]) -> int:
    """The naive design: every user's tokens in one request of their own, no cache."""
    coins_api = make_coins_api(settings)
    api.reset_counters()
    for holding in users:
        coins_api.fetch_current(holding)
    coins_api.close()
    return api.request_count


def _median_ns_per_token(action: Callable[[], object], tokens: int) -> float:
    samples = []
    for _ in range(REPETITIONS):
        started = time.perf_counter_ns()
        for _ in range(LOOPS_PER_REPETITION):
            action()
        samples.append((time.perf_counter_ns() - started) / (LOOPS_PER_REPETITION * tokens))
    return statistics.median(samples)


def _warm_overhead(settings: Settings) -> dict[str, float]:
    tokens = _token_universe()
    service = PriceService(make_coins_api(settings), None, None, settings)
    quotes: dict[str, PriceQuote] = service.get_prices(tokens)
    service_ns = _median_ns_per_token(lambda: service.get_prices(tokens), len(tokens))
    dict_ns = _median_ns_per_token(lambda: {token: quotes[token] for token in tokens}, len(tokens))
    service.close()
    return {
        "warm_service_ns_per_token": round(service_ns, 1),
        "dict_lookup_ns_per_token": round(dict_ns, 1),
        "warm_overhead_ratio": round(service_ns / dict_ns, 1),
    }


def run() -> dict[str, Any]:
    tokens = _token_universe()
    users = _holdings(tokens)
    with FakeCoinsApi(price_every_coin=True) as api, _redis_client() as client, contextlib.redirect_stdout(
        io.StringIO()
    ):
        settings = Settings(PRICES_API_URL=api.url, PRICE_MEMORY_TTL_SECONDS=300)
        refresh = _refresh_calls(api, settings, client, users)
        naive = _naive_calls(api, settings, users)
        overhead = _warm_overhead(settings)
        metrics.clear_metrics()
    return {
        "benchmark": "price_calls",
        "users": USERS,
        "unique_tokens": UNIQUE_TOKENS,
        "users_per_message": USERS_PER_MESSAGE,
        "containers": CONTAINERS,
        "service_api_calls": refresh["calls"],
        "service_coins_sent": refresh["coins_sent"],
        "service_unpriced_tokens": refresh["unpriced"],
        "naive_api_calls": naive,
        "calls_saved_ratio": round(naive / refresh["calls"], 1) if refresh["calls"] else None,
        **overhead,
    }


def main() -> None:
    figures = run()
    print(
        f"one refresh of {figures['users']} users ({figures['unique_tokens']} unique tokens, "
        f"{figures['containers']} containers): {figures['service_api_calls']} coins API calls through the "
        f"service vs {figures['naive_api_calls']} fetching per user -> {figures['calls_saved_ratio']}x fewer"
    )
    print(
        f"warm memory tier: {figures['warm_service_ns_per_token']} ns/token vs dict lookup "
        f"{figures['dict_lookup_ns_per_token']} ns/token ({figures['warm_overhead_ratio']}x)"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
