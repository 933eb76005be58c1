"""The local HTTP API turns requests into the events API Gateway sends, and handler results back."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from local_stack.api_routes import api_routes
from local_stack.http_events import IncomingRequest, http_api_event, http_response, match_route
from local_stack.jwt_auth import AuthorizedCaller
from local_stack.scheduler import scheduled_event

ROUTES = api_routes()


def test_the_routes_are_the_ones_the_template_declares_with_only_health_public():
    # Given template.yaml, When its ApiFunction routes are read
    routes = {route.route_key: route.authorized for route in ROUTES}

    # Then they are the API's routes, and only /health skips the JWT authorizer
    assert routes == {
        "GET /health": False,
        "GET /portfolios/{userId}": True,
        "GET /portfolios/{userId}/assets": True,
        "GET /portfolios/{userId}/performance": True,
        "GET /portfolios/{userId}/transactions": True,
        "POST /portfolios/{userId}/transactions": True,
        "DELETE /portfolios/{userId}/transactions/{transactionId}": True,
        "PUT /portfolios/{userId}/settings": True,
        "POST /portfolios/{userId}/wallets": True,
        "GET /portfolios/{userId}/wallets": True,
        "DELETE /portfolios/{userId}/wallets/{walletId}": True,
        "POST /portfolios/{userId}/wallets/{walletId}/sync": True,
        "POST /portfolios/{userId}/alerts": True,
        "GET /portfolios/{userId}/alerts": True,
        "DELETE /portfolios/{userId}/alerts/{alertId}": True,
    }


@pytest.mark.parametrize(
    ("method", "path", "route_key", "parameters"),
    [
        ("GET", "/health", "GET /health", {}),
        ("GET", "/portfolios/alice", "GET /portfolios/{userId}", {"userId": "alice"}),
        ("get", "/portfolios/a%40b.c/assets", "GET /portfolios/{userId}/assets", {"userId": "a@b.c"}),
        (
            "DELETE",
            "/portfolios/alice/transactions/tx-1",
            "DELETE /portfolios/{userId}/transactions/{transactionId}",
            {"userId": "alice", "transactionId": "tx-1"},
        ),
    ],
)
def test_a_request_lands_on_its_route_with_decoded_path_parameters(method, path, route_key, parameters):
    # When the path is matched
    match = match_route(method, path, ROUTES)

    # Then the route and its parameters are the ones API Gateway would pick
    assert match is not None
    assert match.route.route_key == route_key
    assert match.path_parameters == parameters


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nowhere"),
        ("POST", "/portfolios/alice"),  # a known path with a method it does not declare
        ("GET", "/portfolios/alice/"),  # HTTP APIs do not ignore a trailing slash
        ("GET", "/portfolios//assets"),  # an empty path parameter matches nothing
        ("GET", "/portfolios/alice/assets/extra"),
    ],
)
def test_requests_no_route_declares_match_nothing(method, path):
    assert match_route(method, path, ROUTES) is None


def _event_for(request: IncomingRequest, caller: AuthorizedCaller | None = None) -> dict:
    match = match_route(request.method, request.raw_path, ROUTES)
    assert match is not None
    return http_api_event(request, match, caller, now=datetime(2025, 1, 15, 12, 30, 5, tzinfo=UTC), request_id="req-1")


def test_an_authorized_get_becomes_a_payload_2_event_with_claims_query_headers_and_cookies():
    # Given a GET with repeated headers, repeated query keys and cookies, from a verified caller
    request = IncomingRequest(
        method="GET",
        raw_path="/portfolios/alice/assets",
        raw_query="chain=ethereum&chain=base&sort=value",
        headers=[
            ("Host", "127.0.0.1:3000"),
            ("User-Agent", "curl/8.5"),
            ("X-Trace", "a"),
            ("x-trace", "b"),
            ("Cookie", "theme=dark; lang=en"),
            ("Authorization", "Bearer token-text"),
        ],
        source_ip="127.0.0.1",
    )
    caller = AuthorizedCaller(claims={"sub": "alice", "scope": "portfolio/admin"}, scopes=["portfolio/admin"])

    # When it is translated
    event = _event_for(request, caller)

    # Then it has the shape API Gateway's HTTP API gives a Lambda integration
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /portfolios/{userId}/assets"
    assert event["rawPath"] == "/portfolios/alice/assets"
    assert event["rawQueryString"] == "chain=ethereum&chain=base&sort=value"
    assert event["queryStringParameters"] == {"chain": "ethereum,base", "sort": "value"}
    assert event["pathParameters"] == {"userId": "alice"}
    assert event["headers"]["x-trace"] == "a,b"
    assert event["headers"]["user-agent"] == "curl/8.5"
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["theme=dark", "lang=en"]
    assert event["isBase64Encoded"] is False
    assert "body" not in event
    context = event["requestContext"]
    assert context["http"] == {
        "method": "GET",
        "path": "/portfolios/alice/assets",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "curl/8.5",
    }
    assert context["requestId"] == "req-1"
    assert context["routeKey"] == event["routeKey"]
    assert context["stage"] == "$default"
    assert context["time"] == "15/Jan/2025:12:30:05 +0000"
    assert context["timeEpoch"] == 1736944205000
    assert context["authorizer"]["jwt"] == {
        "claims": {"sub": "alice", "scope": "portfolio/admin"},
        "scopes": ["portfolio/admin"],
    }


def test_a_json_body_arrives_as_text_and_a_binary_one_base64_encoded():
    # Given a JSON POST and a binary POST
    json_request = IncomingRequest(
        "POST", "/portfolios/alice/transactions", headers=[("Content-Type", "application/json")], body=b'{"a":"1"}'
    )
    binary = bytes(range(256))
    binary_request = IncomingRequest(
        "POST", "/portfolios/alice/transactions", headers=[("Content-Type", "application/octet-stream")], body=binary
    )

    # When both are translated
    json_event, binary_event = _event_for(json_request), _event_for(binary_request)

    # Then the JSON is passed as is, the bytes as base64, each flagged accordingly
    assert json_event["body"] == '{"a":"1"}'
    assert json_event["isBase64Encoded"] is False
    assert base64.b64decode(binary_event["body"]) == binary
    assert binary_event["isBase64Encoded"] is True


def test_a_public_route_event_carries_no_authorizer():
    event = _event_for(IncomingRequest("GET", "/health"))

    assert "authorizer" not in event["requestContext"]
    assert "pathParameters" not in event


def test_a_handler_result_becomes_its_status_headers_cookies_and_body():
    # Given a payload 2.0 result with headers and cookies
    result = {
        "statusCode": 201,
        "headers": {"Content-Type": "application/json", "Cache-Control": "no-store"},
        "cookies": ["a=1; Path=/", "b=2"],
        "body": '{"ok":true}',
        "isBase64Encoded": False,
    }

    # When it is turned into the HTTP answer
    response = http_response(result)

    # Then everything the handler said reaches the client
    assert response.status == 201
    assert response.header("cache-control") == "no-store"
    assert [value for name, value in response.headers if name == "Set-Cookie"] == ["a=1; Path=/", "b=2"]
    assert json.loads(response.body) == {"ok": True}


def test_a_base64_result_is_decoded_and_a_bare_value_becomes_a_200_json_answer():
    binary = http_response({"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True})
    bare = http_response({"status": "ok"})

    assert binary.body == b"\x00\x01"
    assert bare.status == 200
    assert bare.header("content-type") == "application/json"
    assert json.loads(bare.body) == {"status": "ok"}


def test_a_result_with_a_broken_status_code_is_api_gateways_500():
    response = http_response({"statusCode": "not a number", "body": "x"})

    assert response.status == 500
    assert json.loads(response.body) == {"message": "Internal Server Error"}


def test_the_scheduled_event_is_one_powertools_reads_as_eventbridges():
    # Given the event the local schedule sends at 10:04:59
    event = scheduled_event(datetime(2025, 1, 15, 10, 4, 59, tzinfo=UTC), region="eu-west-1")

    # When the scheduler function's parser reads it
    parsed = parse(event=event, model=EventBridgeModel)

    # Then it is a scheduled event at that time, from a schedule rule
    assert parsed.detail_type == "Scheduled Event"
    assert parsed.source == "aws.events"
    assert parsed.time == datetime(2025, 1, 15, 10, 4, 59, tzinfo=UTC)
    assert parsed.region == "eu-west-1"
    assert parsed.resources[0].startswith("arn:aws:events:eu-west-1:")
