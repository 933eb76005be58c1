"""Many concurrent misses on one view: one load, everyone served."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from portfolio.adapters.portfolio_cache import CacheKind, PortfolioCache
from portfolio.adapters.redis_connection import make_redis_client
from portfolio.settings import Settings

CALLERS = 20


def test_given_twenty_concurrent_misses_on_one_view_when_they_load_then_the_loader_runs_once(
    cache_settings: Settings, user_id: str
) -> None:
    # Given: a cold view, a slow loader, and twenty callers released at the same instant
    cache = PortfolioCache(make_redis_client(cache_settings), cache_settings, wait_ms=10_000)
    loads: list[int] = []
    start = threading.Barrier(CALLERS)

    def slow_load() -> bytes:
        loads.append(1)
        time.sleep(0.2)
        return b'{"totalValueUsd":"1.00"}'

    def read() -> bytes:
        start.wait()
        return cache.get_or_load(CacheKind.PORTFOLIO, user_id, slow_load)

    # When
    with ThreadPoolExecutor(max_workers=CALLERS) as pool:
        bodies = list(pool.map(lambda _: read(), range(CALLERS)))

    # Then
    assert len(loads) == 1
    assert bodies == [b'{"totalValueUsd":"1.00"}'] * CALLERS
    stats = cache.stats().kinds[CacheKind.PORTFOLIO]
    assert (stats.misses, stats.hits) == (1, CALLERS - 1)
    cache.close()


def test_given_a_loader_that_hangs_when_others_miss_the_same_view_then_they_stop_waiting_and_load_themselves(
    cache_settings: Settings, user_id: str
) -> None:
    # Given: one caller holds the load and is stuck
    cache = PortfolioCache(make_redis_client(cache_settings), cache_settings, wait_ms=50)
    holder_started = threading.Event()
    release_holder = threading.Event()

    def stuck_load() -> bytes:
        holder_started.set()
        release_holder.wait(timeout=30)
        return b"from the stuck holder"

    with ThreadPoolExecutor(max_workers=1) as pool:
        holder = pool.submit(cache.get_or_load, CacheKind.ASSETS, user_id, stuck_load, "chain=base")
        assert holder_started.wait(timeout=10)

        # When: another caller misses the same view
        body = cache.get_or_load(CacheKind.ASSETS, user_id, lambda: b"loaded by the waiter", "chain=base")

        # Then: it was not held hostage by the stuck loader
        assert body == b"loaded by the waiter"
        release_holder.set()
        assert holder.result() == b"from the stuck holder"
    cache.close()
