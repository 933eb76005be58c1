"""The container's DynamoDB client under real faults: throttling is retried, a dead server times out,
and retries stop before the caller's deadline."""

from __future__ import annotations

import time
from urllib.parse import urlparse

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError
from portfolio.adapters.dynamodb.store import PortfolioStore
from portfolio.adapters.dynamodb_client import DeadlineReached, make_dynamodb_client
from portfolio.adapters.dynamodb_deadline import within
from portfolio.domain.errors import VersionConflict
from portfolio.services.ports import StoreBusyError, StoreUnavailableError
from portfolio.settings import Settings

from tests.integration.store.builders import a_portfolio
from tests.support.faulty_dynamodb import faulty_dynamodb
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.faults


def store_behind(endpoint: str, settings: Settings, **overrides: str) -> PortfolioStore:
    faulty = Settings(AWS_ENDPOINT_URL=endpoint, TABLE_NAME=settings.table_name, **overrides)
    return PortfolioStore(
        make_dynamodb_client(faulty),
        faulty.table_name,
        cursor_signing_key="test-key",
        shards=faulty.user_index_shards,
    )


def test_given_dynamodb_throttles_once_when_a_portfolio_is_loaded_then_the_retry_answers(
    moto_endpoint, settings, user_id
):
    with faulty_dynamodb(moto_endpoint, throttle=1) as proxy:
        store = store_behind(proxy.url, settings, DYNAMODB_MAX_ATTEMPTS="3")

        portfolio = store.load_portfolio(user_id)

    assert portfolio.user_id == user_id
    assert (proxy.throttled, proxy.requests) == (1, 2)


def test_given_dynamodb_keeps_throttling_when_loading_then_the_error_surfaces_after_max_attempts(
    moto_endpoint, settings, user_id
):
    with faulty_dynamodb(moto_endpoint, throttle=-1) as proxy:
        store = store_behind(proxy.url, settings, DYNAMODB_MAX_ATTEMPTS="2")

        with pytest.raises(StoreBusyError) as raised:
            store.load_portfolio(user_id)

    # The store speaks the services' error; DynamoDB's own answer is kept as its cause
    assert isinstance(raised.value.__cause__, ClientError)
    assert raised.value.__cause__.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert proxy.requests == 2


def test_given_dynamodb_stops_answering_when_loading_then_each_attempt_times_out_and_the_error_surfaces(
    moto_endpoint, settings, user_id
):
    with TcpProxy(target_port=urlparse(moto_endpoint).port) as proxy:
        proxy.stall()
        store = store_behind(
            f"http://127.0.0.1:{proxy.port}", settings, DYNAMODB_MAX_ATTEMPTS="2", DYNAMODB_READ_TIMEOUT_S="0.3"
        )

        with pytest.raises(StoreUnavailableError) as raised:
            store.load_portfolio(user_id)

        assert isinstance(raised.value.__cause__, ReadTimeoutError)
        assert proxy.accepted == 2


def test_given_a_deadline_when_dynamodb_stops_answering_then_no_retry_is_started_that_would_outlast_it(
    moto_endpoint, settings, user_id
):
    # Given: ten attempts of 0.3 s to read would take 3 s and more; the caller has 1.5 s
    with TcpProxy(target_port=urlparse(moto_endpoint).port) as proxy:
        proxy.stall()
        store = store_behind(
            f"http://127.0.0.1:{proxy.port}", settings, DYNAMODB_MAX_ATTEMPTS="10", DYNAMODB_READ_TIMEOUT_S="0.3"
        )

        # When
        started = time.monotonic()
        with within(1.5), pytest.raises(StoreUnavailableError) as raised:
            store.load_portfolio(user_id)
        elapsed_s = time.monotonic() - started

        # Then: it gave up inside the deadline, saying why, after fewer attempts than configured
        assert elapsed_s < 1.5
        assert isinstance(raised.value.__cause__, DeadlineReached)
        assert isinstance(raised.value.__cause__.__cause__, ReadTimeoutError)
        assert 1 <= proxy.accepted < 10


def test_given_a_deadline_already_past_when_loading_then_dynamodb_is_not_asked(moto_endpoint, settings, user_id):
    with faulty_dynamodb(moto_endpoint) as proxy:
        store = store_behind(proxy.url, settings)

        with within(0), pytest.raises(StoreUnavailableError):
            store.load_portfolio(user_id)

        assert proxy.requests == 0


def test_given_a_deadline_with_room_when_throttled_once_then_the_retry_still_answers(moto_endpoint, settings, user_id):
    with faulty_dynamodb(moto_endpoint, throttle=1) as proxy:
        store = store_behind(proxy.url, settings, DYNAMODB_MAX_ATTEMPTS="3")

        with within(30):
            portfolio = store.load_portfolio(user_id)

    assert portfolio.user_id == user_id
    assert (proxy.throttled, proxy.requests) == (1, 2)


def test_given_a_save_whose_answer_is_lost_when_the_client_retries_then_it_is_not_reported_as_a_conflict(
    moto_endpoint, settings, user_id
):
    # Given DynamoDB applies the first write but its answer arrives after the client's read timeout
    with faulty_dynamodb(moto_endpoint, answer_late=1, late_by_s=1.0) as proxy:
        store = store_behind(proxy.url, settings, DYNAMODB_MAX_ATTEMPTS="3", DYNAMODB_READ_TIMEOUT_S="0.3")

        # When the portfolio is committed (the retry then meets its own write's version)
        saved = store.commit(a_portfolio(user_id), expected_version=0)

    # Then the commit succeeds once, and a commit by someone else at the old version is still refused
    assert proxy.answered_late == 1
    assert saved.version == 1
    with pytest.raises(VersionConflict):
        store_behind(moto_endpoint, settings).commit(
            a_portfolio(user_id, cost_basis_method="average"), expected_version=0
        )
