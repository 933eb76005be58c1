"""Bad and hostile requests through the API handler: a clear 4xx with the error shape, and nothing stored.

Generated requests (schemathesis over the OpenAPI document, negative cases included) and a list of
hand-written ones that parsers and validators are known to trip on.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import boto3
import pytest
import schemathesis
from portfolio.api.openapi import openapi_document
from schemathesis import GenerationMode

from local_stack.coins_api import CoinsApiServer
from local_stack.functions import load_handler
from local_stack.http_events import http_event
from local_stack.template_resources import create_tables
from tests.faults.conftest import FunctionEnv
from tests.faults.handlers import ApiResponse, buy, call_api, invoke_api, partition_items, random_address
from tests.support.lambda_wsgi import LambdaWsgiApp
from tests.support.openapi_cases import operations_of, send_generated

TOKEN = random_address()
VALID = buy("tx-new", TOKEN, "1")
# One holder receives every hostile request, and generated cases repeat a few user ids many times: the
# per-user rate limits are lifted here, or most requests would be answered 429 before reaching the parser.
NO_RATE_LIMITS = {"USER_WRITE_RATE_PER_S": "0", "USER_READ_RATE_PER_S": "0"}


def body_with(**changes: str) -> str:
    """VALID as JSON text with some values replaced by raw JSON text (numbers, literals)."""
    text = json.dumps(VALID)
    for name, raw in changes.items():
        text = text.replace(f'"{name}": {json.dumps(VALID[name])}', f'"{name}": {raw}')
    return text


HOSTILE_BODIES: dict[str, Any] = {
    "huge integer amount": body_with(amount="1" + "0" * 400),
    "huge decimal string amount": body_with(amount=json.dumps("9" * 500 + ".5")),
    "negative amount": body_with(amount='"-5"'),
    "zero amount": body_with(amount='"0"'),
    "amount 1e400": body_with(amount="1e400"),
    "priceUsd 1e400": body_with(priceUsd="1e400"),
    "amount -1e-400": body_with(amount="-1e-400"),
    "NaN literal": body_with(amount="NaN"),
    "Infinity literal": body_with(amount="Infinity"),
    "-Infinity literal": body_with(priceUsd="-Infinity"),
    "NaN string": body_with(amount='"NaN"'),
    "Infinity string": body_with(priceUsd='"Infinity"'),
    "amount as a boolean": body_with(amount="true"),
    "unicode in the transaction id": body_with(id=json.dumps("tx-\u2603-\u0000")),
    "path traversal in the transaction id": body_with(id='"../../etc/passwd"'),
    "10 000 character id": body_with(id=json.dumps("x" * 10_000)),
    "unknown chain": body_with(chain='"atlantis"'),
    "year 99999": body_with(timestamp='"99999-01-01T00:00:00Z"'),
    "duplicate keys": body_with(amount='"1", "amount": "2"'),
    "deep nesting": "[" * 100_000 + "]" * 100_000,
    "deep nesting in a field": body_with(amount="[" * 50_000 + "]" * 50_000),
    "huge array": json.dumps({"transactions": [1] * 20_000}),
    "too many transactions": json.dumps({"transactions": [buy(f"t-{n}", TOKEN, "1") for n in range(600)]}),
    "a JSON array": "[]",
    "JSON null": "null",
    "a JSON string": '"buy"',
    "truncated JSON": body_with()[:-5],
    "invalid UTF-8": b'{"id": "tx-\xff\xfe", "type": "buy"}',
    "10 MB body": json.dumps({"transactions": [VALID], "padding": "x" * 10_000_000}),
}

HOSTILE_PATHS: dict[str, tuple[str, str]] = {
    # (method, path); the caller's sub is the user id in the path, so only the path itself is wrong
    "path traversal in the user id": ("GET", "/portfolios/../../admin"),
    "encoded traversal in the user id": ("POST", "/portfolios/..%2F..%2Fadmin/transactions"),
    "unicode user id": ("POST", "/portfolios/\u00fcser-\u2603/transactions"),
    "NUL in the user id": ("GET", "/portfolios/user\u0000admin"),
    "traversal in the transaction id": ("DELETE", "/portfolios/{user}/transactions/..%2F..%2Fx"),
    "overlong user id": ("GET", "/portfolios/" + "u" * 5_000),
}


def assert_error_shape(answer: ApiResponse) -> None:
    assert 400 <= answer.status < 500, (answer.status, answer.raw_body[:300])
    error = answer.json["error"]
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]


@pytest.fixture(scope="module")
def table_names(moto_endpoint: str) -> dict[str, str]:
    """One set of tables for the module: every test writes under its own user id."""
    suffix = uuid.uuid4().hex[:8]
    names = {"PortfolioTable": f"portfolio-{suffix}"}
    create_tables(boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1"), names)
    return names


@dataclass(frozen=True)
class Holder:
    """A user with one stored buy, and what was stored for it before the hostile request."""

    user_id: str
    items: list[dict[str, Any]]

    def assert_unchanged(self) -> None:
        assert partition_items(self.user_id) == self.items, "the stored portfolio changed"


@pytest.fixture(scope="module")
def recorded_users() -> dict[str, str]:
    return {}


@pytest.fixture
def holder(function_env: FunctionEnv, coins_api: CoinsApiServer, recorded_users: dict[str, str]) -> Holder:
    """One user of the module with one stored buy (recorded by the first test), as it is right now."""
    function_env(PRICE_MAX_ATTEMPTS="1", **NO_RATE_LIMITS)
    coins_api.set_price(f"ethereum:{TOKEN}", "10")
    if "holder" not in recorded_users:
        user_id = f"hostile-{uuid.uuid4().hex[:10]}"
        answer = call_api("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=buy("tx-1", TOKEN, "2"))
        assert answer.status == 201
        recorded_users["holder"] = user_id
    return Holder(recorded_users["holder"], partition_items(recorded_users["holder"]))


def post_raw(user_id: str, body: str | bytes) -> ApiResponse:
    event = http_event("POST", f"/portfolios/{user_id}/transactions", sub=user_id, body="{}")
    if isinstance(body, bytes):
        event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    else:
        event["body"] = body
    return invoke_api(event)


@pytest.mark.parametrize("body", list(HOSTILE_BODIES.values()), ids=list(HOSTILE_BODIES))
def test_given_a_hostile_body_when_posted_then_a_clear_4xx_and_nothing_is_stored(holder: Holder, body: Any) -> None:
    answer = post_raw(holder.user_id, body)

    assert_error_shape(answer)
    holder.assert_unchanged()


@pytest.mark.parametrize("request_line", HOSTILE_PATHS.values(), ids=HOSTILE_PATHS.keys())
def test_given_a_hostile_path_when_requested_then_a_clear_4xx_and_nothing_is_stored(
    holder: Holder, request_line: tuple[str, str]
) -> None:
    method, path = request_line
    path = path.replace("{user}", holder.user_id)
    owner = path.split("/")[2]
    answer = call_api(method, path, sub=owner, body=VALID if method == "POST" else None)

    assert_error_shape(answer)
    holder.assert_unchanged()


@pytest.mark.parametrize("amount", ["0.30000000000000000001", "1234567890.123456789012345678901"])
def test_given_an_amount_as_a_json_number_beyond_float_precision_when_posted_then_it_is_kept_digit_for_digit(
    function_env: FunctionEnv, coins_api: CoinsApiServer, user_id: str, amount: str
) -> None:
    function_env(PRICE_MAX_ATTEMPTS="1")
    coins_api.set_price(f"ethereum:{TOKEN}", "10")

    answer = post_raw(user_id, body_with(amount=amount))

    # Refusing it would be fair; rounding it through a float would not.
    if answer.status >= 400:
        assert_error_shape(answer)
        assert partition_items(user_id) == []
    else:
        assert Decimal(answer.json["transactions"][0]["amount"]) == Decimal(amount)


schema = schemathesis.openapi.from_dict(openapi_document())


@pytest.fixture
def wsgi_app(function_env: FunctionEnv) -> LambdaWsgiApp:
    function_env(PRICE_MAX_ATTEMPTS="1", **NO_RATE_LIMITS)
    return LambdaWsgiApp(load_handler("ApiFunction"))


@pytest.mark.parametrize("operation", operations_of(schema), ids=lambda operation: operation.label)
def test_given_generated_valid_and_invalid_requests_when_sent_then_no_5xx_and_every_4xx_has_the_error_shape(
    operation: Any, wsgi_app: LambdaWsgiApp
) -> None:
    def send(case: Any) -> None:
        response = case.call(app=wsgi_app)

        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            error = response.json()["error"]
            assert isinstance(error["code"], str) and isinstance(error["message"], str)

    send_generated(operation, send, max_examples=10, modes=(GenerationMode.POSITIVE, GenerationMode.NEGATIVE))


def test_given_a_buy_worth_more_than_30_digits_when_posted_then_reads_still_answer_with_its_exact_value(
    function_env: FunctionEnv, coins_api: CoinsApiServer, user_id: str
) -> None:
    function_env(PRICE_MAX_ATTEMPTS="1")
    coins_api.set_price(f"ethereum:{TOKEN}", "10")

    # When: 10^29 units at 10 USD (a value of 31 integer digits)
    answer = call_api(
        "POST", f"/portfolios/{user_id}/transactions", sub=user_id, body=buy("tx-huge", TOKEN, "1" + "0" * 29)
    )

    # Then: refused with nothing stored, or stored and shown exactly; never a portfolio that cannot be read
    read = call_api("GET", f"/portfolios/{user_id}", sub=user_id)
    assert read.status == 200
    if answer.status >= 400:
        assert_error_shape(answer)
        assert partition_items(user_id) == []
    else:
        assert Decimal(read.json["totalValueUsd"]) == Decimal(10) ** 30
