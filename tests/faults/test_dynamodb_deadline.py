"""DynamoDB answering slowly (an HTTP proxy in front of moto's server holds every answer back).

The API must answer 503 with Retry-After by itself, before Lambda's timeout, instead of spending its
whole time on retries and leaving API Gateway to answer a bare 500.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from local_stack.http_events import http_event
from local_stack.lambda_context import LocalLambdaContext
from tests.faults.conftest import FunctionEnv
from tests.faults.handlers import invoke_api
from tests.support.faulty_dynamodb import FaultyDynamoDb, faulty_dynamodb

# The API function's timeout is 10 s (template.yaml); a shorter one keeps the test short, same rules.
FUNCTION_TIMEOUT_S = 5


@pytest.fixture
def slow_dynamodb(moto_endpoint: str) -> Iterator[FaultyDynamoDb]:
    # Every answer held 3 s: longer than the 1 s read timeout, so each attempt times out.
    with faulty_dynamodb(moto_endpoint, answer_late=10_000, late_by_s=3.0) as proxy:
        yield proxy


def test_given_dynamodb_answers_too_slowly_when_a_portfolio_is_read_then_503_with_retry_after_before_the_timeout(
    function_env: FunctionEnv, slow_dynamodb: FaultyDynamoDb, user_id: str, fault_figures: dict
) -> None:
    # Given: four attempts of 1 s to connect and 1 s to read, plus backoff, would outlast the function
    function_env(
        AWS_ENDPOINT_URL=slow_dynamodb.url,
        DYNAMODB_MAX_ATTEMPTS="4",
        DYNAMODB_CONNECT_TIMEOUT_S="1",
        DYNAMODB_READ_TIMEOUT_S="1",
    )
    event = http_event("GET", f"/portfolios/{user_id}", sub=user_id)
    context = LocalLambdaContext(
        "api", timeout_s=FUNCTION_TIMEOUT_S, aws_request_id=event["requestContext"]["requestId"]
    )

    # When
    started = time.monotonic()
    answer = invoke_api(event, context)
    elapsed_s = time.monotonic() - started

    # Then: the function's own 503, with time to spare, after fewer attempts than allowed
    assert answer.status == 503
    assert answer.json["error"]["code"] == "service_unavailable"
    assert "did not answer in time" in answer.json["error"]["message"]
    assert answer.headers["retry-after"] == "1"
    assert elapsed_s < FUNCTION_TIMEOUT_S - 0.5
    assert 1 <= slow_dynamodb.answered_late < 4
    fault_figures.update(slow_dynamodb_answer_s=round(elapsed_s, 2), slow_dynamodb_attempts=slow_dynamodb.answered_late)
