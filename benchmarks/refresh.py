"""Refresh pipeline figures: users refreshed per second, price API calls against their lower bound,
DynamoDB requests per user, peak memory of one price-updater invocation, and the scheduler's time
and calls extrapolated to one million users.

Runs on this machine only: moto's server (DynamoDB, SQS) over HTTP, a redis-server of its own and
the fake coins API answering every call after 50 ms. Local latencies are not AWS latencies; the
counts (calls, requests, messages) are exact, the times are this machine's.

    .venv/bin/python -m benchmarks.refresh
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from local_stack.scheduler import scheduled_event
from local_stack.sqs_poller import SqsPoller
from local_stack.template_resources import create_tables
from tests.support.fake_coins_api import FakeCoinsApi
from tests.support.lambda_context import LambdaContext
from tests.support.processes import RedisServer, free_port, wait_for_port

# The handlers live in functions/<name>/app.py and import as `<name>.app`, as in Lambda.
FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"
if str(FUNCTIONS_DIR) not in sys.path:
    sys.path.insert(0, str(FUNCTIONS_DIR))

COINS_API_LATENCY_S = 0.05
HOLDINGS_PER_USER = 50
TOKEN_POOL = 400  # distinct tokens the benchmark users hold, popular ones more often
UPDATER_USERS = 200  # 2 invocations of 10 messages x 10 users
# For the projection only: a DynamoDB request inside the region takes about this long.
AWS_DYNAMODB_LATENCY_S = 0.008
PRICE_MAX_CONCURRENCY = 4  # the Settings defaults
PRICE_BATCH_SIZE = 50
MEMORY_PROBE_USERS = 100  # one invocation: 10 messages x 10 users x 50 holdings
SCHEDULER_USERS = 3000
# Projections only: in-region latencies of a 1000-key index page and of a 10-entry SendMessageBatch.
AWS_INDEX_PAGE_LATENCY_S = 0.03
AWS_SEND_BATCH_LATENCY_S = 0.02
ONE_MILLION = 1_000_000
MEMORY_PROBE_FLAG = "--memory-probe"


@dataclass
class Stack:
    environment: dict[str, str]
    coins_api: FakeCoinsApi
    sqs: Any
    queue_url: str


@contextmanager
def local_stack() -> Iterator[Stack]:
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        POWERTOOLS_TRACE_DISABLED="1",
        POWERTOOLS_METRICS_NAMESPACE="CrossChainPortfolio",
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_METRICS_DISABLED="true",  # keeps stdout to the one JSON line
    )
    port = free_port()
    # In its own process, so that this process's CPU time is the functions' own.
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port)
    redis_server = RedisServer().start()
    coins_api = FakeCoinsApi(price_every_coin=True).start()
    coins_api.delay_s = COINS_API_LATENCY_S
    try:
        endpoint = f"http://127.0.0.1:{port}"
        dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
        tables = {"PortfolioTable": "bench-portfolio", "IdempotencyTable": "bench-idempotency"}
        create_tables(dynamodb, tables)
        sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
        queue_url = sqs.create_queue(QueueName="bench-refresh", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
        environment = {
            "AWS_ENDPOINT_URL": endpoint,
            "TABLE_NAME": tables["PortfolioTable"],
            "IDEMPOTENCY_TABLE_NAME": tables["IdempotencyTable"],
            "REDIS_URL": redis_server.url,
            "REFRESH_QUEUE_URL": queue_url,
            "PRICES_API_URL": coins_api.url,
            # moto answers a large batch slower than DynamoDB does; a retried write would muddle the counts.
            "DYNAMODB_READ_TIMEOUT_S": "30",
        }
        os.environ.update(environment)
        from portfolio import wiring

        wiring.reset()
        yield Stack(environment, coins_api, sqs, queue_url)
    finally:
        coins_api.stop()
        redis_server.stop()
        moto.terminate()
        moto.wait(timeout=10)


def generous_context() -> LambdaContext:
    """moto is slow enough that a real 60 s budget would cut pricing short; the figures want it whole."""
    return LambdaContext(timeout_ms=900_000)


# Seeding -----------------------------------------------------------------------------------------


def token_pool(size: int) -> list[Any]:
    from portfolio.domain.tokens import TokenId

    # Fresh addresses every run, so no cache tier starts warm.
    return [TokenId("ethereum", "0x" + (uuid.uuid4().hex + uuid.uuid4().hex)[:40]) for _ in range(size)]


def holdings_of(pool: list[Any], rng: random.Random) -> list[Any]:
    """50 distinct tokens, skewed towards the head of the pool as real portfolios are."""
    weights = [1 / (rank + 1) for rank in range(len(pool))]
    chosen: dict[str, Any] = {}
    while len(chosen) < HOLDINGS_PER_USER:
        token = rng.choices(pool, weights=weights)[0]
        chosen[token.key] = token
    return list(chosen.values())


def seed_users(user_ids: list[str], pool: list[Any], rng: random.Random) -> dict[str, list[Any]]:
    """Users with 50 bought tokens each, in the store's own item layout.

    Written with BatchWriteItem rather than the store's transactional commit: moto copies the whole
    table for every TransactWriteItems, which makes seeding hundreds of users quadratic.
    """
    from portfolio import wiring
    from portfolio.adapters import portfolio_store
    from portfolio.domain.portfolio_record import PortfolioRecord
    from portfolio.domain.transactions import Transaction

    settings = wiring.settings()
    client = wiring.dynamodb_client()
    holdings = {user_id: holdings_of(pool, rng) for user_id in user_ids}
    items = []
    for user_id in user_ids:
        record = PortfolioRecord(user_id=user_id)
        items.append(portfolio_store._record_item(record, version=1, shards=settings.user_index_shards))
        for index, token in enumerate(holdings[user_id]):
            transaction = Transaction(
                id=f"t{index}",
                type="buy",
                chain=token.chain,
                token_address=token.address,
                amount="3",
                price_usd="10",
                timestamp=datetime(2024, 6, 1, tzinfo=UTC),
            )
            items.append(portfolio_store._transaction_item(user_id, transaction))
    for start in range(0, len(items), 25):
        requests = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
        pending = {settings.table_name: requests}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return holdings


def seed_bare_users(user_ids: list[str]) -> None:
    """Portfolio items only: what the scheduler enumerates."""
    from portfolio import wiring
    from portfolio.domain.portfolio_record import PortfolioRecord

    store = wiring.portfolio_store()
    for user_id in user_ids:
        store.save_record(PortfolioRecord(user_id=user_id), 0)


def refresh_event(user_ids: list[str], window: datetime, users_per_message: int = 10) -> list[str]:
    from portfolio.services.refresh_planner import RefreshMessage

    return [
        RefreshMessage(window=window, user_ids=user_ids[start : start + users_per_message]).model_dump_json(
            by_alias=True
        )
        for start in range(0, len(user_ids), users_per_message)
    ]


# Price updater -----------------------------------------------------------------------------------


class DynamoDbRequests:
    """Counts every DynamoDB request the container's client sends, by operation."""

    def __init__(self, client: Any) -> None:
        self.by_operation: Counter[str] = Counter()
        self._lock = threading.Lock()
        client.meta.events.register("before-call.dynamodb", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.by_operation[model.name] += 1

    def reset(self) -> None:
        with self._lock:
            self.by_operation.clear()


def projected_aws_seconds(cpu_seconds: float, requests: Counter[str], users: int, price_api_calls: int) -> float:
    """This process's CPU time plus what the same I/O costs in AWS: loads 8 at a time, other requests
    one after another, coins API calls PRICE_MAX_CONCURRENCY at a time."""
    from portfolio.services.portfolio_refresher import DEFAULT_LOAD_CONCURRENCY

    sequential_requests = requests.total() - users + users / DEFAULT_LOAD_CONCURRENCY
    return (
        cpu_seconds
        + sequential_requests * AWS_DYNAMODB_LATENCY_S
        + price_api_calls * COINS_API_LATENCY_S / PRICE_MAX_CONCURRENCY
    )


def bench_updater(stack: Stack) -> dict[str, Any]:
    from portfolio import wiring
    from price_updater.app import lambda_handler

    rng = random.Random(7)
    pool = token_pool(TOKEN_POOL)
    users = [f"bench-{index:05d}-{uuid.uuid4().hex[:6]}" for index in range(UPDATER_USERS)]
    holdings = seed_users(users, pool, rng)
    requests = DynamoDbRequests(wiring.dynamodb_client())

    cycles = []
    windows = (datetime(2025, 1, 15, 10, 0, tzinfo=UTC), datetime(2025, 1, 15, 10, 5, tzinfo=UTC))
    for cycle, window in enumerate(windows):
        for body in refresh_event(users, window):
            stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)
        invocations: list[dict[str, Any]] = []

        def handler(event: dict[str, Any], context: Any, invocations: list[dict[str, Any]] = invocations) -> Any:
            batch_users = [user for record in event["Records"] for user in json.loads(record["body"])["userIds"]]
            unique_tokens = {token.key for user in batch_users for token in holdings[user]}
            calls_before = stack.coins_api.request_count
            started, cpu_started = time.perf_counter(), time.process_time()
            answer = lambda_handler(event, context)
            invocations.append(
                {
                    "users": len(batch_users),
                    "seconds": time.perf_counter() - started,
                    # The fake coins API runs in this process too, but serving a call costs little CPU.
                    "cpu_seconds": time.process_time() - cpu_started,
                    "unique_tokens": unique_tokens,
                    "price_api_calls": stack.coins_api.request_count - calls_before,
                }
            )
            return answer

        requests.reset()
        SqsPoller(stack.sqs, stack.queue_url, handler, context_factory=generous_context).drain()
        refreshed = sum(invocation["users"] for invocation in invocations)
        seconds = sum(invocation["seconds"] for invocation in invocations)
        cpu_seconds = sum(invocation["cpu_seconds"] for invocation in invocations)
        api_calls = sum(invocation["price_api_calls"] for invocation in invocations)
        cycle_tokens = set().union(*(invocation["unique_tokens"] for invocation in invocations))
        projected = projected_aws_seconds(cpu_seconds, requests.by_operation, refreshed, api_calls)
        cycles.append(
            {
                "cycle": "cold container and caches" if cycle == 0 else "same container, prices within their TTL",
                "invocations": len(invocations),
                "users_refreshed": refreshed,
                "seconds": round(seconds, 2),
                "users_per_second": round(refreshed / seconds, 1),
                "cpu_seconds": round(cpu_seconds, 2),
                "users_per_cpu_second": round(refreshed / cpu_seconds, 1),
                "users_per_second_projected_aws": round(refreshed / projected, 1),
                "price_api_calls": api_calls,
                "unique_tokens": len(cycle_tokens),
                # One container, cold: every unique token must be asked for once, 50 per call.
                "price_api_calls_lower_bound": math.ceil(len(cycle_tokens) / PRICE_BATCH_SIZE),
                "unique_tokens_per_invocation": [len(invocation["unique_tokens"]) for invocation in invocations],
                "dynamodb_requests_per_user": round(sum(requests.by_operation.values()) / refreshed, 2),
                "dynamodb_requests_by_operation": dict(sorted(requests.by_operation.items())),
            }
        )
    return {
        "holdings_per_user": HOLDINGS_PER_USER,
        "coins_api_latency_ms": COINS_API_LATENCY_S * 1000,
        "cycles": cycles,
    }


# Memory ------------------------------------------------------------------------------------------


def bench_memory(stack: Stack) -> dict[str, Any]:
    """One invocation on 10 messages x 10 users x 50 holdings, in a fresh process, so the peak is its own."""
    rng = random.Random(11)
    users = [f"mem-{index:04d}-{uuid.uuid4().hex[:6]}" for index in range(MEMORY_PROBE_USERS)]
    seed_users(users, token_pool(TOKEN_POOL), rng)
    for body in refresh_event(users, datetime(2025, 1, 15, 11, 0, tzinfo=UTC)):
        stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)
    messages = []
    while len(messages) < len(users) // 10:
        messages += stack.sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10)["Messages"]
    event = SqsPoller(stack.sqs, stack.queue_url, lambda *_: None).event_for(messages)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(event, handle)
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "benchmarks.refresh", MEMORY_PROBE_FLAG, handle.name],
            env={**os.environ, **stack.environment},
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
    finally:
        Path(handle.name).unlink()
    return json.loads(completed.stdout.strip().splitlines()[-1])


def memory_probe(event_path: str) -> dict[str, Any]:
    import resource
    import tracemalloc

    from price_updater.app import lambda_handler

    event = json.loads(Path(event_path).read_text())
    rss_before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()
    answer = lambda_handler(event, generous_context())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "messages": len(event["Records"]),
        "users": sum(len(json.loads(record["body"])["userIds"]) for record in event["Records"]),
        "holdings_per_user": HOLDINGS_PER_USER,
        "failed_messages": len(answer.get("batchItemFailures", [])),
        "python_heap_peak_mb": round(peak / 2**20, 1),
        "process_max_rss_before_mb": round(rss_before_mb, 1),
        "process_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "lambda_memory_mb": 256,
    }


# Scheduler ---------------------------------------------------------------------------------------


def bench_scheduler(stack: Stack) -> dict[str, Any]:
    from portfolio import wiring
    from portfolio.adapters.refresh_queue import DEFAULT_SEND_CONCURRENCY
    from portfolio.services.refresh_planner import refresh_sizing
    from refresh_scheduler.app import lambda_handler

    users = [f"sched-{index:07d}" for index in range(SCHEDULER_USERS)]
    seed_bare_users(users)
    settings = wiring.settings()
    total_users = sum(len(page) for page in wiring.portfolio_store().iter_user_ids())
    requests = DynamoDbRequests(wiring.dynamodb_client())

    # A first run pays the container's one-off costs (clients, imports); the figures are of the second.
    lambda_handler(scheduled_event(datetime(2025, 1, 15, 11, 55, tzinfo=UTC)), LambdaContext(timeout_ms=120_000))
    requests.reset()
    event = scheduled_event(datetime(2025, 1, 15, 12, 0, tzinfo=UTC))
    started, cpu_started = time.perf_counter(), time.process_time()
    answer = lambda_handler(event, LambdaContext(timeout_ms=120_000))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    queries = requests.by_operation["Query"]
    calls = answer["sendMessageBatchCalls"]

    million = refresh_sizing(
        ONE_MILLION, users_per_message=settings.users_per_message, shards=settings.user_index_shards
    )
    # CPU goes into building, signing and parsing requests: it scales with requests, not users.
    cpu_per_request = cpu_seconds / (queries + calls)
    # Index pages are read one after another; sends overlap, DEFAULT_SEND_CONCURRENCY at a time.
    aws_io_seconds = (
        million.user_pages * AWS_INDEX_PAGE_LATENCY_S
        + million.send_calls * AWS_SEND_BATCH_LATENCY_S / DEFAULT_SEND_CONCURRENCY
    )
    return {
        "users": total_users,
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "users_queued": answer["usersQueued"],
        "messages": answer["messages"],
        "send_message_batch_calls": calls,
        "user_index_queries": queries,
        "cpu_ms_per_request": round(cpu_per_request * 1000, 2),
        "one_million_users": {
            "user_index_queries": million.user_pages,
            "messages": million.messages,
            "send_message_batch_calls": million.send_calls,
            "cpu_seconds_at_this_machine_speed": round(cpu_per_request * (million.user_pages + million.send_calls), 1),
            "io_seconds_projected_aws": round(aws_io_seconds, 1),
            "seconds_extrapolated_from_this_machine": round(seconds / total_users * ONE_MILLION, 1),
        },
    }


def run() -> dict[str, Any]:
    with local_stack() as stack:
        return {
            "price_updater": bench_updater(stack),
            "memory": bench_memory(stack),
            "scheduler": bench_scheduler(stack),
        }


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == MEMORY_PROBE_FLAG:
        print(json.dumps(memory_probe(sys.argv[2])))
    else:
        print(json.dumps(run()))
