"""The per-user token buckets on the session's real Redis: burst, refill, isolation, expiry, atomicity.

Each test that reaches Redis runs on the single node and on the three-master cluster (in cluster mode).
Time is a clock the test moves (the bucket's arithmetic), except where Redis's own TTL is checked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis
from portfolio.adapters.rate_limiter import BucketLimit, RedisRateLimiter, bucket_key
from portfolio.adapters.redis_connection import make_redis_client
from portfolio.services.ports import RequestKind
from redis.cluster import RedisCluster

from tests.support.redis_cluster import RedisTarget

WRITE, READ = RequestKind.WRITE, RequestKind.READ


class Clock:
    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(redis_target: RedisTarget) -> Iterator[redis.Redis | RedisCluster]:
    """The app's client for the target, as a container builds it (a cluster client in cluster mode)."""
    made = make_redis_client(redis_target.settings(REDIS_SOCKET_TIMEOUT_MS=2000))
    assert made is not None
    yield made
    made.close()


def limiter_for(
    client: object, clock: Clock, *, write: BucketLimit, read: BucketLimit | None = None
) -> RedisRateLimiter:
    limits = {WRITE: write} | ({READ: read} if read is not None else {})
    return RedisRateLimiter(client, limits, clock=clock)  # type: ignore[arg-type]


def takes(limiter: RedisRateLimiter, subject: str, kind: RequestKind, count: int) -> list[bool]:
    return [limiter.take(subject, kind).allowed for _ in range(count)]


def test_given_a_new_caller_when_it_sends_more_than_the_burst_at_once_then_the_burst_passes_and_the_rest_wait(
    client: redis.Redis, clock: Clock, user_id: str
) -> None:
    # Given: 2 writes a second, 5 at once
    limiter = limiter_for(client, clock, write=BucketLimit(rate_per_s=2, burst=5))

    # When: 6 writes at the same instant
    decisions = [limiter.take(user_id, WRITE) for _ in range(6)]

    # Then: 5 pass, counting down what is left; the 6th is told to come back when a token is there (0.5 s)
    assert [decision.allowed for decision in decisions] == [True] * 5 + [False]
    assert [decision.remaining for decision in decisions[:5]] == [4, 3, 2, 1, 0]
    assert decisions[5].retry_after_s == pytest.approx(0.5)
    assert all(decision.checked for decision in decisions)


def test_given_an_empty_bucket_when_time_passes_then_it_refills_at_the_rate_and_never_above_the_burst(
    client: redis.Redis, clock: Clock, user_id: str
) -> None:
    # Given: an emptied bucket of 4 a second, 8 at once
    limiter = limiter_for(client, clock, write=BucketLimit(rate_per_s=4, burst=8))
    assert takes(limiter, user_id, WRITE, 9) == [True] * 8 + [False]

    # When: half a second passes, Then: two more pass, and the next waits a quarter of a second
    clock.advance(0.5)
    assert takes(limiter, user_id, WRITE, 2) == [True, True]
    refused = limiter.take(user_id, WRITE)
    assert not refused.allowed and refused.retry_after_s == pytest.approx(0.25)

    # When: a refused request is retried after its Retry-After, Then it passes
    clock.advance(refused.retry_after_s)
    assert limiter.take(user_id, WRITE).allowed

    # When: an hour passes, Then: the bucket holds the burst, not an hour of tokens
    clock.advance(3600)
    assert takes(limiter, user_id, WRITE, 9) == [True] * 8 + [False]


def test_given_one_caller_past_its_limit_when_another_caller_or_the_same_caller_reads_then_they_pass(
    client: redis.Redis, clock: Clock, user_id: str
) -> None:
    # Given: a caller that spent its writes
    limiter = limiter_for(client, clock, write=BucketLimit(rate_per_s=1, burst=3), read=BucketLimit(10, 3))
    other = f"{user_id}-other"
    assert takes(limiter, user_id, WRITE, 4) == [True, True, True, False]

    # When / Then: another caller's writes, and the first caller's reads, have buckets of their own
    assert takes(limiter, other, WRITE, 3) == [True, True, True]
    assert takes(limiter, user_id, READ, 3) == [True, True, True]
    assert not limiter.take(user_id, WRITE).allowed


def test_given_a_bucket_when_it_is_idle_then_its_key_expires_once_it_would_be_full_and_a_new_one_starts_full(
    client: redis.Redis, user_id: str
) -> None:
    # Given: a bucket that fills up in 0.1 s (50 a second, 5 at once), on Redis's and this machine's clocks,
    # taken from a warm client (connected to the caller's node, script loaded: a cold first call can outlast
    # a token's 20 ms)
    limit = BucketLimit(rate_per_s=50, burst=5)
    limiter = RedisRateLimiter(client, {WRITE: limit})
    key = bucket_key(WRITE, user_id)
    limiter.take(f"{user_id}-warm-up", WRITE)
    assert not client.exists(key)
    assert takes(limiter, user_id, WRITE, 6) == [True] * 5 + [False]

    # Then: the key is hash-tagged by the caller and lives no longer than the fill time plus a second
    assert key == f"ratelimit:write:{{{user_id}}}"
    assert 0 < client.pttl(key) <= limit.ttl_ms == 1100

    # When: it is left alone past its TTL
    deadline = time.monotonic() + 5
    while client.exists(key) and time.monotonic() < deadline:
        time.sleep(0.1)

    # Then: the key is gone, and the caller starts again with a full bucket
    assert not client.exists(key)
    assert takes(limiter, user_id, WRITE, 6) == [True] * 5 + [False]


def test_given_many_requests_at_once_from_several_containers_when_taken_then_exactly_the_burst_passes(
    redis_target: RedisTarget, clock: Clock, user_id: str
) -> None:
    # Given: 4 "containers" (limiters with clients of their own) sharing one bucket of 15, time frozen
    settings = redis_target.settings(REDIS_SOCKET_TIMEOUT_MS=2000)
    clients = [make_redis_client(settings) for _ in range(4)]
    limiters = [limiter_for(client, clock, write=BucketLimit(rate_per_s=1, burst=15)) for client in clients]
    allowed: list[bool] = []
    lock = threading.Lock()

    def hammer(limiter: RedisRateLimiter) -> None:
        outcomes = takes(limiter, user_id, WRITE, 10)
        with lock:
            allowed.extend(outcomes)

    # When: each sends 10 writes at the same time
    threads = [threading.Thread(target=hammer, args=(limiter,)) for limiter in limiters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then: the refill and the take are one atomic step: exactly 15 of the 40 pass
    assert allowed.count(True) == 15 and len(allowed) == 40
    for made in clients:
        assert made is not None
        made.close()


@pytest.mark.parametrize("suffix", ["}{sub", "\n", "x" * 200], ids=["braces", "final newline", "200 characters"])
def test_given_a_sub_unfit_for_a_key_when_limited_then_its_key_keeps_one_hash_tag_and_the_bucket_works(
    client: redis.Redis, clock: Clock, user_id: str, suffix: str
) -> None:
    # Given: a sub that would move the hash tag, or make an odd or long key, if it were used as it is
    subject = user_id + suffix
    limiter = limiter_for(client, clock, write=BucketLimit(rate_per_s=1, burst=2))

    # When / Then: its bucket is its own (not the plain user id's), under a key of one hash tag
    assert takes(limiter, subject, WRITE, 3) == [True, True, False]
    assert limiter.take(user_id, WRITE).allowed
    key = bucket_key(WRITE, subject)
    assert key.count("{") == 1 and key.count("}") == 1 and user_id not in key and len(key) < 100
    assert client.exists(key)


def test_given_a_rate_of_zero_when_requests_come_then_all_pass_and_redis_is_not_asked(
    client: redis.Redis, clock: Clock, user_id: str
) -> None:
    limiter = limiter_for(client, clock, write=BucketLimit(rate_per_s=0, burst=10))

    assert takes(limiter, user_id, WRITE, 50) == [True] * 50
    assert takes(limiter, user_id, READ, 50) == [True] * 50
    assert not client.exists(bucket_key(WRITE, user_id), bucket_key(READ, user_id))


def test_given_no_redis_configured_when_requests_come_then_all_pass(clock: Clock, user_id: str) -> None:
    limiter = limiter_for(None, clock, write=BucketLimit(rate_per_s=1, burst=1))

    assert takes(limiter, user_id, WRITE, 5) == [True] * 5
