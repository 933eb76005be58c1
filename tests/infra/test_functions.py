"""Each function is wired the way its code expects: handler, runtime, layer, logs and settings."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from portfolio.observability import METRICS_NAMESPACE, SERVICE_NAME
from portfolio.settings import Settings

from tests.infra.intrinsics import STACK_NAME
from tests.infra.sam import FUNCTIONS, Stack, allows

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_ALIASES = {field.alias for field in Settings.model_fields.values()}
POWERTOOLS_VARIABLES = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"}

# What each function's code reads from Settings, beyond STAGE (set for every function).
EXPECTED_SETTINGS = {
    "CacheInvalidatorFunction": {
        "TABLE_NAME",
        "REDIS_URL",
        "REDIS_CLUSTER_MODE",
        "REDIS_USERNAME",
        "REDIS_PASSWORD_SECRET_ARN",
    },
    "ApiFunction": {
        "TABLE_NAME",
        "REDIS_URL",
        "REDIS_CLUSTER_MODE",
        "REDIS_USERNAME",
        "REDIS_PASSWORD_SECRET_ARN",
        "PORTFOLIO_CACHE_TTL_SECONDS",
        "TRANSACTIONS_CACHE_TTL_SECONDS",
        "PRICES_API_URL",
        "PRICE_BATCH_SIZE",
        "CURSOR_SIGNING_KEY_SECRET_ID",
        "ADMIN_SCOPE",
        "MAX_TRANSACTIONS_PER_REQUEST",
        "MAX_TRANSACTIONS_PER_USER",
        "MAX_TOKENS_PER_USER",
        "MAX_WALLETS_PER_USER",
        "MAX_ALERT_RULES_PER_USER",
        "REFRESH_INTERVAL_SECONDS",
        "RPC_URLS_SECRET_ARN",
        "WALLET_START_BLOCKS",
        "WEBSOCKET_CALLBACK_URL",
        "MAX_CONNECTIONS_PER_USER",
    },
    "RefreshSchedulerFunction": {
        "TABLE_NAME",
        "REFRESH_QUEUE_URL",
        "USERS_PER_MESSAGE",
        "REFRESH_INTERVAL_SECONDS",
        "ACTIVE_USER_HOURS",
        "IDLE_REFRESH_EVERY_CYCLES",
        "REDIS_URL",
        "REDIS_CLUSTER_MODE",
        "REDIS_USERNAME",
        "REDIS_PASSWORD_SECRET_ARN",
        "PRICES_API_URL",
        "PRICE_BATCH_SIZE",
    },
    "PriceUpdaterFunction": {
        "TABLE_NAME",
        "REDIS_URL",
        "REDIS_CLUSTER_MODE",
        "REDIS_USERNAME",
        "REDIS_PASSWORD_SECRET_ARN",
        "PORTFOLIO_CACHE_TTL_SECONDS",
        "PRICES_API_URL",
        "PRICE_BATCH_SIZE",
        "REFRESH_INTERVAL_SECONDS",
        "MAX_TRANSACTIONS_PER_USER",
        "MAX_TOKENS_PER_USER",
        "RPC_URLS_SECRET_ARN",
        "WALLET_START_BLOCKS",
        "ALERT_EVENT_BUS_NAME",
        "WEBSOCKET_CALLBACK_URL",
        "MAX_CONNECTIONS_PER_USER",
    },
    "WebSocketAuthorizerFunction": {"JWT_ISSUER", "JWT_AUDIENCE"},
    "WebSocketConnectionsFunction": {
        "TABLE_NAME",
        "REDIS_URL",
        "REDIS_CLUSTER_MODE",
        "REDIS_USERNAME",
        "REDIS_PASSWORD_SECRET_ARN",
        "MAX_CONNECTIONS_PER_USER",
    },
}


def _variables(stack: Stack, function: str) -> dict[str, object]:
    return stack.properties(function)["Environment"]["Variables"]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_given_a_function_when_lambda_loads_its_handler_then_the_file_defines_lambda_handler(
    stack, sam_template, function
):
    # Given the handler the template names (module.attribute inside CodeUri)
    source = sam_template["Resources"][function]["Properties"]
    module, attribute = stack.properties(function)["Handler"].rsplit(".", 1)
    handler_file = ROOT / source["CodeUri"] / f"{module}.py"

    # Then that file exists and defines the attribute at module level
    assert handler_file.is_file(), f"{function}: {handler_file.relative_to(ROOT)} is missing"
    tree = ast.parse(handler_file.read_text())
    defined = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    defined |= {
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert attribute in defined


@pytest.mark.parametrize("function", FUNCTIONS)
def test_given_a_function_then_it_runs_python312_on_arm64_with_the_shared_layer_and_active_tracing(stack, function):
    properties = stack.properties(function)
    layers = stack.of_type("AWS::Lambda::LayerVersion")

    assert properties["Runtime"] == "python3.12"
    assert properties["Architectures"] == ["arm64"]
    assert properties["TracingConfig"] == {"Mode": "Active"}
    assert [layer["Ref"] for layer in properties["Layers"]] == list(layers)
    (layer,) = layers.values()
    assert layer["CompatibleRuntimes"] == ["python3.12"]
    assert layer["CompatibleArchitectures"] == ["arm64"]


def test_given_the_layer_when_sam_builds_it_then_it_installs_the_shared_package_for_python312(sam_template):
    layer = sam_template["Resources"]["SharedLayer"]

    assert layer["Metadata"]["BuildMethod"] == "python3.12"
    assert (ROOT / layer["Properties"]["ContentUri"] / "portfolio" / "__init__.py").is_file()
    assert (ROOT / layer["Properties"]["ContentUri"] / "requirements.txt").is_file()


@pytest.mark.parametrize("function", FUNCTIONS)
def test_given_a_function_then_it_logs_to_its_own_log_group_with_a_retention(stack, function):
    log_group = stack.properties(function)["LoggingConfig"]["LogGroup"]["Ref"]

    group = stack.properties(log_group)
    assert stack.resources[log_group]["Type"] == "AWS::Logs::LogGroup"
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert stack.render(group["LogGroupName"]).startswith("/aws/lambda/")


@pytest.mark.parametrize("function", FUNCTIONS)
def test_given_a_function_when_it_reads_settings_then_every_variable_it_gets_is_a_setting(stack, function):
    names = set(_variables(stack, function)) - POWERTOOLS_VARIABLES

    unknown = names - SETTINGS_ALIASES
    assert unknown == set(), f"{function} sets variables no setting reads: {sorted(unknown)}"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_given_a_function_then_it_gets_exactly_the_settings_its_code_needs(stack, function):
    names = set(_variables(stack, function)) - POWERTOOLS_VARIABLES - {"STAGE"}

    assert names == EXPECTED_SETTINGS[function]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_given_powertools_variables_then_metrics_land_where_the_alarms_look(stack, function):
    variables = _variables(stack, function)

    assert variables["POWERTOOLS_SERVICE_NAME"] == SERVICE_NAME
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == METRICS_NAMESPACE


@pytest.mark.parametrize("function", ["ApiFunction", "PriceUpdaterFunction"])
def test_given_a_function_using_redis_then_it_speaks_tls_in_cluster_mode_to_the_serverless_cache(stack, function):
    variables = _variables(stack, function)

    assert variables["REDIS_URL"] == {"Fn::Sub": "rediss://${Cache.Endpoint.Address}:${Cache.Endpoint.Port}"}
    assert variables["REDIS_CLUSTER_MODE"] == "true"
    assert stack.resources["Cache"]["Type"] == "AWS::ElastiCache::ServerlessCache"


def test_given_the_cursor_key_then_the_api_is_given_its_generated_secret_by_arn_and_may_read_only_that(stack):
    # In the home region; tests/infra/test_regions.py has the other region, where it is read by name.
    variables = stack.deployment.choose(_variables(stack, "ApiFunction"))
    secret = stack.arn("CursorSigningKeySecret")

    assert variables["CURSOR_SIGNING_KEY_SECRET_ID"] == {"Ref": "CursorSigningKeySecret"}
    assert "CURSOR_SIGNING_KEY" not in variables
    assert "GenerateSecretString" in stack.properties("CursorSigningKeySecret")
    statements = stack.role_statements("ApiFunction")
    reading = [statement for statement in statements if allows([statement], "secretsmanager:GetSecretValue", secret)]
    (statement,) = reading
    assert statement["Action"] == "secretsmanager:GetSecretValue"
    assert not allows(reading, "secretsmanager:GetSecretValue", "RpcUrlsSecretArn")
    assert not allows(statements, "secretsmanager:GetSecretValue", secret.replace(STACK_NAME, "another-stack"))


@pytest.mark.parametrize("function", FUNCTIONS)
def test_given_a_function_then_no_secret_value_is_resolved_into_its_environment(stack, function):
    # Anyone allowed lambda:GetFunctionConfiguration reads the environment: it may name secrets, never hold them.
    assert "resolve:secretsmanager" not in json.dumps(_variables(stack, function))


def test_given_the_table_variables_then_they_name_the_template_tables(stack):
    # By name, not by Ref: outside the home region the stack has no table resource, only its replica.
    table_name = stack.properties("PortfolioTable")["TableName"]
    named = {
        function: variables["TABLE_NAME"]
        for function in FUNCTIONS
        if "TABLE_NAME" in (variables := _variables(stack, function))
    }

    assert {"ApiFunction", "RefreshSchedulerFunction"} <= set(named)
    assert set(map(json.dumps, named.values())) == {json.dumps(table_name)}
    assert _variables(stack, "RefreshSchedulerFunction")["REFRESH_QUEUE_URL"] == {"Ref": "RefreshQueue"}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_given_a_function_then_it_runs_in_the_private_subnets_behind_the_lambda_security_group(stack, function):
    vpc = stack.properties(function)["VpcConfig"]

    assert vpc["SecurityGroupIds"] == [{"Ref": "LambdaSecurityGroup"}]
    assert vpc["SubnetIds"]["Fn::If"][0] == "CreateVpc"
    assert vpc["SubnetIds"]["Fn::If"][1] == [{"Ref": "PrivateSubnetA"}, {"Ref": "PrivateSubnetB"}]


def test_given_the_cache_security_group_then_only_the_functions_reach_it_on_6379(stack):
    ingress = stack.properties("CacheSecurityGroup")["SecurityGroupIngress"]

    assert ingress == [
        {
            "Description": ingress[0]["Description"],
            "IpProtocol": "tcp",
            "FromPort": 6379,
            "ToPort": 6379,
            "SourceSecurityGroupId": {"Fn::GetAtt": ["LambdaSecurityGroup", "GroupId"]},
        }
    ]
