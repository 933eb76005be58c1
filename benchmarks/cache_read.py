"""A cache hit through PortfolioCache against a bare redis-py GET of the same bytes, on the same Redis.

    .venv/bin/python -m benchmarks.cache_read

Both paths use one client and one redis-server started for the run; the rounds alternate which path
goes first. The headline is the median over rounds of (cache p50 / bare GET p50); the target is at
most 1.5, i.e. the generation check, stats and metrics add less than half a GET.
"""

from __future__ import annotations

import contextlib
import io
import json
from decimal import Decimal

from portfolio.adapters.portfolio_cache import CacheKind, PortfolioCache
from portfolio.adapters.redis_connection import make_redis_client
from portfolio.observability import metrics
from portfolio.settings import Settings

from benchmarks.timing import compare, percentile_us
from local_stack.embedded_redis import RedisServer

TARGET_RATIO = 1.5
USER_ID = "bench-user"
BARE_KEY = "bench:bare-get"


def _portfolio_body(assets: int = 40) -> bytes:
    """A portfolio response of a realistic size (about 10 KB)."""
    rows = [
        {
            "token": f"ethereum:0x{n:040x}",
            "symbol": f"TOK{n}",
            "amount": str(Decimal("1234.567890123456789") * n),
            "priceUsd": str(Decimal("1.000123") + n),
            "valueUsd": str(Decimal("98765.4321") * n),
            "unrealizedPnlUsd": str(Decimal("-12.34") * n),
        }
        for n in range(1, assets + 1)
    ]
    return json.dumps({"userId": USER_ID, "totalValueUsd": "123456789.01", "assets": rows}).encode()


def run(repetitions: int = 7, calls_per_repetition: int = 2_000) -> dict:
    server = RedisServer().start()
    settings = Settings(REDIS_URL=server.url)
    client = make_redis_client(settings)
    assert client is not None
    cache = PortfolioCache(client, settings)
    body = _portfolio_body()
    try:
        cache.set(CacheKind.PORTFOLIO, USER_ID, body)
        client.set(BARE_KEY, body)
        if cache.get(CacheKind.PORTFOLIO, USER_ID) != body or client.get(BARE_KEY) != body:
            raise RuntimeError("the two paths do not return the same bytes")

        def cached() -> object:
            return cache.get(CacheKind.PORTFOLIO, USER_ID)

        def bare() -> object:
            return client.get(BARE_KEY)

        # Metrics flush to stdout as EMF every hundred values; keep that out of the report.
        with contextlib.redirect_stdout(io.StringIO()):
            timed = compare(cached, bare, repetitions=repetitions, calls=calls_per_repetition, warmup=500)
        metrics.clear_metrics()
    finally:
        cache.close()
        server.stop()

    ratio = timed.ratio
    return {
        "benchmark": "cache_read",
        "ratio_p50": ratio,
        "target_ratio": TARGET_RATIO,
        "within_target": ratio <= TARGET_RATIO,
        "cache_hit_p50_us": percentile_us(timed.subject, 0.50),
        "cache_hit_p99_us": percentile_us(timed.subject, 0.99),
        "bare_get_p50_us": percentile_us(timed.baseline, 0.50),
        "bare_get_p99_us": percentile_us(timed.baseline, 0.99),
        "body_bytes": len(body),
        "repetitions": repetitions,
        "calls_per_repetition": calls_per_repetition,
    }


def main() -> None:
    result = run()
    print(
        f"cache hit vs bare GET: ratio {result['ratio_p50']} (target <= {TARGET_RATIO}); "
        f"cache p50 {result['cache_hit_p50_us']} us, p99 {result['cache_hit_p99_us']} us; "
        f"bare p50 {result['bare_get_p50_us']} us, p99 {result['bare_get_p99_us']} us; "
        f"{result['body_bytes']} bytes"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
