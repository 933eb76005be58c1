"""The activity log on a real Redis: who read lately, cheap to mark, and never in a read's way."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis
from portfolio.adapters.activity_log import (
    SHARDS,
    ActivityUnavailableError,
    RedisActivityLog,
    activity_key,
    asset_readers_key,
)

from local_stack.ports import free_port
from tests.support.redis_cluster import SINGLE_NODE, RedisTarget

NOW = datetime(2025, 1, 15, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def __call__(self) -> float:
        return self.moment.timestamp()


@pytest.fixture
def redis_target(redis_url: str) -> RedisTarget:
    """One key per command, nothing that depends on slots: the single node only."""
    return RedisTarget(SINGLE_NODE, redis_url, cluster_mode=False)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def log(redis_client: redis.Redis, no_recent_readers: None, clock: Clock) -> RedisActivityLog:
    return RedisActivityLog(redis_client, clock=clock)


def everyone(log: RedisActivityLog, since: datetime) -> list[str]:
    return sorted(user for page in log.active_since(since) for user in page)


def test_given_readers_at_different_times_when_listed_then_only_those_since_the_cutoff_come(log, clock):
    # Given alice read 30 hours ago and bob and carol within the last hour
    clock.moment = NOW - timedelta(hours=30)
    log.touch("alice")
    clock.moment = NOW - timedelta(minutes=40)
    log.touch("bob")
    log.touch("carol")

    # When the users active within 24 hours are listed
    active = everyone(log, NOW - timedelta(hours=24))

    # Then alice is not among them, and her stale mark is gone from Redis
    assert active == ["bob", "carol"]
    assert everyone(log, NOW - timedelta(hours=48)) == ["bob", "carol"]


def test_given_a_busy_reader_when_it_reads_again_and_again_then_redis_is_written_once_per_interval(
    log, clock, redis_client
):
    user = f"busy-{uuid.uuid4().hex[:6]}"
    writes: list[str] = []
    original = redis_client.zadd
    redis_client.zadd = lambda *args, **kwargs: writes.append(args[0]) or original(*args, **kwargs)

    for _ in range(50):
        log.touch(user)
    clock.moment = NOW + timedelta(minutes=3)
    log.touch(user)

    assert len(writes) == 2


def test_given_2500_readers_when_listed_then_every_one_comes_once_in_pages(log):
    users = [f"reader-{n:04d}" for n in range(2500)]
    for user in users:
        log.touch(user)

    pages = list(log.active_since(NOW - timedelta(hours=1)))

    assert sorted(user for page in pages for user in page) == users
    assert all(len(page) <= 1000 for page in pages)
    assert len(pages) >= SHARDS  # spread over the shards, so over the cluster's slots


def test_given_redis_unreachable_then_marking_is_silent_and_listing_says_unavailable(clock):
    down = redis.Redis(port=free_port(), socket_connect_timeout=0.2, socket_timeout=0.2)
    log = RedisActivityLog(down, clock=clock)

    log.touch("alice")  # a read never fails because the log cannot be written

    with pytest.raises(ActivityUnavailableError):
        list(log.active_since(NOW - timedelta(hours=1)))
    with pytest.raises(ActivityUnavailableError):
        log.asset_readers_since(NOW - timedelta(hours=1))


def test_given_the_key_of_a_shard_then_it_is_a_cluster_hash_tag():
    assert activity_key(7) == "active-users:{7}"
    assert asset_readers_key(7) == "asset-readers:{7}"  # a user's two marks share a slot


def test_given_readers_of_their_asset_list_when_listed_then_they_come_among_the_active_and_apart(log, clock):
    # Given alice read her summary, bob his asset list, and carol her asset list 30 hours ago
    clock.moment = NOW - timedelta(hours=30)
    log.touch("carol", asset_list=True)
    clock.moment = NOW - timedelta(minutes=10)
    log.touch("alice")
    log.touch("bob", asset_list=True)

    # When the readers of the last 24 hours are listed
    since = NOW - timedelta(hours=24)

    # Then bob alone read his asset list lately, and he is active too
    assert log.asset_readers_since(since) == {"bob"}
    assert everyone(log, since) == ["alice", "bob"]


def test_given_a_summary_reader_who_opens_the_asset_list_within_the_interval_then_that_read_is_marked(log):
    log.touch("dave")
    log.touch("dave", asset_list=True)  # within TOUCH_INTERVAL_S of the first mark: a mark of its own

    assert log.asset_readers_since(NOW - timedelta(hours=1)) == {"dave"}


def test_given_readers_who_read_again_while_the_list_is_taken_then_nobody_is_skipped(log, clock):
    # Given 20,000 readers: more than a page in every shard
    users = [f"reader-{n:05d}" for n in range(20_000)]
    for user in users:
        log.touch(user)

    # When, right after the first page, 300 of its readers read again (their marks move to the end)
    clock.moment = NOW + timedelta(minutes=5)
    seen: list[str] = []
    for number, page in enumerate(log.active_since(NOW - timedelta(hours=1))):
        seen += page
        if number == 0:
            for user in page[:300]:
                log.touch(user)

    # Then every reader was listed exactly once
    assert sorted(seen) == users
