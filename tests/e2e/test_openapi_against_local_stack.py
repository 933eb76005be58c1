"""The OpenAPI document against the running system: schemathesis reads the document and sends what it
generates over HTTP to `python -m local_stack` (its gateway and JWT authorizer, the API function,
DynamoDB, Redis and chain nodes), with a valid token for the user in the path.

Every answer must be one the document declares (status, body, headers), none a 5xx; and since a
document no client can get a success out of misleads it as much as a wrong one, every read and
write must have answered 2xx at least once.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from portfolio.api.openapi import openapi_document

from local_stack.jwt_auth import JwtAuthorizer
from tests.e2e.stack_process import local_stack_process, wait_until_healthy
from tests.support.openapi_cases import operations_of, send_generated

STARTUP_TIMEOUT_S = 120
SECRET = "openapi-e2e-signing-key-long-enough-for-hs256"
# A user of this run alone: the stack's Redis database outlives the stack.
USER_ID = f"openapi-{uuid.uuid4().hex[:12]}"
AUTHORIZATION = {"Authorization": f"Bearer {JwtAuthorizer(SECRET).issue(USER_ID)}"}
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]
DOCUMENT = openapi_document()
# Status codes answered per operation ("POST /portfolios/{userId}/transactions"), over the module.
ANSWERED: dict[str, Counter[int]] = defaultdict(Counter)

schema = schemathesis.openapi.from_dict(DOCUMENT)
# Every generated userId is the token's sub (any other is refused, 403, before the request is looked
# at); values the document refuses are tests/faults/test_hostile_input.py's, in-process.


@pytest.fixture(scope="module")
def stack_url(local_stack_redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    variables = {
        "OFFLINE_PRICES": "1",
        "REDIS_URL": local_stack_redis_url,
        "REFRESH_INTERVAL_SECONDS": "86400",
        "LOCAL_JWT_SECRET": SECRET,
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        # Every generated request comes from one user: with the per-user limits most would be 429s.
        "USER_WRITE_RATE_PER_S": "0",
        "USER_READ_RATE_PER_S": "0",
    }
    directory = tmp_path_factory.mktemp("openapi-stack")
    no_node_urls = lambda name: name.startswith("RPC_URL_")  # noqa: E731 - the stack starts its own nodes
    with local_stack_process(directory, variables, also_drop=no_node_urls) as (process, url, log_path, _):
        wait_until_healthy(process, url, log_path.read_text, timeout_s=STARTUP_TIMEOUT_S)
        yield url


@pytest.fixture
def linked_wallet_id(stack_url: str) -> str:
    """A wallet of the user's (on the stack's own Ethereum node), for the sync route to find; one per
    operation, as the generated DELETE of a wallet unlinks it."""
    address = "0x" + uuid.uuid4().hex + uuid.uuid4().hex[:8]
    response = httpx.post(
        f"{stack_url}/portfolios/{USER_ID}/wallets", json={"address": address}, headers=AUTHORIZATION, timeout=60
    )
    assert response.status_code == 201, response.text
    return str(response.json()["walletId"])


@pytest.mark.parametrize("operation", operations_of(schema), ids=lambda operation: operation.label)
def test_given_generated_requests_with_a_valid_token_when_sent_to_the_local_stack_then_every_answer_is_documented(
    operation: Any, stack_url: str, linked_wallet_id: str
) -> None:
    path_parameters = {"userId": USER_ID, "walletId": linked_wallet_id}

    def send(case: Any) -> None:
        case.path_parameters = {**(case.path_parameters or {}), **path_parameters}
        case.headers = {**(case.headers or {}), **AUTHORIZATION}
        response = case.call(base_url=stack_url, timeout=60)
        ANSWERED[operation.label][response.status_code] += 1
        case.validate_response(response, checks=CHECKS)

    send_generated(operation, send, max_examples=8, path_parameters=path_parameters, headers=AUTHORIZATION)


def test_given_no_token_when_calling_each_portfolio_route_then_the_gateways_401_is_the_one_documented(
    stack_url: str,
) -> None:
    secured = [
        operation
        for result in schemathesis.openapi.from_dict(DOCUMENT).get_all_operations()
        if (operation := result.ok()).definition.raw.get("security")
    ]
    assert len(secured) >= 10
    for operation in secured:
        # When: the route is called without a token (any path parameters: the authorizer decides first)
        parameters = {"userId": USER_ID, "walletId": "w0000000000000000", "transactionId": "tx-1", "alertId": "a-1"}
        body = {"body": {}} if "requestBody" in operation.definition.raw else {}
        case = operation.Case(path_parameters=parameters, **body)
        response = case.call(base_url=stack_url, timeout=60)

        # Then: API Gateway's own 401, as the document declares it
        assert response.status_code == 401, (operation.label, response.text)
        assert response.json() == {"message": "Unauthorized"}
        case.validate_response(response, checks=CHECKS)


def test_given_the_generated_requests_then_every_read_and_write_succeeded_at_least_once() -> None:
    assert ANSWERED, "runs after the generated requests of this module"
    reads_and_writes = [
        f"{method.upper()} {path}"
        for path, methods in DOCUMENT["paths"].items()
        for method in methods
        if method in ("get", "post", "put")
    ]

    never_succeeded = {
        operation: dict(ANSWERED[operation])
        for operation in reads_and_writes
        if not any(200 <= status < 300 for status in ANSWERED[operation])
    }

    assert not never_succeeded, never_succeeded
