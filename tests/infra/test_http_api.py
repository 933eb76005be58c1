"""The HTTP API: every route reaches the API function, behind the JWT authorizer except /health."""

from __future__ import annotations

from typing import Any

from tests.infra.sam import PUBLIC_ROUTES, ROUTES, Stack


def _api_body(stack: Stack) -> dict[str, Any]:
    return stack.properties("HttpApi")["Body"]


def _http_api_stage(stack: Stack) -> dict[str, Any]:
    (stage,) = [
        stage for stage in stack.of_type("AWS::ApiGatewayV2::Stage").values() if stage["ApiId"] == {"Ref": "HttpApi"}
    ]
    return stage


def _operations(stack: Stack) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, methods in _api_body(stack)["paths"].items()
        for method, operation in methods.items()
    }


def test_given_the_api_then_it_serves_exactly_the_documented_routes(stack: Stack):
    assert set(_operations(stack)) == ROUTES


def test_given_each_route_then_it_invokes_the_api_function_with_payload_format_2(stack: Stack):
    for route, operation in _operations(stack).items():
        integration = operation["x-amazon-apigateway-integration"]
        assert integration["payloadFormatVersion"] == "2.0", route
        assert "${ApiFunctionAliaslive}" in integration["uri"]["Fn::Sub"], route


def test_given_each_route_except_health_then_a_valid_jwt_is_required(stack: Stack):
    for route, operation in _operations(stack).items():
        expected = [{"NONE": []}] if route in PUBLIC_ROUTES else [{"JwtAuthorizer": []}]
        assert operation["security"] == expected, route


def test_given_the_jwt_authorizer_then_it_trusts_the_given_issuer_or_the_created_user_pool(stack: Stack):
    authorizer = _api_body(stack)["components"]["securitySchemes"]["JwtAuthorizer"]["x-amazon-apigateway-authorizer"]

    assert authorizer["type"] == "jwt"
    assert authorizer["identitySource"] == "$request.header.Authorization"
    issuer = authorizer["jwtConfiguration"]["issuer"]["Fn::If"]
    assert issuer[0] == "CreateUserPool"
    assert issuer[2] == {"Ref": "JwtIssuer"}
    assert authorizer["jwtConfiguration"]["audience"] == [
        {"Fn::If": ["CreateUserPool", {"Ref": "UserPoolClient"}, {"Ref": "JwtAudience"}]}
    ]


def test_given_no_issuer_parameter_then_a_user_pool_and_client_are_created(stack: Stack, sam_template):
    assert sam_template["Conditions"]["CreateUserPool"] == {"Fn::Equals": [{"Ref": "JwtIssuer"}, ""]}
    assert stack.resources["UserPool"]["Condition"] == "CreateUserPool"
    assert stack.resources["UserPoolClient"]["Condition"] == "CreateUserPool"


def test_given_the_stage_then_every_route_is_throttled_and_access_logged_with_a_retention(stack: Stack):
    stage = _http_api_stage(stack)

    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    log_group = stage["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    assert stack.properties(log_group)["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_given_the_access_log_format_then_it_never_records_request_headers(stack: Stack):
    stage = _http_api_stage(stack)

    log_format = stage["AccessLogSettings"]["Format"]
    assert "$context.requestId" in log_format
    assert "header" not in log_format.lower()
    assert "authorization" not in log_format.lower()
