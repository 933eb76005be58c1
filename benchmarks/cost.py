"""What the refresh pipeline costs on AWS per month, before and after the redesign: a pure cost model.

    .venv/bin/python -m benchmarks.cost                    # docs/cost.md's tables ("after" = the design targets)
    .venv/bin/python -m benchmarks.cost bench.json         # "after" from figures measured by `make bench`
    .venv/bin/python -m benchmarks.cost --active-share 0.2

Three inputs, all plain data: unit prices (`Prices`, us-east-1, on demand, with their sources and dates in
PRICE_SOURCES), what the stack is deployed as (`Deployment`, from template.yaml) and what one user or one
held token costs per 5-minute cycle (`Units`: BEFORE, the design measured so far, and
`after_from_measurements`, the redesign, built from `make bench`'s headline figures with the design targets
as defaults). `monthly_cost` turns them into USD per month per service. Nothing here reads a file, the
clock or the network except `main`, which reads the optional JSON file named on its command line.

It is an estimate for comparing designs, not a bill: no free tier, no Savings Plans, no data transfer, no
DynamoDB storage or backups, no CloudWatch, X-Ray, NAT gateway or VPC endpoint hours (docs/cost.md lists
what is left out and why). Amounts are Decimal, like every amount in the code base.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

MILLION = Decimal(1_000_000)
KB_PER_GB = Decimal(1024 * 1024)
HOURS_PER_MONTH = Decimal(730)  # AWS's own convention for monthly estimates
CENT = Decimal("0.01")
SQS_CHUNK_BYTES = 64 * 1024  # SQS bills every 64 KB chunk of a payload as one request

# The user counts the model is tabled at (docs/cost.md, the `cost_usd_per_month` headline figure).
SCALES: dict[str, int] = {"10k": 10_000, "100k": 100_000, "1M": 1_000_000}

# Assumptions with their defaults (docs/cost.md explains each).
DEFAULT_ACTIVE_SHARE = Decimal("0.10")  # users who read their portfolio in the last N hours
TOKENS_AT_1M_USERS = 5_000  # distinct tokens held across all users at one million users
TOKENS_EXPONENT = 0.5  # tokens grow with the square root of users: most hold the same popular tokens
BENCHMARK_UNIQUE_TOKENS = 200  # the price_calls benchmark's token universe (benchmarks/README.md)
PRICE_BATCH_SIZE = 50  # coin ids per coins API call (Settings.price_batch_size)


@dataclass(frozen=True)
class PriceSource:
    """Where one unit price comes from, and when it was read."""

    service: str
    prices: str
    source: str
    dated: str


LOOKED_UP = "2026-12-01"

PRICE_SOURCES: tuple[PriceSource, ...] = (
    PriceSource(
        "DynamoDB on-demand (Standard table class)",
        "$0.625 per million write request units; $0.125 per million read request units",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/ ; the 50% cut of on-demand throughput prices "
        "took effect on 2024-11-01 (AWS News Blog post on on-demand, updated 2025-01-31; "
        "figures as quoted in a pricing review dated 2025-07-21)",
        f"effective 2024-11-01, looked up {LOOKED_UP}",
    ),
    PriceSource(
        "Lambda",
        "arm64 $0.0000133334 per GB-second (first 7.5 billion GB-s a month); x86_64 $0.0000166667 per "
        "GB-second (first 6 billion); $0.20 per million requests",
        "https://aws.amazon.com/lambda/pricing/ (rates unchanged since arm64 launched, 2021-09; as quoted in "
        "pricing guides dated 2024)",
        f"looked up {LOOKED_UP}",
    ),
    PriceSource(
        "SQS standard queue",
        "$0.40 per million requests (first 100 billion a month); every 64 KB chunk of a payload is one request",
        "https://aws.amazon.com/sqs/pricing/ (as quoted in a pricing guide dated 2026-03-14)",
        f"looked up {LOOKED_UP}",
    ),
    PriceSource(
        "ElastiCache Serverless for Valkey",
        "$0.084 per GB-hour of data stored (100 MB minimum); $0.0023 per million ECPUs "
        "(Redis OSS: $0.125 and $0.0034, 1 GB minimum)",
        "https://aws.amazon.com/elasticache/pricing/ (Valkey prices since 2024-10; as quoted in a pricing guide "
        "dated 2026-06)",
        f"looked up {LOOKED_UP}",
    ),
    PriceSource(
        "API Gateway HTTP API",
        "$1.00 per million requests (first 300 million a month)",
        "https://aws.amazon.com/api-gateway/pricing/ (as quoted in a pricing guide dated 2025-05-19)",
        f"looked up {LOOKED_UP}",
    ),
)


@dataclass(frozen=True)
class Prices:
    """us-east-1 on-demand unit prices in USD (sources and dates: PRICE_SOURCES). Free tiers are ignored."""

    dynamodb_write_request_unit: Decimal = Decimal("0.625") / MILLION
    dynamodb_read_request_unit: Decimal = Decimal("0.125") / MILLION
    lambda_gb_second_arm64: Decimal = Decimal("0.0000133334")
    lambda_gb_second_x86_64: Decimal = Decimal("0.0000166667")
    lambda_request: Decimal = Decimal("0.20") / MILLION
    sqs_request: Decimal = Decimal("0.40") / MILLION  # per 64 KB chunk of a request's payload
    cache_gb_hour: Decimal = Decimal("0.084")
    cache_ecpu: Decimal = Decimal("0.0023") / MILLION
    cache_minimum_gb: Decimal = Decimal("0.1")
    api_gateway_request: Decimal = Decimal("1.00") / MILLION
    # DeFiLlama's public coins API is free; its Pro plan is a flat subscription, outside this model.
    coins_api_call: Decimal = Decimal(0)

    def lambda_gb_second(self, architecture: str) -> Decimal:
        if architecture == "arm64":
            return self.lambda_gb_second_arm64
        if architecture == "x86_64":
            return self.lambda_gb_second_x86_64
        raise ValueError(f"unknown Lambda architecture {architecture!r}")


US_EAST_1 = Prices()


@dataclass(frozen=True)
class Deployment:
    """How the stack is deployed (template.yaml) and a few measured per-request facts."""

    architecture: str = "arm64"  # Globals.Function.Architectures
    updater_memory_mb: int = 512  # PriceUpdaterFunction; the price sweep is assumed to run at the same size
    api_memory_mb: int = 512  # ApiFunction
    scheduler_memory_mb: int = 1769  # RefreshSchedulerFunction
    full_vcpu_memory_mb: int = 1769  # Lambda gives one vCPU at 1,769 MB, a share of it below
    refresh_interval_s: int = 300  # REFRESH_INTERVAL_SECONDS
    messages_per_invocation: int = 10  # UpdaterBatchSize
    messages_per_send_call: int = 10  # SendMessageBatch's limit
    index_shards: int = 16  # USER_INDEX_SHARDS
    users_per_index_page: int = 1000
    read_units_per_index_page: Decimal = Decimal(10)  # 1,000 keys x ~80 B, eventually consistent
    scheduler_cpu_s_per_request: Decimal = Decimal("0.0062")  # measured (docs/refresh.md)
    message_overhead_bytes: int = 60  # {"window": "...", "userIds": []}
    bytes_per_user_id: int = 40  # a quoted id and its comma
    idle_pollers: int = 5  # the SQS event source's long-polling connections when the queue is empty
    long_poll_s: int = 20
    dynamodb_latency_s: Decimal = Decimal("0.008")  # in-region request, as in docs/refresh.md's projection
    price_call_s: Decimal = Decimal("0.3")  # one coins API call, 50 ids
    price_calls_in_flight: int = 4  # PRICE_MAX_CONCURRENCY

    @property
    def cycles_per_month(self) -> Decimal:
        return HOURS_PER_MONTH * 3600 / self.refresh_interval_s

    def gb_seconds(self, memory_mb: int, cpu_s: Decimal, wait_s: Decimal = Decimal(0)) -> Decimal:
        """Billed GB-seconds of `cpu_s` of CPU-bound work (at one full vCPU) plus `wait_s` of waiting."""
        share = min(Decimal(1), Decimal(memory_mb) / self.full_vcpu_memory_mb)
        return (cpu_s / share + wait_s) * Decimal(memory_mb) / 1024


TEMPLATE = Deployment()


@dataclass(frozen=True)
class Units:
    """What one design costs per unit of work. "Per user" means per user refreshed in a cycle."""

    design: str
    # Whom a cycle refreshes: every user (before) or only the active ones (after).
    refreshes_idle_users: bool
    # Per refreshed user per cycle.
    updater_cpu_s_per_user: Decimal  # CPU-seconds at one full vCPU (1 / users per CPU-second)
    dynamodb_requests_per_user: Decimal  # requests (shown; on-demand bills the units below)
    dynamodb_read_units_per_user: Decimal
    dynamodb_write_units_per_user: Decimal
    cache_ecpu_per_user: Decimal  # warming the views, reading the batch's prices
    cached_kb_per_user: Decimal  # the views a warmed user keeps in Redis (summary, asset list, generations)
    # Per refresh message.
    users_per_message: int
    idempotency_write_units_per_message: Decimal  # DynamoDB (Powertools persistence)
    idempotency_ecpu_per_message: Decimal  # Redis
    # Per held token per cycle.
    token_write_units: Decimal
    token_read_units: Decimal
    price_calls_per_token: Decimal  # a cycle makes ceil(tokens x this) coins API calls
    token_cpu_s: Decimal  # CPU-seconds of the price sweep per token
    token_cache_ecpu: Decimal
    token_cached_kb: Decimal
    sweep_invocations_per_cycle: int
    # API reads (the same HTTP API in both designs; the hit ratio differs).
    api_reads_per_active_user_per_day: Decimal
    api_cache_hit_ratio: Decimal
    api_hit_s: Decimal  # billed seconds of a cached read
    cache_ecpu_per_hit: Decimal  # one MGET returning a ~10 KB body
    cache_ecpu_per_miss: Decimal  # the MGET, the fill and the load lock
    miss_read_dynamodb_requests: Decimal
    read_units_per_miss_request: Decimal  # before: a Query of the user's partition; after: one GetItem


BEFORE = Units(
    design="before",
    refreshes_idle_users=True,
    updater_cpu_s_per_user=Decimal(1) / 45,  # ~45 users per CPU-second
    dynamodb_requests_per_user=Decimal("3.3"),  # Query, PutItem, BatchWriteItem, idempotency, last-known
    # One eventually consistent Query of ~51 items: the portfolio item (~10 KB: a quote per holding) and
    # 50 transactions of ~330 B, ~27 KB in all = 7 x 4 KB at half a unit each.
    dynamodb_read_units_per_user=Decimal("3.5"),
    dynamodb_write_units_per_user=Decimal(4),  # as measured: 1 save + 3 history items (see docs/cost.md)
    cache_ecpu_per_user=Decimal(25),  # ~20 KB of views written + the batch's prices read from Redis
    cached_kb_per_user=Decimal(24),
    users_per_message=10,
    idempotency_write_units_per_message=Decimal(2),
    idempotency_ecpu_per_message=Decimal(0),
    token_write_units=Decimal(1),  # the last-known price of every fresh quote
    token_read_units=Decimal(0),
    price_calls_per_token=Decimal(19) / BENCHMARK_UNIQUE_TOKENS,  # 19 calls for 200 tokens, measured
    token_cpu_s=Decimal(0),  # pricing runs inside the updater: counted per user
    token_cache_ecpu=Decimal(0),
    token_cached_kb=Decimal("0.3"),
    sweep_invocations_per_cycle=0,
    api_reads_per_active_user_per_day=Decimal(20),
    api_cache_hit_ratio=Decimal("0.95"),  # every user's views are re-warmed every cycle
    api_hit_s=Decimal("0.004"),
    cache_ecpu_per_hit=Decimal(10),
    cache_ecpu_per_miss=Decimal(12),
    miss_read_dynamodb_requests=Decimal(1),
    read_units_per_miss_request=Decimal(7),
)

# The redesign's targets: what `after_from_measurements` falls back to for a figure that is missing.
AFTER_TARGETS: dict[str, Decimal] = {
    "refresh_users_per_cpu_s": Decimal(1000),
    "refresh_dynamodb_requests_per_user": Decimal("0.01"),  # BatchGetItem of 100 keys
    "refresh_write_units_per_user": Decimal(0),  # nothing written when positions did not change
    "refresh_read_units_per_user": Decimal(1),  # one user item of up to 8 KB, eventually consistent
    "price_calls_per_lower_bound": Decimal(1),  # calls = ceil(tokens / 50)
    "price_sweep_write_units_per_token": Decimal(4),  # last-known + 5m/1h/1d history items
    "miss_read_dynamodb_requests": Decimal(1),
}


def _figure(figures: Mapping[str, Any], key: str, *, positive: bool = False) -> Decimal | None:
    """figures[key] as a Decimal; None when missing, null (a failed module), not a number or not usable."""
    value = figures.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return None
    if not number.is_finite() or number < 0 or (positive and number == 0):
        return None
    return number


def after_from_measurements(figures: Mapping[str, Any]) -> Units:
    """The redesign's units from `make bench`'s headline figures; each missing figure falls back to its target.

    Keys: refresh_users_per_cpu_s, refresh_dynamodb_requests_per_user, refresh_write_units_per_user,
    price_calls_per_cycle (against price_calls_lower_bound, else ceil(200 / 50)),
    price_sweep_write_units_per_token, miss_read_dynamodb_requests, and optionally
    refresh_read_units_per_user.
    """

    def measured(key: str, *, positive: bool = False) -> Decimal:
        value = _figure(figures, key, positive=positive)
        return AFTER_TARGETS[key] if value is None else value

    calls = _figure(figures, "price_calls_per_cycle", positive=True)
    bound = _figure(figures, "price_calls_lower_bound", positive=True)
    if calls is None:
        calls_per_bound = AFTER_TARGETS["price_calls_per_lower_bound"]
    else:
        calls_per_bound = calls / (bound or math.ceil(BENCHMARK_UNIQUE_TOKENS / PRICE_BATCH_SIZE))
    return Units(
        design="after",
        refreshes_idle_users=False,
        updater_cpu_s_per_user=1 / measured("refresh_users_per_cpu_s", positive=True),
        dynamodb_requests_per_user=measured("refresh_dynamodb_requests_per_user"),
        dynamodb_read_units_per_user=measured("refresh_read_units_per_user"),
        dynamodb_write_units_per_user=measured("refresh_write_units_per_user"),
        cache_ecpu_per_user=Decimal(21),  # ~20 KB of views written; prices come once per 1,000 users
        cached_kb_per_user=Decimal(24),
        users_per_message=100,
        idempotency_write_units_per_message=Decimal(0),
        idempotency_ecpu_per_message=Decimal(2),  # SET NX, then the result
        token_write_units=measured("price_sweep_write_units_per_token"),
        # The held-token set: ~100 B a token, read in eventually consistent Query pages.
        token_read_units=Decimal("0.0125"),
        price_calls_per_token=calls_per_bound / PRICE_BATCH_SIZE,
        # ~6 ms of CPU per DynamoDB request (the scheduler's figure), 4 items a token in batches of 25,
        # plus parsing the coins answer.
        token_cpu_s=Decimal("0.002"),
        token_cache_ecpu=Decimal(1),  # one ~0.3 KB price written to Redis
        token_cached_kb=Decimal("0.3"),
        sweep_invocations_per_cycle=1,
        api_reads_per_active_user_per_day=BEFORE.api_reads_per_active_user_per_day,
        api_cache_hit_ratio=Decimal("0.90"),  # the first read after an idle spell misses and values the user
        api_hit_s=BEFORE.api_hit_s,
        cache_ecpu_per_hit=BEFORE.cache_ecpu_per_hit,
        cache_ecpu_per_miss=BEFORE.cache_ecpu_per_miss,
        miss_read_dynamodb_requests=measured("miss_read_dynamodb_requests"),
        # A miss reads the portfolio item's holdings (a few KB, strongly consistent): one read unit.
        read_units_per_miss_request=Decimal(1),
    )


AFTER_TARGET_UNITS = after_from_measurements({})


def held_tokens(users: int) -> int:
    """Distinct tokens held across `users` users: TOKENS_AT_1M_USERS x (users / 1M) ** TOKENS_EXPONENT."""
    if users <= 0:
        return 0
    return max(1, round(TOKENS_AT_1M_USERS * (users / 1_000_000) ** TOKENS_EXPONENT))


def _chunks(payload_bytes: int, chunk_bytes: int) -> int:
    return max(1, math.ceil(payload_bytes / chunk_bytes))


def monthly_usage(
    units: Units, users: int, tokens: int, active_share: Decimal | float, deployment: Deployment = TEMPLATE
) -> dict[str, Decimal]:
    """The billed quantities of one month: units, GB-seconds, requests, GB-hours, ECPUs, calls."""
    if users < 0 or tokens < 0:
        raise ValueError("users and tokens cannot be negative")
    share = Decimal(str(active_share))
    if not 0 <= share <= 1:
        raise ValueError("active_share is a fraction between 0 and 1")
    cycles = deployment.cycles_per_month
    active = users * share
    refreshed = Decimal(users) if units.refreshes_idle_users else active
    messages = math.ceil(refreshed / units.users_per_message)
    invocations = math.ceil(Decimal(messages) / deployment.messages_per_invocation)
    send_calls = math.ceil(Decimal(messages) / deployment.messages_per_send_call)
    # The scheduler pages through the users it queues: the whole index before, the active users after.
    index_pages = deployment.index_shards + math.floor(refreshed / deployment.users_per_index_page)
    scheduler_requests = index_pages + send_calls + 1  # + the run lock
    price_calls = math.ceil(tokens * units.price_calls_per_token)
    message_bytes = deployment.message_overhead_bytes + units.users_per_message * deployment.bytes_per_user_id
    chunk = SQS_CHUNK_BYTES

    # Per cycle.
    write_units = (
        refreshed * units.dynamodb_write_units_per_user
        + messages * units.idempotency_write_units_per_message
        + tokens * units.token_write_units
        + 1  # the run lock
    )
    read_units = (
        refreshed * units.dynamodb_read_units_per_user
        + tokens * units.token_read_units
        + index_pages * deployment.read_units_per_index_page
    )
    price_wait_s = price_calls * deployment.price_call_s / deployment.price_calls_in_flight
    gb_seconds = deployment.gb_seconds(
        deployment.updater_memory_mb,
        refreshed * units.updater_cpu_s_per_user + tokens * units.token_cpu_s,
        price_wait_s,
    ) + deployment.gb_seconds(
        deployment.scheduler_memory_mb, scheduler_requests * deployment.scheduler_cpu_s_per_request
    )
    lambda_requests = Decimal(invocations + 1 + units.sweep_invocations_per_cycle)
    sqs_requests = Decimal(
        send_calls * _chunks(deployment.messages_per_send_call * message_bytes, chunk)
        + invocations * _chunks(deployment.messages_per_invocation * message_bytes, chunk)  # receive
        + invocations  # delete
    )
    ecpu = (
        refreshed * units.cache_ecpu_per_user
        + messages * units.idempotency_ecpu_per_message
        + tokens * units.token_cache_ecpu
    )

    # API reads, per month.
    reads = active * units.api_reads_per_active_user_per_day * HOURS_PER_MONTH / 24
    hits = reads * units.api_cache_hit_ratio
    misses = reads - hits
    miss_wait_s = units.miss_read_dynamodb_requests * deployment.dynamodb_latency_s
    api_gb_seconds = deployment.gb_seconds(deployment.api_memory_mb, Decimal(0), units.api_hit_s) * reads + (
        deployment.gb_seconds(deployment.api_memory_mb, units.updater_cpu_s_per_user, miss_wait_s) * misses
    )

    # Steady state of the cache: the views of every user warmed within a TTL, and the prices.
    cached_gb = (refreshed * units.cached_kb_per_user + tokens * units.token_cached_kb) / KB_PER_GB
    # The SQS event source long-polls the queue even when it is empty.
    idle_polls = deployment.idle_pollers * HOURS_PER_MONTH * 3600 / deployment.long_poll_s
    return {
        "users_refreshed_per_cycle": refreshed,
        "messages_per_cycle": Decimal(messages),
        "price_calls_per_cycle": Decimal(price_calls),
        "dynamodb_write_units": write_units * cycles,
        "dynamodb_read_units": read_units * cycles
        + misses * units.miss_read_dynamodb_requests * units.read_units_per_miss_request,
        "lambda_gb_seconds": gb_seconds * cycles + api_gb_seconds,
        "lambda_requests": lambda_requests * cycles + reads,
        "sqs_requests": sqs_requests * cycles + idle_polls,
        "cache_gb_hours": cached_gb * HOURS_PER_MONTH,
        "cache_ecpus": ecpu * cycles + hits * units.cache_ecpu_per_hit + misses * units.cache_ecpu_per_miss,
        "api_gateway_requests": reads,
        "coins_api_calls": Decimal(price_calls) * cycles,
    }


SERVICES: tuple[tuple[str, str], ...] = (
    ("dynamodb_writes", "DynamoDB write request units"),
    ("dynamodb_reads", "DynamoDB read request units"),
    ("lambda_compute", "Lambda GB-seconds"),
    ("lambda_requests", "Lambda requests"),
    ("sqs", "SQS requests"),
    ("elasticache_storage", "ElastiCache data stored"),
    ("elasticache_ecpu", "ElastiCache ECPUs"),
    ("api_gateway", "API Gateway requests"),
    ("coins_api", "coins API calls"),
)


def monthly_cost(
    units: Units,
    users: int,
    tokens: int,
    active_share: Decimal | float = DEFAULT_ACTIVE_SHARE,
    prices: Prices = US_EAST_1,
    deployment: Deployment = TEMPLATE,
) -> dict[str, Decimal]:
    """USD per month per service (the keys of SERVICES) and "total", rounded to the cent."""
    usage = monthly_usage(units, users, tokens, active_share, deployment)
    cache_gb_hours = max(usage["cache_gb_hours"], prices.cache_minimum_gb * HOURS_PER_MONTH)
    lines = {
        "dynamodb_writes": usage["dynamodb_write_units"] * prices.dynamodb_write_request_unit,
        "dynamodb_reads": usage["dynamodb_read_units"] * prices.dynamodb_read_request_unit,
        "lambda_compute": usage["lambda_gb_seconds"] * prices.lambda_gb_second(deployment.architecture),
        "lambda_requests": usage["lambda_requests"] * prices.lambda_request,
        "sqs": usage["sqs_requests"] * prices.sqs_request,
        "elasticache_storage": cache_gb_hours * prices.cache_gb_hour,
        "elasticache_ecpu": usage["cache_ecpus"] * prices.cache_ecpu,
        "api_gateway": usage["api_gateway_requests"] * prices.api_gateway_request,
        "coins_api": usage["coins_api_calls"] * prices.coins_api_call,
    }
    total = sum(lines.values(), Decimal(0))
    return {name: amount.quantize(CENT) for name, amount in {**lines, "total": total}.items()}


def cost_usd_per_month(
    figures: Mapping[str, Any], active_share: Decimal | float = DEFAULT_ACTIVE_SHARE
) -> dict[str, dict[str, float]]:
    """`make bench`'s headline figure: monthly totals at each of SCALES, before and after (JSON numbers)."""
    designs = {"before": BEFORE, "after": after_from_measurements(figures)}
    return {
        design: {
            label: float(monthly_cost(units, users, held_tokens(users), active_share)["total"])
            for label, users in SCALES.items()
        }
        for design, units in designs.items()
    }


# ---------------------------------------------------------------- markdown (docs/cost.md)


def _usd(amount: Decimal) -> str:
    return f"{amount:,.0f}" if amount >= 100 else f"{amount:,.2f}"


def _number(value: Decimal | int) -> str:
    value = Decimal(value)
    if value == value.to_integral_value():
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{value:.6f}".rstrip("0")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render_markdown(after: Units = AFTER_TARGET_UNITS, active_share: Decimal | float = DEFAULT_ACTIVE_SHARE) -> str:
    """The tables of docs/cost.md: cost per service, the workload, the units and the prices."""
    designs = (BEFORE, after)
    columns = [(label, users, units) for label, users in SCALES.items() for units in designs]
    costs = [monthly_cost(units, users, held_tokens(users), active_share) for _, users, units in columns]
    usages = [monthly_usage(units, users, held_tokens(users), active_share) for _, users, units in columns]
    header = ["USD per month", *(f"{label} {units.design}" for label, _, units in columns)]
    rows = [[name, *(_usd(cost[key]) for cost in costs)] for key, name in SERVICES]
    rows.append(["**total**", *(f"**{_usd(cost['total'])}**" for cost in costs)])
    lines = [f"Active share {Decimal(str(active_share)):.0%}; USD per month, us-east-1, on demand.", ""]
    lines += _table(header, rows)

    workload_header = ["per cycle", *(f"{label} {units.design}" for label, _, units in columns)]
    workload_rows = [
        ["held tokens", *(_number(held_tokens(users)) for _, users, _ in columns)],
        ["users refreshed", *(_number(usage["users_refreshed_per_cycle"]) for usage in usages)],
        ["refresh messages", *(_number(usage["messages_per_cycle"]) for usage in usages)],
        ["coins API calls", *(_number(usage["price_calls_per_cycle"]) for usage in usages)],
    ]
    lines += ["", *_table(workload_header, workload_rows)]

    unit_rows = [
        ["users per CPU-second (updater)", *(_number(1 / units.updater_cpu_s_per_user) for units in designs)],
        ["DynamoDB requests per refreshed user", *(_number(u.dynamodb_requests_per_user) for u in designs)],
        ["DynamoDB read units per refreshed user", *(_number(u.dynamodb_read_units_per_user) for u in designs)],
        ["DynamoDB write units per refreshed user", *(_number(u.dynamodb_write_units_per_user) for u in designs)],
        ["users per message", *(_number(u.users_per_message) for u in designs)],
        ["idempotency write units per message", *(_number(u.idempotency_write_units_per_message) for u in designs)],
        ["write units per held token", *(_number(u.token_write_units) for u in designs)],
        ["read units per held token", *(_number(u.token_read_units) for u in designs)],
        ["coins API calls per held token", *(_number(u.price_calls_per_token) for u in designs)],
        ["ECPUs per refreshed user", *(_number(u.cache_ecpu_per_user) for u in designs)],
        ["KB cached per warmed user", *(_number(u.cached_kb_per_user) for u in designs)],
        ["API reads per active user per day", *(_number(u.api_reads_per_active_user_per_day) for u in designs)],
        ["API cache hit ratio", *(_number(u.api_cache_hit_ratio) for u in designs)],
        ["DynamoDB requests per cache miss", *(_number(u.miss_read_dynamodb_requests) for u in designs)],
    ]
    lines += ["", *_table(["unit", "before", "after"], unit_rows)]

    price_rows = [[source.service, source.prices, source.dated] for source in PRICE_SOURCES]
    lines += ["", *_table(["service", "price (us-east-1)", "date"], price_rows)]
    return "\n".join(lines)


def _headline_figures(path: str) -> dict[str, Any]:
    """The figures in a JSON file: `make bench`'s last line, or any object of headline keys."""
    text = Path(path).read_text(encoding="utf-8").strip()
    try:
        document = json.loads(text)
    except ValueError:  # the whole output of `make bench`: the JSON is its last line
        document = json.loads(text.splitlines()[-1])
    if not isinstance(document, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    return document


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cost", description=__doc__.splitlines()[0])
    parser.add_argument("figures", nargs="?", help="JSON file of headline figures (make bench's last line)")
    parser.add_argument("--active-share", type=Decimal, default=DEFAULT_ACTIVE_SHARE, help="default 0.10")
    arguments = parser.parse_args(argv)
    figures = _headline_figures(arguments.figures) if arguments.figures else {}
    print(render_markdown(after_from_measurements(figures), arguments.active_share))
    return 0


if __name__ == "__main__":
    sys.exit(main())
