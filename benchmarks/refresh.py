"""Refresh pipeline figures: the price sweep's writes per coin, the price updater's users per CPU-second
and DynamoDB requests and units per user, its peak memory, and the scheduler's calls and time.

Runs on this machine only: moto's server (DynamoDB, SQS) in a process of its own, a redis-server and
the fake coins API answering every call after 50 ms. Counts (calls, requests, items, messages) are
exact; times are this machine's, and CPU time (time.process_time) is this process's own: moto and
Redis run elsewhere.

1. Seeds UPDATER_USERS users holding 50 of TOKEN_POOL tokens each (portfolio items with their stored
   positions, and the holder counts, in the store's own item format) and IDLE_USERS users with
   nothing held; the first are marked active in the activity log, as a read marks them.
2. The price sweep (PriceSweep.run, as the scheduler runs it): coins swept, coins API calls and the
   items it writes (last-known price and price history) per coin.
3. The price updater's handler on the swept prices, ROUNDS invocations of 10 messages x 100 active
   users (after one unmeasured invocation): users valued and warmed per CPU-second of the handler,
   median over the rounds; DynamoDB requests, write units and read units per user (no user's
   positions change, so nothing should be written). Once for users who read their summary (the
   summary is warmed), once more for users who read their asset list too (both are warmed).
4. The scheduler's handler: a normal cycle (active users from the activity log, the idle users of
   this cycle's index shards) and a full idle pass (IDLE_REFRESH_EVERY_CYCLES=1: every user),
   with the CPU per request and the heaviest cycle projected to one million users.
5. Peak memory of one price-updater invocation (10 messages x 100 users x 50 holdings) in a fresh
   process.

    .venv/bin/python -m benchmarks.refresh
"""

from __future__ import annotations

import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.dynamodb_meter import DynamoDbMeter
from local_stack.aws import MotoProcess, local_client
from local_stack.coins_api import CoinsApiServer
from local_stack.embedded_redis import RedisServer
from local_stack.functions import function_environment
from local_stack.lambda_context import LocalLambdaContext
from local_stack.scheduler import scheduled_event
from local_stack.sqs_poller import SqsPoller
from local_stack.template_resources import create_tables

# The handlers live in functions/<name>/app.py and import as `<name>.app`, as in Lambda.
FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
if str(FUNCTIONS_DIR) not in sys.path:
    sys.path.insert(0, str(FUNCTIONS_DIR))

COINS_API_LATENCY_S = 0.05
HOLDINGS_PER_USER = 50
TOKEN_POOL = 400  # distinct tokens the benchmark users hold, popular ones more often
UPDATER_USERS = 1_000  # one invocation: 10 messages x 100 users
USERS_PER_MESSAGE = 100  # Settings.users_per_message's default
MESSAGES_PER_INVOCATION = 10  # the template's UpdaterBatchSize
ROUNDS = 7
IDLE_USERS = 3_000  # in the user index, never read lately
PRICE_BATCH_SIZE = 50
BATCH_WRITE_ITEMS = 25
SCHEDULER_TIMEOUT_MS = 280_000  # RefreshSchedulerFunction's Timeout
UPDATER_LAMBDA_MEMORY_MB = 512  # PriceUpdaterFunction's MemorySize
ONE_MILLION = 1_000_000
# Projection only: the share of users who read within ACTIVE_USER_HOURS (benchmarks/cost.py's default).
ACTIVE_SHARE = 0.10
TOKENS_AT_ONE_MILLION = 5_000  # benchmarks/cost.py's TOKENS_AT_1M_USERS
MEMORY_PROBE_FLAG = "--memory-probe"
HEAP_FLAG = "--heap"


def progress(message: str) -> None:
    print(f"refresh: {message}", file=sys.stderr, flush=True)


@dataclass
class Stack:
    environment: dict[str, str]
    coins_api: CoinsApiServer
    sqs: Any
    queue_url: str  # the refresh queue the scheduler sends to
    events_queue_url: str  # where the updater's benchmark events are received from


@contextmanager
def local_stack() -> Iterator[Stack]:
    os.environ.update(
        POWERTOOLS_METRICS_NAMESPACE="CrossChainPortfolio",
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_METRICS_DISABLED="true",  # keeps stdout to the one JSON line
    )
    redis_server = RedisServer().start()
    coins_api = CoinsApiServer(prices={}, price_every_coin=True).start()
    coins_api.delay_s = COINS_API_LATENCY_S
    try:
        with MotoProcess() as moto:
            endpoint = moto.endpoint
            dynamodb = local_client("dynamodb", endpoint)
            tables = {"PortfolioTable": "bench-portfolio"}
            create_tables(dynamodb, tables)
            sqs = local_client("sqs", endpoint)
            queue_url = sqs.create_queue(QueueName="bench-refresh")["QueueUrl"]
            events_queue_url = sqs.create_queue(QueueName="bench-updater-events")["QueueUrl"]
            environment = function_environment(
                aws_endpoint=endpoint,
                region="us-east-1",
                table_name=tables["PortfolioTable"],
                redis_url=redis_server.url,
                prices_api_url=coins_api.url,
                refresh_queue_url=queue_url,
            ) | {
                "PRICE_BATCH_SIZE": str(PRICE_BATCH_SIZE),
                "USERS_PER_MESSAGE": str(USERS_PER_MESSAGE),
                # moto answers a large batch slower than DynamoDB does; a retried write would muddle the counts.
                "DYNAMODB_READ_TIMEOUT_S": "30",
            }
            os.environ.update(environment)
            from portfolio import wiring

            wiring.reset()
            yield Stack(environment, coins_api, sqs, queue_url, events_queue_url)
    finally:
        coins_api.stop()
        redis_server.stop()


def generous_context() -> LocalLambdaContext:
    """moto is slower than DynamoDB; a 60 s budget could defer users, and the figures want every one."""
    return LocalLambdaContext("price-updater", timeout_s=900)


# Seeding -----------------------------------------------------------------------------------------


def token_pool(size: int, rng: random.Random) -> list[Any]:
    """Tokens with random addresses: stored positions compress as real ones do, not as a sequence."""
    from portfolio.domain.tokens import TokenId

    return [TokenId("ethereum", f"0x{rng.getrandbits(160) | 1:040x}") for _ in range(size)]


def holdings_of(pool: list[Any], rng: random.Random) -> list[Any]:
    """50 distinct tokens, skewed towards the head of the pool as real portfolios are."""
    weights = [1 / (rank + 1) for rank in range(len(pool))]
    chosen: dict[str, Any] = {}
    while len(chosen) < HOLDINGS_PER_USER:
        token = rng.choices(pool, weights=weights)[0]
        chosen[token.key] = token
    return list(chosen.values())


def _batch_write(items: list[dict[str, Any]]) -> None:
    from portfolio import wiring

    client = wiring.dynamodb_client()
    table = wiring.settings().table_name
    for start in range(0, len(items), BATCH_WRITE_ITEMS):
        requests = [{"PutRequest": {"Item": item}} for item in items[start : start + BATCH_WRITE_ITEMS]]
        pending: dict[str, Any] = {table: requests}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


def seed_users(user_ids: list[str], pool: list[Any], rng: random.Random) -> dict[str, list[Any]]:
    """Users who bought 50 tokens each, at amounts and prices of their own: their portfolio items
    (record and positions) and the holder counts, in the store's own item layout, as a commit
    leaves them.

    Written with BatchWriteItem rather than the store's transactional commit: moto copies the whole
    table for every TransactWriteItems, which makes seeding a thousand users quadratic. The
    transaction items are left out: the refresh never reads them.
    """
    from portfolio import wiring
    from portfolio.adapters.dynamodb import items as store_items
    from portfolio.domain.accounting import replay
    from portfolio.domain.portfolio_record import PortfolioRecord
    from portfolio.domain.stored_portfolio import StoredPortfolio
    from portfolio.domain.transactions import Transaction

    shards = wiring.settings().user_index_shards
    bought_at = datetime(2024, 6, 1, tzinfo=UTC)
    holdings = {user_id: holdings_of(pool, rng) for user_id in user_ids}
    holders: Counter[tuple[str, str]] = Counter()
    items = []
    for user_id in user_ids:
        transactions = [
            Transaction(
                id=f"t{index}",
                type="buy",
                chain=token.chain,
                token_address=token.address,
                amount=str(Decimal(rng.randint(1, 10**9)) / 10**4),
                price_usd=str(Decimal(rng.randint(1, 10**8)) / 10**4),
                timestamp=bought_at + timedelta(minutes=index),
            )
            for index, token in enumerate(holdings[user_id])
        ]
        record = PortfolioRecord(user_id=user_id, updated_at=bought_at)
        portfolio = StoredPortfolio(record=record, ledger=replay(transactions))
        items.append(store_items.record_item(portfolio, version=1, shards=shards))
        for token in holdings[user_id]:
            key = store_items.held_token_key(token.key, user_id)
            holders[(key["pk"]["S"], key["sk"]["S"])] += 1
    items += [{"pk": {"S": pk}, "sk": {"S": sk}, "holders": {"N": str(count)}} for (pk, sk), count in holders.items()]
    _batch_write(items)
    return holdings


def seed_idle_users(user_ids: list[str]) -> None:
    """Portfolio items with nothing held: users the scheduler enumerates in the index but never warms."""
    from portfolio import wiring
    from portfolio.adapters.dynamodb import items as store_items
    from portfolio.domain.stored_portfolio import StoredPortfolio

    shards = wiring.settings().user_index_shards
    _batch_write(
        [store_items.record_item(StoredPortfolio.new(user_id), version=1, shards=shards) for user_id in user_ids]
    )


# Price sweep -------------------------------------------------------------------------------------


def bench_sweep(stack: Stack, window: datetime) -> dict[str, Any]:
    """One sweep as the scheduler runs it: the held tokens, the coins API, Redis, last-known, history."""
    from portfolio import wiring

    sweep = wiring.price_sweep()
    meter = DynamoDbMeter(wiring.dynamodb_client())
    stack.coins_api.reset_counters()
    started, cpu_started = time.perf_counter(), time.process_time()
    outcome = sweep.run(window)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    meter.detach()
    if outcome.coins == 0 or outcome.unpriced:
        raise RuntimeError(f"the sweep priced {outcome.fresh} of {outcome.coins} coins")
    return {
        "held_tokens": outcome.tokens,
        "coins": outcome.coins,
        "fresh": outcome.fresh,
        "price_api_calls": stack.coins_api.request_count,
        "price_api_calls_lower_bound": math.ceil(outcome.coins / PRICE_BATCH_SIZE),
        "history_items": outcome.history_items,
        "write_units": meter.total_write_units,
        "write_units_per_coin": round(meter.total_write_units / outcome.coins, 3),
        "read_units": float(meter.total_read_units),
        **meter.snapshot(),
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 3),
    }


# Price updater -----------------------------------------------------------------------------------


def refresh_bodies(user_ids: list[str], window: datetime, *, asset_list: bool = False) -> list[str]:
    """Messages of active users; with `asset_list`, every one of them reads their asset list too."""
    from portfolio.services.refresh_message import RefreshMessage

    bodies = []
    for start in range(0, len(user_ids), USERS_PER_MESSAGE):
        users = user_ids[start : start + USERS_PER_MESSAGE]
        message = RefreshMessage(
            window=window, user_ids=users, tier="active", asset_user_ids=users if asset_list else None
        )
        bodies.append(message.model_dump_json(by_alias=True, exclude_none=True))
    return bodies


def sqs_event(stack: Stack, bodies: list[str]) -> dict[str, Any]:
    """The event Lambda's SQS event source hands the updater for these messages (at most 10)."""
    queue_url = stack.events_queue_url
    stack.sqs.send_message_batch(
        QueueUrl=queue_url, Entries=[{"Id": str(index), "MessageBody": body} for index, body in enumerate(bodies)]
    )
    messages: list[dict[str, Any]] = []
    while len(messages) < len(bodies):
        messages += stack.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
    poller = SqsPoller(stack.sqs, queue_url, lambda *_: None)
    stack.sqs.delete_message_batch(
        QueueUrl=queue_url,
        Entries=[
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]} for index, message in enumerate(messages)
        ],
    )
    return poller.event_for(messages)


def bench_updater(
    stack: Stack, users: list[str], first_window: datetime, *, asset_list: bool = False
) -> dict[str, Any]:
    """ROUNDS invocations of the handler on swept prices, each a new window (a repeated message is skipped).
    The users read their summary lately, and with `asset_list` their asset list too (both are warmed)."""
    from portfolio import wiring
    from portfolio.adapters.portfolio_cache import CacheKind
    from price_updater.app import lambda_handler

    if len(users) > USERS_PER_MESSAGE * MESSAGES_PER_INVOCATION:
        raise ValueError("one invocation takes at most 10 messages")
    meter = DynamoDbMeter(wiring.dynamodb_client())
    refresher = wiring.portfolio_refresher()
    prices = wiring.price_service()
    cache = wiring.portfolio_cache()
    calls_before = stack.coins_api.request_count
    rounds: list[dict[str, Any]] = []
    for round_number in range(ROUNDS + 1):  # the first pays the container's one-off costs, unmeasured
        window = first_window + timedelta(minutes=5 * round_number)
        event = sqs_event(stack, refresh_bodies(users, window, asset_list=asset_list))
        # A new cycle: the sweep has replaced the quotes in Redis, and the container's memory tier
        # holds the last cycle's, expired; so every round reads the batch's quotes from Redis.
        prices.clear_cache()
        for user_id in users:
            cache.invalidate_user(user_id)
        meter.reset()
        started, cpu_started = time.perf_counter(), time.process_time()
        answer = lambda_handler(event, generous_context())
        cpu_seconds, seconds = time.process_time() - cpu_started, time.perf_counter() - started
        counts = refresher.counts
        if answer.get("batchItemFailures") or counts.users_valued != len(users):
            raise RuntimeError(f"the updater did not refresh every user: {answer}, {counts}")
        if round_number == 0:
            continue
        rounds.append(
            {
                "users_valued": counts.users_valued,
                "cpu_seconds": round(cpu_seconds, 3),
                "seconds": round(seconds, 2),
                "users_per_cpu_second": round(counts.users_valued / cpu_seconds, 1),
                "dynamodb_requests": meter.total_requests,
                "write_units": meter.total_write_units,
                "read_units": float(meter.total_read_units),
                **meter.snapshot(),
            }
        )
    meter.detach()
    warmed = (CacheKind.PORTFOLIO, CacheKind.ASSETS) if asset_list else (CacheKind.PORTFOLIO,)
    if any(cache.get(kind, user_id) is None for kind in warmed for user_id in users[:: len(users) // 10 or 1]):
        raise RuntimeError("a refreshed active user's views were not warmed")
    valued = sum(entry["users_valued"] for entry in rounds)
    requests = sum(entry["dynamodb_requests"] for entry in rounds)
    write_units = sum(entry["write_units"] for entry in rounds)
    read_units = sum(entry["read_units"] for entry in rounds)
    by_operation: Counter[str] = Counter()
    for entry in rounds:
        by_operation.update(entry["requests_by_operation"])
    return {
        "users_per_invocation": len(users),
        "messages_per_invocation": math.ceil(len(users) / USERS_PER_MESSAGE),
        "holdings_per_user": HOLDINGS_PER_USER,
        "rounds": rounds,
        "users_per_cpu_second": round(statistics.median(entry["users_per_cpu_second"] for entry in rounds), 1),
        "users_per_second_wall_moto": round(valued / sum(entry["seconds"] for entry in rounds), 1),
        "dynamodb_requests_per_user": round(requests / valued, 4),
        "dynamodb_requests_by_operation": dict(sorted(by_operation.items())),
        "write_units_per_user": round(write_units / valued, 4),
        "read_units_per_user": round(read_units / valued, 4),
        "price_api_calls": stack.coins_api.request_count - calls_before,
    }


# Memory ------------------------------------------------------------------------------------------


def _probe(stack: Stack, users: list[str], window: datetime, *flags: str) -> dict[str, Any]:
    event = sqs_event(stack, refresh_bodies(users, window))
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(event, handle)
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "benchmarks.refresh", MEMORY_PROBE_FLAG, handle.name, *flags],
            env={**os.environ, **stack.environment},
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
    finally:
        Path(handle.name).unlink()
    return json.loads(completed.stdout.strip().splitlines()[-1])


def bench_memory(stack: Stack, users: list[str], window: datetime) -> dict[str, Any]:
    """One invocation on 10 messages x 100 users x 50 holdings, in a fresh process, so the peak is its own.

    Twice, each with a window of its own (a repeated message would be skipped): the peak RSS without
    tracemalloc, whose bookkeeping would add to it, then the Python heap's peak with it.
    """
    rss = _probe(stack, users, window)
    heap = _probe(stack, users, window + timedelta(minutes=5), HEAP_FLAG)
    return {**rss, "python_heap_peak_mb": heap["python_heap_peak_mb"]}


def _peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM on Linux. getrusage's ru_maxrss is not used: Linux
    carries it over from the parent across fork and exec, so it reads the benchmark's own peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_probe(event_path: str, *, heap: bool) -> dict[str, Any]:
    import tracemalloc

    from price_updater.app import lambda_handler

    event = json.loads(Path(event_path).read_text())
    rss_before_mb = _peak_rss_mb()
    if heap:
        tracemalloc.start()
    answer = lambda_handler(event, generous_context())
    rss_mb = _peak_rss_mb()
    figures: dict[str, Any] = {
        "messages": len(event["Records"]),
        "users": sum(len(json.loads(record["body"])["userIds"]) for record in event["Records"]),
        "holdings_per_user": HOLDINGS_PER_USER,
        "failed_messages": len(answer.get("batchItemFailures", [])),
        "process_max_rss_before_mb": round(rss_before_mb, 1),
        "process_max_rss_mb": round(rss_mb, 1),
        "lambda_memory_mb": UPDATER_LAMBDA_MEMORY_MB,
    }
    if heap:
        figures["python_heap_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
    return figures


# Scheduler ---------------------------------------------------------------------------------------


def _scheduler_run(stack: Stack, moment: datetime) -> dict[str, Any]:
    """One scheduler invocation and its figures (its messages are left in the refresh queue)."""
    from portfolio import wiring
    from refresh_scheduler.app import lambda_handler

    meter = DynamoDbMeter(wiring.dynamodb_client())
    stack.coins_api.reset_counters()
    started, cpu_started = time.perf_counter(), time.process_time()
    answer = lambda_handler(
        scheduled_event(moment), LocalLambdaContext("refresh-scheduler", timeout_s=SCHEDULER_TIMEOUT_MS / 1000)
    )
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    meter.detach()
    if not answer["started"]:
        raise RuntimeError(f"the scheduler did not run the window: {answer}")
    return {
        "window": answer["window"],
        "swept_coins": answer["sweptCoins"],
        "price_api_calls": answer["priceApiCalls"],
        "active_users": answer["activeUsers"],
        "users_queued": answer["usersQueued"],
        "idle_users_queued": answer["usersQueued"] - answer["activeUsers"],
        "messages": answer["messages"],
        "send_message_batch_calls": answer["sendMessageBatchCalls"],
        "dynamodb_requests": meter.total_requests,
        "write_units": meter.total_write_units,
        **meter.snapshot(),
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
    }


def _heaviest_cycle_at_one_million(users_per_message: int, shards: int, idle_every_cycles: int) -> dict[str, int]:
    """Requests of the busiest cycle at 1M users: 10 % active, the idle users of the most index
    shards one cycle covers, and the sweep of 5,000 held coins (benchmarks/cost.py's assumptions)."""
    from portfolio.adapters.dynamodb.items import HELD_TOKEN_SHARDS, HOLDER_SLOTS

    active = int(ONE_MILLION * ACTIVE_SHARE)
    idle_shards = math.ceil(shards / idle_every_cycles) if idle_every_cycles else 0
    idle_per_shard = math.ceil((ONE_MILLION - active) / shards)
    messages = math.ceil((active + idle_shards * idle_per_shard) / users_per_message)
    # A holder-count item is ~100 B: a 1 MB Query page holds ~10,000 of them.
    held_token_pages = HELD_TOKEN_SHARDS + TOKENS_AT_ONE_MILLION * HOLDER_SLOTS // 10_000
    return {
        "active_users": active,
        "idle_users_queued": idle_shards * idle_per_shard,
        "messages": messages,
        "send_message_batch_calls": math.ceil(messages / 10),
        "user_index_queries": idle_shards * (idle_per_shard // 1000 + 1),
        "held_token_queries": held_token_pages,
        "sweep_price_api_calls": math.ceil(TOKENS_AT_ONE_MILLION / PRICE_BATCH_SIZE),
        # last-known + 3 history items a coin, 25 a BatchWriteItem
        "sweep_batch_write_calls": math.ceil(TOKENS_AT_ONE_MILLION * 4 / BATCH_WRITE_ITEMS),
    }


def bench_scheduler(stack: Stack, first_moment: datetime) -> dict[str, Any]:
    from portfolio import wiring

    settings = wiring.settings()
    # A first run pays the container's one-off costs (clients, imports); the figures are of the next.
    _scheduler_run(stack, first_moment)
    normal = _scheduler_run(stack, first_moment + timedelta(minutes=5))
    # The full idle pass: every index shard in one cycle.
    os.environ["IDLE_REFRESH_EVERY_CYCLES"] = "1"
    wiring.reset()
    try:
        _scheduler_run(stack, first_moment + timedelta(minutes=10))  # new clients: one-off costs again
        full = _scheduler_run(stack, first_moment + timedelta(minutes=15))
    finally:
        del os.environ["IDLE_REFRESH_EVERY_CYCLES"]
        wiring.reset()

    # CPU goes into building, signing and parsing requests: it scales with requests, not users.
    requests = full["dynamodb_requests"] + full["send_message_batch_calls"]
    cpu_per_request = full["cpu_seconds"] / requests
    million = _heaviest_cycle_at_one_million(
        settings.users_per_message, settings.user_index_shards, settings.idle_refresh_every_cycles
    )
    million_requests = (
        million["send_message_batch_calls"]
        + million["user_index_queries"]
        + million["held_token_queries"]
        + million["sweep_batch_write_calls"]
        + 1  # the run lock
    )
    return {
        "users_in_index": UPDATER_USERS + IDLE_USERS,
        "idle_refresh_every_cycles": settings.idle_refresh_every_cycles,
        "index_shards": settings.user_index_shards,
        "normal_cycle": normal,
        "full_idle_pass": full,
        "cpu_ms_per_request": round(cpu_per_request * 1000, 2),
        "one_million_users_heaviest_cycle": {
            **million,
            "requests": million_requests,
            "cpu_seconds_at_this_machine_speed": round(cpu_per_request * million_requests, 1),
        },
    }


def run() -> dict[str, Any]:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    # Windows from two hours ago on, each step a new 5-minute window, none of them used twice.
    base = now.replace(minute=now.minute - now.minute % 5) - timedelta(hours=2)
    with local_stack() as stack:
        from portfolio import wiring

        rng = random.Random(7)
        pool = token_pool(TOKEN_POOL, rng)
        users = [f"bench-{index:05d}" for index in range(UPDATER_USERS)]
        idle_users = [f"idle-{index:05d}" for index in range(IDLE_USERS)]
        progress(f"seeding {UPDATER_USERS:,} users x {HOLDINGS_PER_USER} holdings and {IDLE_USERS:,} idle users")
        started = time.monotonic()
        seed_users(users, pool, rng)
        seed_idle_users(idle_users)
        activity = wiring.activity_log()
        for user_id in users:
            activity.touch(user_id)
        seed_seconds = round(time.monotonic() - started, 1)

        progress("price sweep")
        sweep = bench_sweep(stack, base)
        progress(f"price updater: {ROUNDS} rounds of {UPDATER_USERS:,} users")
        updater = bench_updater(stack, users, base + timedelta(minutes=5))
        progress(f"price updater, asset lists too: {ROUNDS} rounds of {UPDATER_USERS:,} users")
        with_asset_list = bench_updater(stack, users, base + timedelta(minutes=120), asset_list=True)
        progress("scheduler")
        scheduler = bench_scheduler(stack, base + timedelta(minutes=60))
        progress("memory probe")
        memory = bench_memory(stack, users, base + timedelta(minutes=90))
    return {
        "seed_seconds": seed_seconds,
        "token_pool": TOKEN_POOL,
        "sweep": sweep,
        "price_updater": updater,
        "price_updater_with_asset_lists": with_asset_list,
        "scheduler": scheduler,
        "memory": memory,
    }


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == MEMORY_PROBE_FLAG:
        print(json.dumps(memory_probe(sys.argv[2], heap=HEAP_FLAG in sys.argv[3:])))
    else:
        print(json.dumps(run()))
