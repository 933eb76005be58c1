"""The published OpenAPI document is the one the routes generate, and the handler honours it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from portfolio.api.openapi import openapi_document, render
from portfolio.settings import Settings

from local_stack.functions import load_handler
from tests.integration.api.conftest import Call
from tests.support.lambda_wsgi import LambdaWsgiApp

PUBLISHED = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"


def test_given_the_routes_when_generating_the_document_then_docs_openapi_json_is_up_to_date() -> None:
    assert PUBLISHED.read_text() == render(), "run `make openapi` and commit docs/openapi.json"


def test_given_the_document_when_reading_it_then_every_portfolio_route_requires_a_bearer_token() -> None:
    document = json.loads(PUBLISHED.read_text())

    for path, operations in document["paths"].items():
        for operation in operations.values():
            assert ("security" in operation) is (path != "/health"), path


schema = schemathesis.openapi.from_dict(openapi_document())


@pytest.fixture
def wsgi_app(call: Call, no_rate_limits: Settings) -> LambdaWsgiApp:
    # Generated cases repeat a few user ids many times over: with the per-user limits most would be 429s.
    return LambdaWsgiApp(load_handler("ApiFunction"))


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_given_generated_requests_when_sent_then_no_5xx_and_every_error_has_the_error_shape(
    case: Any, wsgi_app: LambdaWsgiApp
) -> None:
    response = case.call(app=wsgi_app)

    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, body
        assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)
    elif response.status_code != 304:
        case.validate_response(response, checks=[schemathesis.checks.response_schema_conformance])
