"""GET /portfolios/{userId} through the whole API handler: a cache hit against a bare redis-py GET of the
same body, the DynamoDB requests of a cache miss, and the CPU time of a miss for a heavy user.

    .venv/bin/python -m benchmarks.api_read

Starts its own redis-server, moto's server (DynamoDB over HTTP, in a child process so that its CPU is
not this process's) and local coins API, records a small portfolio through the handler, then:
1. times, in alternating rounds on the same Redis, the handler's cached read (HTTP API event in,
   response dict out: auth, routing, validation, cache hit, ETag) and a bare GET of the same bytes
   with the same redis-py client. Headline: the median over rounds of (handler p50 / bare p50),
   target at most 3;
2. counts the DynamoDB requests, by operation, of MISS_READS cache-miss reads of the small user (its
   views invalidated before each); the write left its prices in Redis. Target 1 (one GetItem);
3. seeds users with HEAVY_TRANSACTIONS transactions over HEAVY_TOKENS tokens (the items written with
   BatchWriteItem in the store's format, then the portfolio item holding replay(transactions)
   committed through the store, with its holder counts), sweeps their tokens' prices into Redis,
   and measures the CPU time (time.process_time) of a cache-miss summary read through the handler:
   views invalidated and the container's price memory tier cleared before each read, so the
   positions come from one GetItem and the quotes from Redis. Median of HEAVY_READS reads; target
   under 20 ms. Two histories: "trading" (the headline: ~60 % buys, sells of 20-80 % of the
   holding, so FIFO leaves ~150 open lots) and "buys_only" (every transaction an open lot: the
   most open lots 10,000 transactions can leave).
"""

from __future__ import annotations

import os

# Before Powertools is imported: no X-Ray daemon here, so tracing is off as in the tests.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")

import contextlib
import io
import json
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from benchmarks.dynamodb_meter import DynamoDbMeter
from benchmarks.timing import compare, percentile_us
from local_stack.aws import MotoProcess, local_client
from local_stack.coins_api import CoinsApiServer
from local_stack.embedded_redis import RedisServer
from local_stack.functions import function_environment, load_handler
from local_stack.http_events import http_event
from local_stack.lambda_context import LocalLambdaContext
from local_stack.template_resources import create_tables

TARGET_RATIO = 3.0
TARGET_MISS_REQUESTS = 1
TARGET_HEAVY_MISS_MS = 20.0
USER_ID = "bench-api-user"
HEAVY_USER_PREFIX = "bench-api-heavy-"
BARE_KEY = "bench:api-bare-get"
CHAINS_AND_TOKENS = 30
MISS_READS = 20
HEAVY_TRANSACTIONS = 10_000
HEAVY_TOKENS = 40
HEAVY_READS = 15
HEAVY_WARMUP_READS = 2
BATCH_WRITE_ITEMS = 25
SEED = 20240917


def _progress(message: str) -> None:
    print(f"api_read: {message}", file=sys.stderr, flush=True)


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
    redis_server = RedisServer().start()
    coins = CoinsApiServer(prices={}, price_every_coin=True).start()
    saved = dict(os.environ)
    try:
        with MotoProcess() as moto:
            suffix = uuid.uuid4().hex[:8]
            names = {"PortfolioTable": f"portfolio-{suffix}"}
            create_tables(local_client("dynamodb", moto.endpoint), names)
            environment = function_environment(
                aws_endpoint=moto.endpoint,
                region="us-east-1",
                table_name=names["PortfolioTable"],
                redis_url=redis_server.url,
                prices_api_url=coins.url,
            )
            # moto answers the seeding's large writes far slower than DynamoDB: the 2 s default would time out.
            os.environ.update(environment, DYNAMODB_READ_TIMEOUT_S="30")
            # Thousands of reads by one user: per-user limits high enough never to refuse one, still
            # checked on every request, so the cached read's figures include the limit's round trip.
            os.environ.update(USER_READ_RATE_PER_S="10000", USER_READ_BURST="100000")
            yield redis_server
    finally:
        os.environ.clear()
        os.environ.update(saved)
        coins.stop()
        redis_server.stop()


# The heavy user ----------------------------------------------------------------------------------


def _trading_step(rng: random.Random, address: str, held: dict[str, Decimal]) -> tuple[str, Decimal]:
    """About 60 % buys; a sell takes 20-80 % of what is held (FIFO then leaves some hundred open lots)."""
    if held[address] > 1 and rng.random() < 0.4:
        amount = (held[address] * Decimal(rng.randint(20, 80)) / 100).quantize(Decimal("0.00000001"))
        held[address] -= amount
        return "sell", amount
    amount = Decimal(rng.randint(1, 10_000_000)) / 10_000
    held[address] += amount
    return "buy", amount


def _buying_step(rng: random.Random, address: str, held: dict[str, Decimal]) -> tuple[str, Decimal]:
    """Buys only (a savings plan): every transaction stays an open lot."""
    amount = Decimal(rng.randint(1, 10_000_000)) / 10_000
    held[address] += amount
    return "buy", amount


HISTORIES = {"trading": _trading_step, "buys_only": _buying_step}


def heavy_history(kind: str = "trading", count: int = HEAVY_TRANSACTIONS, tokens: int = HEAVY_TOKENS) -> list[Any]:
    """`count` transactions an hour apart over `tokens` tokens, each step as HISTORIES[kind] decides."""
    from portfolio.domain.transactions import Transaction

    step = HISTORIES[kind]
    rng = random.Random(SEED)
    addresses = [f"0x{rng.getrandbits(160) | 1:040x}" for _ in range(tokens)]
    held = dict.fromkeys(addresses, Decimal(0))
    started = datetime(2023, 1, 1, tzinfo=UTC)
    history = []
    for index in range(count):
        address = rng.choice(addresses)
        kind_of_transaction, amount = step(rng, address, held)
        history.append(
            Transaction(
                id=f"heavy-{index:05d}",
                type=kind_of_transaction,
                chain="ethereum",
                token_address=address,
                amount=str(amount),
                price_usd=str(Decimal(rng.randint(1, 500_000)) / 100),
                fee_usd="1.25" if index % 10 == 0 else None,
                timestamp=started + timedelta(hours=index),
            )
        )
    return history


def seed_heavy_users(histories: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    """Each user's portfolio item committed through the store (with its holder counts), then every
    transaction item written by BatchWriteItem in the store's format; then the tokens' prices swept.

    The commits come first: moto copies the whole table for every TransactWriteItems, which takes
    longer than a request may once it holds tens of thousands of items. The stored result is the same.
    """
    from portfolio import wiring
    from portfolio.adapters.dynamodb import items as store_items
    from portfolio.adapters.positions_codec import encode_positions
    from portfolio.domain.accounting import Ledger, replay
    from portfolio.domain.portfolio_record import PortfolioRecord
    from portfolio.domain.stored_portfolio import StoredPortfolio
    from portfolio.services.positions import holder_changes

    client = wiring.dynamodb_client()
    table = wiring.settings().table_name
    seeded: dict[str, dict[str, Any]] = {}
    held: set[Any] = set()
    for user_id, history in histories.items():
        ledger = replay(history)
        record = PortfolioRecord(user_id=user_id, updated_at=history[-1].timestamp)
        wiring.portfolio_store().commit(
            StoredPortfolio(record=record, ledger=ledger),
            expected_version=0,
            holder_changes=holder_changes(Ledger.empty(), ledger),
        )
        held.update(ledger.held_tokens())
        seeded[user_id] = {
            "transactions": len(history),
            "tokens": len(ledger.positions),
            "held_tokens": len(ledger.held_tokens()),
            "open_lots": sum(len(position.lots) for position in ledger.positions.values()),
            "positions_bytes": sum(map(len, encode_positions(ledger))),
        }
    for user_id, history in histories.items():
        items = [store_items.transaction_item(user_id, transaction) for transaction in history]
        for start in range(0, len(items), BATCH_WRITE_ITEMS):
            requests = [{"PutRequest": {"Item": item}} for item in items[start : start + BATCH_WRITE_ITEMS]]
            pending: dict[str, Any] = {table: requests}
            while pending:
                pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    # The sweep's work for these tokens: quotes in Redis (and the last-known copies).
    wiring.price_service().sweep(held)
    return seeded


def _heavy_miss_reads(
    invoke: Callable[[dict[str, Any]], dict[str, Any]], meter: DynamoDbMeter, user_id: str
) -> dict[str, Any]:
    from portfolio import wiring

    read_event = http_event("GET", f"/portfolios/{user_id}", sub=user_id)
    cache, prices = wiring.portfolio_cache(), wiring.price_service()
    samples_ms: list[float] = []
    for round_number in range(HEAVY_WARMUP_READS + HEAVY_READS):
        cache.invalidate_user(user_id)
        prices.clear_cache()  # quotes from Redis, where the sweep left them
        if round_number == HEAVY_WARMUP_READS:
            meter.reset()
        started = time.process_time()
        response = invoke(read_event)
        elapsed_ms = (time.process_time() - started) * 1000
        if response["statusCode"] != 200:
            raise RuntimeError(f"a cache-miss read of the heavy user failed: {response}")
        if round_number >= HEAVY_WARMUP_READS:
            samples_ms.append(elapsed_ms)
    ordered = sorted(samples_ms)
    return {
        "cpu_ms_median": round(statistics.median(samples_ms), 2),
        "cpu_ms_min": round(ordered[0], 2),
        "cpu_ms_max": round(ordered[-1], 2),
        "reads": HEAVY_READS,
        "dynamodb_requests_per_read": meter.total_requests / HEAVY_READS,
        "dynamodb_requests_by_operation": dict(sorted(meter.requests.items())),
        "read_units_per_read": float(meter.total_read_units / HEAVY_READS),
        "body_bytes": len(response["body"]),
    }


def run(repetitions: int = 7, calls_per_repetition: int = 1_000, miss_reads: int = MISS_READS) -> dict:
    with _local_stack(), contextlib.redirect_stdout(io.StringIO()):
        from portfolio import wiring

        wiring.reset()
        lambda_handler = load_handler("ApiFunction")

        def invoke(event: dict[str, Any]) -> dict[str, Any]:
            return lambda_handler(event, LocalLambdaContext("api"))

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

        _progress("cached read against bare GET")
        timed = compare(handler_read, bare_get, repetitions=repetitions, calls=calls_per_repetition, warmup=200)

        _progress("cache-miss reads of the small user")
        meter = DynamoDbMeter(wiring.dynamodb_client())
        cache = wiring.portfolio_cache()
        for _ in range(miss_reads):
            cache.invalidate_user(USER_ID)
            if invoke(read_event)["statusCode"] != 200:
                raise RuntimeError("a cache-miss read failed")
        small_miss = meter.snapshot()
        small_requests = meter.total_requests
        client.delete(BARE_KEY)

        _progress(f"seeding {len(HISTORIES)} users with {HEAVY_TRANSACTIONS:,} transactions each")
        started = time.monotonic()
        seeded = seed_heavy_users({HEAVY_USER_PREFIX + kind: heavy_history(kind) for kind in HISTORIES})
        seed_seconds = round(time.monotonic() - started, 1)
        heavy: dict[str, dict[str, Any]] = {}
        for kind in HISTORIES:
            _progress(f"cache-miss reads of the {kind} user")
            user_id = HEAVY_USER_PREFIX + kind
            heavy[kind] = {"history": kind, **seeded[user_id], **_heavy_miss_reads(invoke, meter, user_id)}
        wiring.reset()

    ratio = timed.ratio
    per_miss = small_requests / miss_reads
    return {
        "benchmark": "api_read",
        "ratio_p50": ratio,
        "target_ratio": TARGET_RATIO,
        "within_target": ratio <= TARGET_RATIO
        and per_miss <= TARGET_MISS_REQUESTS
        and heavy["trading"]["cpu_ms_median"] < TARGET_HEAVY_MISS_MS,
        "handler_hit_p50_us": percentile_us(timed.subject, 0.50),
        "handler_hit_p99_us": percentile_us(timed.subject, 0.99),
        "bare_get_p50_us": percentile_us(timed.baseline, 0.50),
        "bare_get_p99_us": percentile_us(timed.baseline, 0.99),
        "dynamodb_requests_per_miss": per_miss,
        "dynamodb_requests_per_miss_by_operation": {
            operation: count / miss_reads for operation, count in small_miss["requests_by_operation"].items()
        },
        "target_dynamodb_requests_per_miss": TARGET_MISS_REQUESTS,
        "heavy_miss_cpu_ms": heavy["trading"]["cpu_ms_median"],
        "heavy_miss_cpu_ms_buys_only": heavy["buys_only"]["cpu_ms_median"],
        "target_heavy_miss_cpu_ms": TARGET_HEAVY_MISS_MS,
        "heavy_miss": heavy,
        "heavy_seed_seconds": seed_seconds,
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
    for kind, heavy in result["heavy_miss"].items():
        print(
            f"cache miss of a user with {heavy['transactions']:,} transactions, {kind} ({heavy['open_lots']:,} open "
            f"lots, {heavy['positions_bytes']:,} bytes of positions): {heavy['cpu_ms_median']} ms of CPU, median "
            f"(target < {TARGET_HEAVY_MISS_MS})"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
