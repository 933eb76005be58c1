"""Two regions of one global table on this machine: each its own API process (its own AWS_REGION,
its own Redis, its own cache invalidator on its replica's stream), one moto server holding the table in
both regions, and the replicator copying writes between them as global tables do
(local_stack/global_tables.py). A write through region A's API must reach region B's readers fresh,
and B must never serve a view its replica does not hold yet, nor go back to an older one."""

from __future__ import annotations

import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from portfolio.adapters.portfolio_cache import CacheKey, CacheKind, version_key

from local_stack.aws import local_client
from local_stack.coins_api import CoinsApiServer
from local_stack.embedded_redis import RedisServer
from local_stack.global_tables import GlobalTableReplicator, ReplicatorThread, replicas_of
from local_stack.jwt_auth import JwtAuthorizer
from local_stack.ports import free_port
from local_stack.template_resources import create_tables
from local_stack.two_regions import RegionProcess

REGION_A, REGION_B = "us-east-1", "eu-west-1"
TOKEN = "0x" + "7e57" * 10  # priced by this test's coins API only
REPLICATION_INTERVAL_S = 0.1
STREAM_POLL_INTERVAL_S = "0.2"
# How long a change may take to reach B's readers here: replication, B's stream poll, a loaded machine.
FRESH_WITHIN_S = 20.0
# How long B may serve a view older than its replica: its stream poll (0.2 s) and one invalidation, with
# room for a busy machine. Without the stream-driven invalidation it would be the views' TTL (minutes).
INVALIDATION_LAG_BOUND_S = 5.0


@dataclass
class Region:
    name: str
    process: RegionProcess
    redis: redis.Redis
    table: Any  # a DynamoDB client of this region

    @property
    def url(self) -> str:
        return self.process.url


@dataclass
class TwoRegions:
    a: Region
    b: Region
    table_name: str
    replicator: GlobalTableReplicator
    authorizer: JwtAuthorizer

    def client(self, region: Region, user_id: str) -> httpx.Client:
        token = self.authorizer.issue(user_id, ttl_s=600)
        return httpx.Client(base_url=region.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def table_version(self, region: Region, user_id: str) -> int:
        """The version of the user's portfolio item in that region's replica (0: not there yet)."""
        item = region.table.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"USER#{user_id}"}, "sk": {"S": "PROFILE"}},
            ConsistentRead=True,
            ProjectionExpression="#version",
            ExpressionAttributeNames={"#version": "version"},
        ).get("Item")
        return int(item["version"]["N"]) if item else 0

    def cached_version(self, region: Region, user_id: str) -> int:
        """The newest portfolio version whose views that region's Redis has taken (written or retired for)."""
        stored = region.redis.get(version_key(user_id))
        return int(stored) if stored is not None else 0


@pytest.fixture(scope="module")
def regions(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoRegions]:
    directory = tmp_path_factory.mktemp("two-regions")
    table_name = f"portfolio-global-{uuid.uuid4().hex[:8]}"
    for region in (REGION_A, REGION_B):
        create_tables(local_client("dynamodb", moto_endpoint, region), {"PortfolioTable": table_name}, streams=True)
    secret = secrets.token_urlsafe(32)
    started: list[Callable[[], None]] = []
    deployed: list[Region] = []
    try:
        coins = CoinsApiServer(prices={}).start()
        started.append(coins.stop)
        coins.set_price(f"ethereum:{TOKEN}", "10", symbol="TEST")
        replicator = GlobalTableReplicator(replicas_of(moto_endpoint, table_name, [REGION_A, REGION_B]))
        replication = ReplicatorThread(replicator, interval_s=REPLICATION_INTERVAL_S)
        replication.start()
        started.append(replication.stop)
        for name in (REGION_A, REGION_B):
            redis_server = RedisServer().start()
            started.append(redis_server.stop)
            log = (directory / f"{name}.log").open("wb")
            started.append(log.close)
            process = RegionProcess(
                region=name,
                endpoint=moto_endpoint,
                table_name=table_name,
                port=free_port(),
                environment=region_environment(redis_server.url, coins.url, secret, directory),
                output=log,
            ).start()
            started.append(process.stop)
            client = redis.Redis.from_url(redis_server.url, socket_timeout=2)
            started.append(client.close)
            deployed.append(Region(name, process, client, local_client("dynamodb", moto_endpoint, name)))
        for region in deployed:
            try:
                region.process.wait_until_healthy()
            except RuntimeError as error:
                log_text = (directory / f"{region.name}.log").read_text(errors="replace")
                pytest.fail(f"{error}:\n{log_text[-4000:]}")
        yield TwoRegions(deployed[0], deployed[1], table_name, replicator, JwtAuthorizer(secret))
    finally:
        for region in deployed:  # both told at once: each takes a moment to wind down
            if region.process.process is not None and region.process.process.poll() is None:
                region.process.process.terminate()
        for stop in reversed(started):
            stop()


def region_environment(redis_url: str, prices_url: str, secret: str, directory: Path) -> dict[str, str]:
    kept = ("PATH", "HOME", "LANG", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")
    return {
        **{name: os.environ[name] for name in kept if name in os.environ},
        "REDIS_URL": redis_url,
        "PRICES_API_URL": prices_url,
        "LOCAL_JWT_SECRET": secret,
        "LOCAL_DATA_DIR": str(directory / "data"),
        "STREAM_POLL_INTERVAL_SECONDS": STREAM_POLL_INTERVAL_S,
        # Reads and writes come faster here than any user's; the limits have their own tests.
        "USER_WRITE_RATE_PER_S": "0",
        "USER_READ_RATE_PER_S": "0",
        # moto answers three processes on two shared cores: a slow answer is not a failure here.
        "DYNAMODB_READ_TIMEOUT_S": "30",
        "REDIS_SOCKET_TIMEOUT_MS": "2000",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }


def buy(transaction_id: str) -> dict[str, str]:
    """One TEST token for $1: the user's cost basis counts the buys, and so the portfolio's version."""
    return {
        "id": transaction_id,
        "type": "buy",
        "chain": "ethereum",
        "tokenAddress": TOKEN,
        "amount": "1",
        "priceUsd": "1",
        "timestamp": "2024-06-01T12:00:00Z",
    }


def cost_basis(client: httpx.Client, user_id: str) -> int:
    response = client.get(f"/portfolios/{user_id}")
    assert response.status_code == 200, response.text
    return int(Decimal(response.json()["costBasisUsd"]))


def transaction_ids(client: httpx.Client, user_id: str) -> set[str]:
    response = client.get(f"/portfolios/{user_id}/transactions")
    assert response.status_code == 200, response.text
    return {transaction["id"] for transaction in response.json()["transactions"]}


def wait_for[T](read: Callable[[], T], done: Callable[[T], bool], *, what: str, timeout_s: float = FRESH_WITHIN_S) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: still {value!r} after {timeout_s} s")
        time.sleep(0.05)


def record_first_buy(regions: TwoRegions, user_id: str) -> tuple[httpx.Client, httpx.Client]:
    """The user's first buy written in A, replicated, taken by B's invalidator, and B's views of it cached."""
    in_a, in_b = regions.client(regions.a, user_id), regions.client(regions.b, user_id)
    assert in_a.post(f"/portfolios/{user_id}/transactions", json=buy("t-1")).status_code == 201
    wait_for(lambda: regions.cached_version(regions.b, user_id), lambda v: v == 1, what="B's invalidator at v1")
    assert cost_basis(in_b, user_id) == 1
    assert transaction_ids(in_b, user_id) == {"t-1"}
    assert regions.b.redis.exists(CacheKey(CacheKind.PORTFOLIO, user_id).value)
    return in_a, in_b


def test_given_a_portfolio_cached_in_region_b_when_a_buy_is_written_in_region_a_then_b_serves_it_once_replicated(
    regions: TwoRegions, user_id: str
) -> None:
    # Given: the user's portfolio read (and so cached) in B
    in_a, in_b = record_first_buy(regions, user_id)

    # When: a second buy is written through A's API
    assert in_a.post(f"/portfolios/{user_id}/transactions", json=buy("t-2")).status_code == 201

    # Then: once replicated, B's API answers with the new figures and the new transaction, not with the
    # views B had cached (their TTL is minutes; the replica's stream retired them)
    wait_for(lambda: cost_basis(in_b, user_id), lambda cost: cost == 2, what="B's cost basis")
    assert transaction_ids(in_b, user_id) == {"t-1", "t-2"}
    assert regions.table_version(regions.b, user_id) == 2
    assert cost_basis(in_a, user_id) == 2


def test_given_writes_landing_in_region_a_when_b_is_read_meanwhile_then_it_never_goes_back_nor_ahead_of_its_replica(
    regions: TwoRegions, user_id: str
) -> None:
    # Given: the user's portfolio at version 1 in both regions, cached in B
    _, in_b = record_first_buy(regions, user_id)
    buys = 6

    # When: more buys land in A one after another while B is read without pause
    def write() -> None:
        writer = regions.client(regions.a, user_id)
        for index in range(2, buys + 2):
            assert writer.post(f"/portfolios/{user_id}/transactions", json=buy(f"t-{index}")).status_code == 201

    writer = threading.Thread(target=write)
    writer.start()
    observed: list[tuple[float, int, int]] = []  # (when, the version B served, B's replica's version right after)
    deadline = time.monotonic() + FRESH_WITHIN_S * 2
    while time.monotonic() < deadline:
        served = cost_basis(in_b, user_id)
        observed.append((time.monotonic(), served, regions.table_version(regions.b, user_id)))
        if served == buys + 1 and not writer.is_alive():
            break
    writer.join(timeout=60)

    # Then: B moved forward only, never showed a version its replica did not hold yet, caught up, and
    # served a version older than its replica only for as long as its invalidator took to see the change
    served_versions = [served for _, served, _ in observed]
    assert served_versions == sorted(served_versions), observed
    assert all(served <= replica for _, served, replica in observed), observed
    assert served_versions[-1] == buys + 1, observed
    assert len(set(served_versions)) >= 2, observed
    assert regions.table_version(regions.a, user_id) == buys + 1
    assert stale_for(observed) < INVALIDATION_LAG_BOUND_S, observed


def stale_for(observed: list[tuple[float, int, int]]) -> float:
    """The longest time between B's replica first showing a version and B first serving it (or a later one)."""
    longest = 0.0
    for version in {replica for _, _, replica in observed}:
        in_replica = min(when for when, _, replica in observed if replica >= version)
        served = min(when for when, served, _ in observed if served >= version)
        longest = max(longest, served - in_replica)
    return longest


def test_given_a_transaction_replicated_after_its_portfolio_item_when_it_arrives_then_region_b_lists_it(
    regions: TwoRegions, user_id: str
) -> None:
    # Given: the user's first buy everywhere, and B's replication of this user's transaction items held
    # back (global tables replicate the items of one transaction one by one, in no promised order)
    in_a, in_b = record_first_buy(regions, user_id)
    partition = f"USER#{user_id}"
    regions.replicator.hold(lambda keys: keys["pk"]["S"] == partition and keys["sk"]["S"].startswith("TX#"))
    try:
        # When: a second buy is written in A; its portfolio item reaches B, B's invalidator retires the
        # old views, and B's transaction page is read (and cached) before the transaction arrives
        assert in_a.post(f"/portfolios/{user_id}/transactions", json=buy("t-2")).status_code == 201
        wait_for(lambda: regions.cached_version(regions.b, user_id), lambda v: v == 2, what="B's invalidator at v2")
        assert cost_basis(in_b, user_id) == 2
        assert transaction_ids(in_b, user_id) == {"t-1"}
    finally:
        regions.replicator.release()

    # Then: once the transaction item arrives, B lists it (its arrival retired the page cached without it)
    wait_for(lambda: transaction_ids(in_b, user_id), lambda ids: ids == {"t-1", "t-2"}, what="B's transactions")
