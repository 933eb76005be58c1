"""The reliability suite: outside systems failing for real under the functions' own handlers.

Every test here gets the `faults` marker. The functions read their environment as in Lambda
(`function_env` sets it, then portfolio.wiring.reset()), pointed at moto's server, the test Redis
(or a Redis of the test's own when it kills it) and a local coins API. Retries back off for
milliseconds, not seconds, so the suite stays fast; what is checked is how many retries happen,
never how long they take.

Figures worth reporting (retries, stale prices served, durations) are collected with the
`fault_figures` fixture and printed at the end of the run under "fault figures".
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from portfolio.settings import Settings

from local_stack.coins_api import CoinsApiServer
from local_stack.template_resources import create_queues
from tests.conftest import FAULT_FIGURES
from tests.faults.handlers import RefreshQueues

FAULTS_DIR = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if FAULTS_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.faults)


@pytest.fixture
def fault_figures(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A dict printed at the end of the run under this test's name (for docs/reliability.md)."""
    return FAULT_FIGURES.setdefault(request.node.name, {})


@pytest.fixture
def coins_api() -> Iterator[CoinsApiServer]:
    with CoinsApiServer(prices={}, price_every_coin=True) as api:
        yield api


@pytest.fixture
def sqs_client(moto_endpoint: str) -> Any:
    return boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def refresh_queues(sqs_client: Any) -> RefreshQueues:
    """The template's queue and dead-letter queue for one test, redelivering at once (VisibilityTimeout 0)."""
    suffix = uuid.uuid4().hex[:8]
    urls = create_queues(
        sqs_client, {"RefreshQueue": f"refresh-{suffix}", "RefreshDeadLetterQueue": f"refresh-dlq-{suffix}"}
    )
    sqs_client.set_queue_attributes(QueueUrl=urls["RefreshQueue"], Attributes={"VisibilityTimeout": "0"})
    return RefreshQueues(urls["RefreshQueue"], urls["RefreshDeadLetterQueue"])


FunctionEnv = Callable[..., Settings]


@pytest.fixture
def function_env(
    function_environment: FunctionEnv, coins_api: CoinsApiServer, refresh_queues: RefreshQueues
) -> FunctionEnv:
    """function_env(NAME=value, ...) sets the functions' environment and rebuilds the container's wiring."""

    def configure(**overrides: str) -> Settings:
        defaults = {
            "REFRESH_QUEUE_URL": refresh_queues.url,
            "PRICES_API_URL": coins_api.url,
            # Retries wait milliseconds here: the counts matter, not the waits.
            "PRICE_BACKOFF_BASE_S": "0.01",
            "PRICE_BACKOFF_CAP_S": "0.05",
            # Two cores shared with other suites: a generous Redis timeout keeps a busy Redis a hit.
            "REDIS_SOCKET_TIMEOUT_MS": "2000",
            "REDIS_CONNECT_TIMEOUT_MS": "2000",
            # moto can be slow on a busy machine; a client-side timeout would resend a write.
            "DYNAMODB_READ_TIMEOUT_S": "30",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
        return function_environment(**{**defaults, **overrides})

    return configure


@pytest.fixture(autouse=True)
def _only_this_tests_readers(no_recent_readers: None) -> None:
    """Every test here runs refreshes: readers recorded by earlier tests must not be queued."""
