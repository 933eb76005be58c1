"""The local stack on a Redis Cluster: REDIS_CLUSTER_MODE is honoured, said at startup, and checked
against the Redis there is; without REDIS_URL, cluster mode starts a three-master cluster of its own."""

from __future__ import annotations

import signal
import uuid
from pathlib import Path

import httpx
import pytest
import redis
from redis.cluster import RedisCluster

from local_stack.embedded_redis import RedisKind, RedisModeError, start_redis
from local_stack.jwt_auth import JwtAuthorizer
from tests.e2e.stack_process import local_stack_process, wait_until_healthy
from tests.support.redis_cluster import user_served_elsewhere

STARTUP_TIMEOUT_S = 120
ZERO = "0x0000000000000000000000000000000000000000"
# Wallet sync's nodes are not used here: URLs of nodes nobody runs keep the stack from starting its own.
NO_LOCAL_NODES = {"RPC_URL_ETHEREUM": "http://127.0.0.1:1", "RPC_URL_SOLANA": "http://127.0.0.1:1"}


def _stack_variables(redis_url: str, cluster_mode: str, jwt_secret: str) -> dict[str, str]:
    return {
        "OFFLINE_PRICES": "1",
        "REDIS_URL": redis_url,
        "REDIS_CLUSTER_MODE": cluster_mode,
        "REFRESH_INTERVAL_SECONDS": "86400",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "LOCAL_JWT_SECRET": jwt_secret,
        **NO_LOCAL_NODES,
    }


def test_given_redis_url_of_a_cluster_and_cluster_mode_when_a_user_writes_and_reads_then_the_views_are_cached_there(
    cluster_url: str, tmp_path: Path
) -> None:
    # Given the stack on the session's three-master cluster in cluster mode, and a user whose keys live on
    # another master than the one REDIS_URL names (a plain client would get MOVED for each of them)
    user_id = user_served_elsewhere(cluster_url, "stack-cluster")
    secret = uuid.uuid4().hex
    headers = {"Authorization": f"Bearer {JwtAuthorizer(secret).issue(user_id, ttl_s=600)}"}
    with local_stack_process(tmp_path, _stack_variables(cluster_url, "true", secret)) as (process, url, log, _):
        wait_until_healthy(process, url, log.read_text, timeout_s=STARTUP_TIMEOUT_S)

        # When the user records a buy and reads the portfolio twice
        buy = {
            "id": "t1",
            "type": "buy",
            "chain": "ethereum",
            "tokenAddress": ZERO,
            "amount": "1",
            "priceUsd": "2500",
            "timestamp": "2025-01-01T00:00:00Z",
        }
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
            recorded = client.post(f"/portfolios/{user_id}/transactions", json={"transactions": [buy]})
            first = client.get(f"/portfolios/{user_id}")
            second = client.get(f"/portfolios/{user_id}")

        # Then the answers are right, the startup log says which Redis and which mode, and the summary
        # is cached on the master serving the user's slot, with no Redis error on the way
        assert recorded.status_code == 201, recorded.text
        assert first.status_code == second.status_code == 200, first.text
        assert first.json()["totalValueUsd"] == second.json()["totalValueUsd"] == "3350.42"
        cluster = RedisCluster.from_url(cluster_url, socket_timeout=1)
        try:
            assert cluster.exists(f"portfolio:cross-chain:{{{user_id}}}") == 1
        finally:
            cluster.close()
        output = log.read_text()
        assert "MOVED" not in output
        assert "Redis cache unavailable" not in output, output[-4000:]
        assert f"Redis        {cluster_url}  (from REDIS_URL)" in output
        assert "cluster mode (REDIS_CLUSTER_MODE=true)" in output
        assert "REDIS_CLUSTER_MODE=true (env)" in output

        # And Ctrl-C still stops it cleanly
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0


def test_given_redis_url_of_a_cluster_without_cluster_mode_when_the_stack_starts_then_it_refuses_saying_what_to_set(
    cluster_url: str, tmp_path: Path
) -> None:
    # When the stack is pointed at a cluster with REDIS_CLUSTER_MODE left false
    variables = _stack_variables(cluster_url, "false", uuid.uuid4().hex)
    with local_stack_process(tmp_path, variables) as (process, _url, log, _):
        code = process.wait(timeout=STARTUP_TIMEOUT_S)

    # Then it stops at once and says what to change, instead of running without its cache
    assert code == 1
    assert "it is a Redis Cluster: set REDIS_CLUSTER_MODE=true" in log.read_text()


def test_given_cluster_mode_and_no_redis_url_when_redis_is_started_then_a_three_master_cluster_serves_every_slot() -> (
    None
):
    # When the stack's Redis starts in cluster mode with no REDIS_URL
    local = start_redis(None, cluster_mode=True)
    cluster = RedisCluster.from_url(local.url, socket_timeout=1)
    try:
        # Then it is a cluster of three masters, run here, that the functions reach in cluster mode
        assert (local.kind, local.cluster_mode, local.embedded) == (RedisKind.REDIS_CLUSTER, True, True)
        primaries = cluster.get_primaries()
        assert len(primaries) == 3
        # And keys of every master are written and read through any node's URL
        keys = [f"check:{{{n}}}" for n in range(30)]
        assert len({cluster.get_node_from_key(key).port for key in keys}) == 3
        for key in keys:
            cluster.set(key, key)
        assert [cluster.get(key) for key in keys] == [key.encode() for key in keys]
    finally:
        cluster.close()
        local.stop()

    # And after stop none of its masters answers
    for primary in primaries:
        with pytest.raises(redis.ConnectionError):
            redis.Redis(port=primary.port, socket_connect_timeout=0.5).ping()


def test_given_redis_url_of_a_single_redis_and_cluster_mode_then_starting_refuses_saying_what_to_change(
    redis_url: str,
) -> None:
    with pytest.raises(RedisModeError, match="unset REDIS_CLUSTER_MODE or point REDIS_URL at a cluster"):
        start_redis(redis_url, cluster_mode=True)


def test_given_a_cluster_url_naming_a_database_other_than_0_then_starting_in_cluster_mode_refuses(
    cluster_url: str,
) -> None:
    with pytest.raises(RedisModeError, match="database 0 only"):
        start_redis(f"{cluster_url}/13", cluster_mode=True)


def test_given_cluster_mode_without_redis_url_or_redis_cli_then_starting_refuses_naming_what_is_missing() -> None:
    with pytest.raises(RedisModeError, match="needs redis-cli"):
        start_redis(None, cluster_mode=True, find_cli=lambda: None)
