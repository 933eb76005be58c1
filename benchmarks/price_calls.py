"""Coins API calls of one whole refresh cycle (the price sweep, then every updater container), against
per-user fetching; and the warm-path overhead of the price service.

    .venv/bin/python -m benchmarks.price_calls

1. One cycle for USERS users holding overlapping sets (3-25 tokens each, popular ones more often)
   drawn from UNIQUE_TOKENS tokens, as the pipeline runs it:
   - the sweep: one container runs PriceService.sweep over the union of the held tokens (every
     held coin asked for once, BATCH_SIZE a call), leaving the quotes in the shared Redis;
   - the updaters: messages of USERS_PER_MESSAGE users go round-robin to CONTAINERS warm containers
     (each its own memory tier, empty of this cycle's quotes; one Redis shared by all), each calling
     get_prices for the tokens of its message.
   Every call is counted at the local coins API server. The lower bound is ceil(held coins / 50):
   each held coin has to be asked for once.
2. The naive design on the same users: every user's tokens in a request of their own, no cache.
3. The service's cost per token on a warm memory tier against a plain dict lookup of the same
   quotes, median of REPETITIONS runs.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import random
import statistics
import sys
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

from local_stack.coins_api import CoinsApiServer
from local_stack.embedded_redis import RedisServer

USERS = 1_000
UNIQUE_TOKENS = 200
USERS_PER_MESSAGE = 100  # Settings.users_per_message's default
CONTAINERS = 4
HOLDINGS_PER_USER = (3, 25)
BATCH_SIZE = 50  # Settings.price_batch_size's default
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


def _cycle_calls(
    api: CoinsApiServer, settings: Settings, client: redis.Redis, users: list[list[str]]
) -> dict[str, Any]:
    """Coins API calls of one cycle: the sweep over every held token, then the updaters' messages."""
    prefix = f"bench-price-{uuid.uuid4().hex[:8]}:"

    def container() -> PriceService:
        # No last-known store: with every coin priced by the API, the sweep would only write to it.
        tier = PriceRedisTier(client, settings, key_prefix=prefix)
        return PriceService(make_coins_api(settings), tier, None, settings)

    held = sorted({token for holding in users for token in holding})
    sweeper = container()
    api.reset_counters()
    swept = sweeper.sweep(held)
    sweep_calls, sweep_coins_sent = api.request_count, api.coins_requested
    sweeper.close()

    updaters = [container() for _ in range(CONTAINERS)]
    messages = [users[start : start + USERS_PER_MESSAGE] for start in range(0, len(users), USERS_PER_MESSAGE)]
    api.reset_counters()
    unpriced = 0
    for index, message in enumerate(messages):
        message_tokens = {token for holding in message for token in holding}
        unpriced += len(message_tokens) - len(updaters[index % CONTAINERS].get_prices(message_tokens))
    updater_calls = api.request_count
    redis_hits = sum(updater.stats().redis_hits for updater in updaters)
    for updater in updaters:
        updater.close()
    return {
        "held_tokens": len(held),
        "held_coins": swept.coins,
        "sweep_api_calls": sweep_calls,
        "sweep_coins_sent": sweep_coins_sent,
        "sweep_unpriced_coins": len(swept.unpriced),
        "messages": len(messages),
        "updater_api_calls": updater_calls,
        "updater_redis_hits": redis_hits,
        "updater_unpriced_tokens": unpriced,
    }


def _naive_calls(api: CoinsApiServer, settings: Settings, users: list[list[str]]) -> int:
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
    with (
        CoinsApiServer(prices={}, price_every_coin=True) as api,
        _redis_client() as client,
        contextlib.redirect_stdout(io.StringIO()),
    ):
        settings = Settings(PRICES_API_URL=api.url, PRICE_MEMORY_TTL_SECONDS=300, PRICE_BATCH_SIZE=BATCH_SIZE)
        print("price_calls: one cycle (sweep + updaters)", file=sys.stderr, flush=True)
        cycle = _cycle_calls(api, settings, client, users)
        print("price_calls: per-user fetching", file=sys.stderr, flush=True)
        naive = _naive_calls(api, settings, users)
        print("price_calls: warm overhead", file=sys.stderr, flush=True)
        overhead = _warm_overhead(settings)
        metrics.clear_metrics()
    calls = cycle["sweep_api_calls"] + cycle["updater_api_calls"]
    return {
        "benchmark": "price_calls",
        "users": USERS,
        "unique_tokens": UNIQUE_TOKENS,
        "users_per_message": USERS_PER_MESSAGE,
        "containers": CONTAINERS,
        "batch_size": BATCH_SIZE,
        **cycle,
        "cycle_api_calls": calls,
        "lower_bound_calls": math.ceil(cycle["held_coins"] / BATCH_SIZE),
        "naive_api_calls": naive,
        "calls_saved_ratio": round(naive / calls, 1) if calls else None,
        **overhead,
    }


def main() -> None:
    figures = run()
    print(
        f"one cycle of {figures['users']} users ({figures['held_coins']} held coins, {figures['messages']} messages "
        f"over {figures['containers']} containers): {figures['cycle_api_calls']} coins API calls "
        f"(sweep {figures['sweep_api_calls']}, updaters {figures['updater_api_calls']}; lower bound "
        f"{figures['lower_bound_calls']}) vs {figures['naive_api_calls']} fetching per user "
        f"-> {figures['calls_saved_ratio']}x fewer"
    )
    print(
        f"warm memory tier: {figures['warm_service_ns_per_token']} ns/token vs dict lookup "
        f"{figures['dict_lookup_ns_per_token']} ns/token ({figures['warm_overhead_ratio']}x)"
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
