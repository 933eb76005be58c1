"""A cached GET /portfolios/{userId} through the whole API handler against a bare redis-py GET of the same body.

    .venv/bin/python -m benchmarks.api_read

Starts its own redis-server, moto server (DynamoDB over HTTP) and local coins API, records a
portfolio through the handler, then times, in alternating rounds on the same Redis:
- the handler: HTTP API event in, response dict out (auth, routing, validation, cache hit, ETag);
- a bare GET of the same bytes with the same redis-py client.
The headline is the median over rounds of (handler p50 / bare GET p50); the target is at most 3.
It also counts DynamoDB requests per cache-miss read (target 1: one Query).
"""

from __future__ import annotations

import os

# Before Powertools is imported: no X-Ray daemon here, so tracing is off as in the tests.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")

import contextlib
import importlib.util
import io
import json
import logging
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from benchmarks.timing import compare, percentile_us
from local_stack.template_resources import create_tables
from tests.support.fake_coins_api import FakeCoinsApi
from tests.support.http_events import http_event
from tests.support.lambda_context import LambdaContext
from tests.support.processes import RedisServer, free_port

API_HANDLER = Path(__file__).resolve().parents[1] / "functions" / "api" / "app.py"
TARGET_RATIO = 3.0
TARGET_MISS_REQUESTS = 1
USER_ID = "bench-api-user"
BARE_KEY = "bench:api-bare-get"
CHAINS_AND_TOKENS = 30


def _load_api_handler() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """functions/api/app.py, loaded from its file as `sam build` would package it."""
    spec = importlib.util.spec_from_file_location("api_function_app", API_HANDLER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.lambda_handler


def _transactions() -> list[dict[str, Any]]:
    return [
        {
            "id": f"bench-{n}",
            "type": "buy",
            "chain": "ethereum",
            "tokenAddress": f"0x{n + 1:040x}",
            "amount": f"{n + 1}.123456789",
            "priceUsd": "1.5",
            "timestamp": "2024-01-01T00:00:00Z",
        }
        for n in range(CHAINS_AND_TOKENS)
    ]


@contextlib.contextmanager
def _local_stack() -> Any:
    """Redis, moto's server, the template's tables and a coins API; the handler's environment points at them."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    redis_server = RedisServer().start()
    moto_port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=moto_port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{moto_port}"
    coins = FakeCoinsApi(price_every_coin=True).start()
    saved = dict(os.environ)
    try:
        os.environ.update(
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench",
            AWS_REGION="us-east-1",
            AWS_DEFAULT_REGION="us-east-1",
            POWERTOOLS_TRACE_DISABLED="1",
        )
        suffix = uuid.uuid4().hex[:8]
        names = {"PortfolioTable": f"portfolio-{suffix}", "IdempotencyTable": f"idempotency-{suffix}"}
        create_tables(boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1"), names)
        os.environ.update(
            AWS_ENDPOINT_URL=endpoint,
            TABLE_NAME=names["PortfolioTable"],
            IDEMPOTENCY_TABLE_NAME=names["IdempotencyTable"],
            REDIS_URL=redis_server.url,
            PRICES_API_URL=coins.url,
        )
        yield redis_server
    finally:
        os.environ.clear()
        os.environ.update(saved)
        coins.stop()
        moto.stop()
        redis_server.stop()


def run(repetitions: int = 7, calls_per_repetition: int = 1_000, miss_reads: int = 20) -> dict:
    with _local_stack(), contextlib.redirect_stdout(io.StringIO()):
        from portfolio import wiring

        wiring.reset()
        lambda_handler = _load_api_handler()

        def invoke(event: dict[str, Any]) -> dict[str, Any]:
            return lambda_handler(event, LambdaContext())

        recorded = invoke(
            http_event(
                "POST", f"/portfolios/{USER_ID}/transactions", sub=USER_ID, body={"transactions": _transactions()}
            )
        )
        if recorded["statusCode"] != 201:
            raise RuntimeError(f"could not record the portfolio: {recorded}")

        read_event = http_event("GET", f"/portfolios/{USER_ID}", sub=USER_ID)
        body = invoke(read_event)["body"].encode()
        client = wiring.redis_client()
        assert client is not None
        client.set(BARE_KEY, body)
        if client.get(BARE_KEY) != body or invoke(read_event)["body"].encode() != body:
            raise RuntimeError("the two paths do not return the same bytes")

        def handler_read() -> object:
            return invoke(read_event)

        def bare_get() -> object:
            return client.get(BARE_KEY)

        timed = compare(handler_read, bare_get, repetitions=repetitions, calls=calls_per_repetition, warmup=200)

        requests: list[str] = []
        wiring.dynamodb_client().meta.events.register(
            "before-call.dynamodb", lambda event_name, **_: requests.append(event_name)
        )
        cache = wiring.portfolio_cache()
        for _ in range(miss_reads):
            cache.invalidate_user(USER_ID)
            if invoke(read_event)["statusCode"] != 200:
                raise RuntimeError("a cache-miss read failed")
        client.delete(BARE_KEY)
        wiring.reset()

    ratio = timed.ratio
    per_miss = len(requests) / miss_reads
    return {
        "benchmark": "api_read",
        "ratio_p50": ratio,
        "target_ratio": TARGET_RATIO,
        "within_target": ratio <= TARGET_RATIO and per_miss <= TARGET_MISS_REQUESTS,
        "handler_hit_p50_us": percentile_us(timed.subject, 0.50),
        "handler_hit_p99_us": percentile_us(timed.subject, 0.99),
        "bare_get_p50_us": percentile_us(timed.baseline, 0.50),
        "bare_get_p99_us": percentile_us(timed.baseline, 0.99),
        "dynamodb_requests_per_miss": per_miss,
        "target_dynamodb_requests_per_miss": TARGET_MISS_REQUESTS,
        "body_bytes": len(body),
        "repetitions": repetitions,
        "calls_per_repetition": calls_per_repetition,
    }


def main() -> None:
    result = run()
    print(
        f"cached GET through the handler vs bare GET: ratio {result['ratio_p50']} (target <= {TARGET_RATIO}); "
        f"handler p50 {result['handler_hit_p50_us']} us, p99 {result['handler_hit_p99_us']} us; "
        f"bare p50 {result['bare_get_p50_us']} us, p99 {result['bare_get_p99_us']} us; "
        f"DynamoDB requests per cache miss {result['dynamodb_requests_per_miss']} (target {TARGET_MISS_REQUESTS}); "
        f"{result['body_bytes']} bytes"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
