"""Queues for the refresh pipeline tests: the refresh queue and its dead-letter queue, on moto's server."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import boto3
import pytest
from portfolio import wiring
from portfolio.adapters.dynamodb.store import PortfolioStore
from portfolio.settings import Settings

from local_stack.coins_api import CoinsApiServer
from local_stack.template_resources import create_queues

MAX_RECEIVE_COUNT = 3


@dataclass(frozen=True)
class RefreshQueues:
    url: str
    dead_letter_url: str


@pytest.fixture
def sqs_client(moto_endpoint: str):
    return boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")


@pytest.fixture
def refresh_queues(sqs_client) -> RefreshQueues:
    """Fresh queues from template.yaml for one test, redelivering at once (VisibilityTimeout 0)."""
    suffix = uuid.uuid4().hex[:8]
    names = {"RefreshQueue": f"refresh-{suffix}", "RefreshDeadLetterQueue": f"refresh-dlq-{suffix}"}
    urls = create_queues(sqs_client, names, parameters={"MaxReceiveCount": MAX_RECEIVE_COUNT})
    queues = RefreshQueues(urls["RefreshQueue"], urls["RefreshDeadLetterQueue"])
    sqs_client.set_queue_attributes(QueueUrl=queues.url, Attributes={"VisibilityTimeout": "0"})
    return queues


@pytest.fixture
def coins_api() -> Iterator[CoinsApiServer]:
    with CoinsApiServer(prices={}, price_every_coin=True) as api:
        yield api


@pytest.fixture
def refresh_env(
    function_environment: Callable[..., Settings], refresh_queues: RefreshQueues, coins_api: CoinsApiServer
) -> Settings:
    """The environment the two functions read in AWS, pointing at this test's tables, queues and coins API."""
    return function_environment(
        REFRESH_QUEUE_URL=refresh_queues.url,
        PRICES_API_URL=coins_api.url,
        PRICE_BACKOFF_BASE_S="0",
        # Every idle user every cycle, so a test sees all of them queued in one run.
        IDLE_REFRESH_EVERY_CYCLES="1",
    )


@pytest.fixture
def store(refresh_env: Settings) -> PortfolioStore:
    return wiring.portfolio_store()


@pytest.fixture(autouse=True)
def _only_this_tests_readers(no_recent_readers: None) -> None:
    """Every test here runs refreshes: readers recorded by earlier tests must not be queued."""
