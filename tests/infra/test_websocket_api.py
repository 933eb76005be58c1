"""The WebSocket API of live updates: its routes and authorizer, the functions behind them on their
aliases, and least privilege: only the functions that push may manage connections, of this API only."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.sam import FUNCTIONS, Stack, actions_granted, allows

ACCOUNT_PREFIX = "arn:aws:execute-api:us-east-1:123456789012"
PUSHERS = ("ApiFunction", "PriceUpdaterFunction")
CALLBACK_URL = {"Fn::Sub": "https://${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}"}


def _routes(stack: Stack) -> dict[str, dict[str, Any]]:
    return {
        route["RouteKey"]: route
        for route in stack.of_type("AWS::ApiGatewayV2::Route").values()
        if route["ApiId"] == {"Ref": "WebSocketApi"}
    }


def _alias_of(uri: dict[str, Any]) -> str:
    return uri["Fn::Sub"][1]["Alias"]["Ref"]


def test_given_the_websocket_api_then_messages_are_routed_by_their_action(stack: Stack):
    api = stack.properties("WebSocketApi")

    assert api["ProtocolType"] == "WEBSOCKET"
    assert api["RouteSelectionExpression"] == "$request.body.action"


def test_given_the_routes_then_connect_alone_is_authorized_and_all_reach_the_connections_function(stack: Stack):
    routes = _routes(stack)

    assert set(routes) == {"$connect", "$disconnect", "ping"}
    assert routes["$connect"]["AuthorizationType"] == "CUSTOM"
    assert routes["$connect"]["AuthorizerId"] == {"Ref": "WebSocketTokenAuthorizer"}
    assert all(route.get("AuthorizationType", "NONE") == "NONE" for key, route in routes.items() if key != "$connect")
    assert all(
        route["Target"] == {"Fn::Sub": "integrations/${WebSocketConnectionsIntegration}"} for route in routes.values()
    )
    integration = stack.properties("WebSocketConnectionsIntegration")
    assert integration["IntegrationType"] == "AWS_PROXY"
    assert _alias_of(integration["IntegrationUri"]) == "WebSocketConnectionsFunctionAliaslive"


def test_given_ping_then_its_answer_goes_back_to_the_client(stack: Stack):
    ping = _routes(stack)["ping"]
    (response,) = [
        response
        for response in stack.of_type("AWS::ApiGatewayV2::RouteResponse").values()
        if response["RouteId"] == {"Ref": "WebSocketPingRoute"}
    ]

    assert ping["RouteResponseSelectionExpression"] == "$default"
    assert response["RouteResponseKey"] == "$default"


def test_given_the_authorizer_then_it_reads_the_token_from_the_query_string_and_runs_the_alias(stack: Stack):
    authorizer = stack.properties("WebSocketTokenAuthorizer")

    assert authorizer["AuthorizerType"] == "REQUEST"
    assert authorizer["IdentitySource"] == ["route.request.querystring.token"]
    assert _alias_of(authorizer["AuthorizerUri"]) == "WebSocketAuthorizerFunctionAliaslive"


def test_given_the_authorizer_then_it_trusts_exactly_the_http_apis_issuer_and_audience(stack: Stack):
    http = stack.properties("HttpApi")["Body"]["components"]["securitySchemes"]["JwtAuthorizer"]
    configuration = http["x-amazon-apigateway-authorizer"]["jwtConfiguration"]
    variables = stack.properties("WebSocketAuthorizerFunction")["Environment"]["Variables"]

    assert variables["JWT_ISSUER"] == configuration["issuer"]
    assert [variables["JWT_AUDIENCE"]] == configuration["audience"]


def test_given_api_gateway_then_it_may_invoke_the_two_aliases_from_this_api_only(stack: Stack):
    permissions = {
        permission["FunctionName"]["Ref"]: permission
        for permission in stack.of_type("AWS::Lambda::Permission").values()
        if permission["FunctionName"]["Ref"].startswith("WebSocket")
    }

    assert set(permissions) == {"WebSocketAuthorizerFunctionAliaslive", "WebSocketConnectionsFunctionAliaslive"}
    assert all(permission["Principal"] == "apigateway.amazonaws.com" for permission in permissions.values())
    sources = {name: stack.render(permission["SourceArn"]) for name, permission in permissions.items()}
    assert sources["WebSocketAuthorizerFunctionAliaslive"] == (
        f"{ACCOUNT_PREFIX}:WebSocketApi/authorizers/WebSocketTokenAuthorizer"
    )
    assert sources["WebSocketConnectionsFunctionAliaslive"] == f"{ACCOUNT_PREFIX}:WebSocketApi/Stage/*"


def test_given_the_stage_then_it_is_deployed_after_its_routes_and_throttled(stack: Stack):
    stage = stack.properties("WebSocketStage")
    deployment = stack.resources["WebSocketDeployment"]

    assert stage["StageName"] == {"Ref": "Stage"}
    assert stage["DeploymentId"] == {"Ref": "WebSocketDeployment"}
    assert set(deployment["DependsOn"]) >= {"WebSocketConnectRoute", "WebSocketDisconnectRoute", "WebSocketPingRoute"}
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}


@pytest.mark.parametrize("function", PUSHERS)
def test_given_a_function_that_pushes_then_it_knows_the_callback_url_of_this_stage(stack: Stack, function):
    variables = stack.properties(function)["Environment"]["Variables"]

    assert variables["WEBSOCKET_CALLBACK_URL"] == CALLBACK_URL


@pytest.mark.parametrize("function", PUSHERS)
def test_given_a_function_that_pushes_then_it_may_post_to_this_apis_connections_and_nothing_else(
    stack: Stack, function
):
    statements = stack.role_statements(function)

    assert allows(
        statements, "execute-api:ManageConnections", f"{ACCOUNT_PREFIX}:WebSocketApi/Stage/POST/@connections/abc="
    )
    assert not allows(
        statements, "execute-api:ManageConnections", f"{ACCOUNT_PREFIX}:OtherApi/Stage/POST/@connections/a"
    )
    assert not allows(
        statements, "execute-api:ManageConnections", f"{ACCOUNT_PREFIX}:WebSocketApi/other/POST/@connections/a"
    )
    assert not allows(
        statements, "execute-api:ManageConnections", f"{ACCOUNT_PREFIX}:WebSocketApi/Stage/DELETE/@connections/a"
    )
    assert not allows(statements, "execute-api:Invoke", f"{ACCOUNT_PREFIX}:WebSocketApi/Stage/$connect")
    assert [action for action in actions_granted(statements) if action.startswith("execute-api:")] == [
        "execute-api:ManageConnections"
    ]


@pytest.mark.parametrize("function", [function for function in FUNCTIONS if function not in PUSHERS])
def test_given_a_function_that_does_not_push_then_it_has_no_api_gateway_permission(stack: Stack, function):
    actions = list(actions_granted(stack.role_statements(function)))

    assert not [action for action in actions if action.lower().startswith("execute-api:")]


def test_given_the_connections_function_then_it_touches_only_the_connection_partitions(stack: Stack):
    statements = stack.role_statements("WebSocketConnectionsFunction")
    table = stack.arn("PortfolioTable")

    # Given a user's connections partition, then it may count, put and delete connection items
    for action in ("dynamodb:Query", "dynamodb:PutItem", "dynamodb:DeleteItem"):
        assert allows(statements, action, table, leading_keys=["CONN#alice"]), action
    for action in ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"):
        assert not allows(statements, action, table, leading_keys=["CONN#alice"]), action
    # Given the user's own partition (portfolio, transactions, alert rules), then nothing at all: IAM
    # cannot scope a grant by sort key, so a grant there could overwrite or delete any of them
    for action in ("dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:GetItem"):
        assert not allows(statements, action, table, leading_keys=["USER#alice"]), action
        assert not allows(statements, action, table, leading_keys=["CONN#alice", "USER#alice"]), action
    for key in ("TOKENS#0", "PRICE#ethereum:0x0", "RUN#w", "ALERTING#0"):
        assert not allows(statements, "dynamodb:PutItem", table, leading_keys=[key]), key
    assert {action.split(":")[0] for action in actions_granted(statements)} == {"dynamodb", "secretsmanager"}


@pytest.mark.parametrize("function", PUSHERS)
def test_given_a_function_that_pushes_then_it_reads_and_deletes_connections_but_never_puts_one(stack: Stack, function):
    statements = stack.role_statements(function)
    table = stack.arn("PortfolioTable")

    assert allows(statements, "dynamodb:Query", table, leading_keys=["CONN#alice"])
    assert allows(statements, "dynamodb:DeleteItem", table, leading_keys=["CONN#alice"])
    assert not allows(statements, "dynamodb:PutItem", table, leading_keys=["CONN#alice"])
    assert not allows(statements, "dynamodb:UpdateItem", table, leading_keys=["CONN#alice"])


def test_given_the_connection_items_then_their_partition_key_is_the_one_the_grants_name():
    from portfolio.adapters.connection_registry import connection_key

    key = connection_key("user-alice", "L0SM9cOFvHcCIhw=")

    assert key == {"pk": {"S": "CONN#user-alice"}, "sk": {"S": "L0SM9cOFvHcCIhw="}}


@pytest.mark.parametrize("function", [*PUSHERS, "WebSocketConnectionsFunction"])
def test_given_the_connection_cap_then_every_function_that_counts_or_pushes_reads_the_same_parameter(
    stack: Stack, function
):
    variables = stack.properties(function)["Environment"]["Variables"]

    assert variables["MAX_CONNECTIONS_PER_USER"] == {"Ref": "MaxConnectionsPerUser"}


def test_given_the_connection_cap_parameter_then_it_is_bounded_like_the_setting(sam_template):
    from portfolio.settings import Settings

    parameter = sam_template["Parameters"]["MaxConnectionsPerUser"]
    field = Settings.model_fields["max_connections_per_user"]
    bounds = {type(rule).__name__: rule for rule in field.metadata}

    assert parameter["Default"] == field.default
    assert (parameter["MinValue"], parameter["MaxValue"]) == (bounds["Ge"].ge, bounds["Le"].le)


def test_given_the_authorizer_then_it_can_touch_no_data(stack: Stack):
    statements = stack.role_statements("WebSocketAuthorizerFunction")

    assert list(actions_granted(statements)) == []


def test_given_the_outputs_then_the_wss_url_of_the_stage_is_published(sam_template):
    output = sam_template["Outputs"]["WebSocketUrl"]["Value"]

    assert output == {"Fn::Sub": "wss://${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}"}


def test_given_connection_items_then_the_table_expires_them_by_the_attribute_the_registry_writes(stack: Stack):
    from portfolio.adapters.connection_registry import TTL_ATTRIBUTE

    ttl = stack.properties("PortfolioTable")["TimeToLiveSpecification"]

    assert ttl == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
