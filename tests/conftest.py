"""Shared fixtures, from the local stack's own parts: a real Redis, moto's server over HTTP, the
template's tables, the functions' environment, a Lambda context."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from local_stack.aws import DUMMY_ACCESS_KEY_ID, DUMMY_SECRET_ACCESS_KEY

# Before any handler or Powertools import: no X-Ray daemon, no real AWS account.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_REGION", "us-east-1")
os.environ["AWS_ACCESS_KEY_ID"] = DUMMY_ACCESS_KEY_ID
os.environ["AWS_SECRET_ACCESS_KEY"] = DUMMY_SECRET_ACCESS_KEY
os.environ.pop("AWS_PROFILE", None)
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "CrossChainPortfolio")
os.environ.setdefault("POWERTOOLS_DEV", "false")

import boto3
import pytest
import redis
from portfolio import wiring
from portfolio.settings import Settings

from local_stack.aws import MotoServer
from local_stack.embedded_redis import RedisClusterServers, RedisServer
from local_stack.functions import function_environment as local_function_environment
from local_stack.lambda_context import LocalLambdaContext
from local_stack.template_resources import create_tables


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """REDIS_URL when set, else a redis-server of our own on a free port for this session."""
    configured = os.environ.get("REDIS_URL")
    if configured:
        yield configured
        return
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of the test's own, which it may kill and start again on the same port without
    harming anyone else's tests."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, socket_timeout=1)
    yield client
    client.close()


@pytest.fixture
def no_recent_readers(redis_client: redis.Redis) -> None:
    """The activity log lives in the shared Redis: a test that runs the scheduler starts with no reader
    on record, so only the users it makes active are queued as active."""
    from portfolio.adapters.activity_log import SHARDS, activity_key, asset_readers_key

    redis_client.delete(*(key(shard) for shard in range(SHARDS) for key in (activity_key, asset_readers_key)))


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server on loopback, as the local stack runs it: AWS APIs over real HTTP."""
    server = MotoServer().start()
    os.environ["AWS_ENDPOINT_URL"] = server.endpoint
    try:
        yield server.endpoint
    finally:
        server.stop()


@pytest.fixture
def dynamodb_client(moto_endpoint: str):
    return boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def table_names(dynamodb_client) -> dict[str, str]:
    """Fresh tables from template.yaml for one test."""
    suffix = uuid.uuid4().hex[:8]
    names = {"PortfolioTable": f"portfolio-{suffix}"}
    create_tables(dynamodb_client, names)
    return names


@pytest.fixture
def settings(moto_endpoint: str, table_names: dict[str, str], redis_url: str) -> Settings:
    """Settings pointing at this test's tables, moto's server and the test Redis."""
    return Settings(
        AWS_ENDPOINT_URL=moto_endpoint,
        TABLE_NAME=table_names["PortfolioTable"],
        REDIS_URL=redis_url,
    )


@pytest.fixture
def function_environment(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Iterator[Callable[..., Settings]]:
    """Set what template.yaml sets on a function (the local stack's function_environment), pointed at this
    test's tables, moto and the test Redis, plus `variables`; the per-container singletons are rebuilt
    from it. Returns the settings the function will read."""

    def configure(**variables: str) -> Settings:
        environment = {
            **local_function_environment(
                aws_endpoint=settings.aws_endpoint_url or "",
                region=settings.aws_region,
                table_name=settings.table_name,
                redis_url=settings.redis_url or "",
            ),
            **variables,
        }
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        wiring.reset()
        return wiring.settings()

    yield configure
    wiring.reset()


@pytest.fixture
def user_id() -> str:
    """A user id no other test uses, so tests can share one Redis."""
    return f"user-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def lambda_context() -> LocalLambdaContext:
    return LocalLambdaContext("test-function")


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterServers]:
    """A real Redis Cluster for this session (each pytest-xdist worker its own, on free ports): three masters,
    no replicas, created with redis-cli --cluster create (about 2 s, once). A key-slot mistake fails there
    as on ElastiCache Serverless: CROSSSLOT for multi-key work across slots, MOVED for a plain client."""
    cluster = RedisClusterServers().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def cluster_url(redis_cluster: RedisClusterServers) -> str:
    """The URL of the cluster's first master; a cluster client finds the other two from it."""
    return redis_cluster.url


# Figures the fault tests report (tests/faults, the `fault_figures` fixture), printed at the end of the
# run. Under pytest-xdist each worker hands its own to the controller, which prints them all.
FAULT_FIGURES: dict[str, dict[str, Any]] = {}


def pytest_sessionfinish(session: pytest.Session) -> None:
    worker_output = getattr(session.config, "workeroutput", None)
    if worker_output is not None:
        worker_output["fault_figures"] = json.dumps(FAULT_FIGURES, default=str)


def pytest_testnodedown(node: Any, error: Any) -> None:
    FAULT_FIGURES.update(json.loads(getattr(node, "workeroutput", {}).get("fault_figures", "{}")))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FAULT_FIGURES:
        terminalreporter.write_sep("-", "fault figures")
        for name, figures in sorted(FAULT_FIGURES.items()):
            terminalreporter.write_line(f"{name}: {json.dumps(figures, default=str)}")
