"""Several regions: the home region's stack owns the global table (and its replicas), the cursor key
secret and the refresh; a stack of the same name in another region serves the API from its replica,
reads its replica's stream and the replicated secret by name, and leaves the refresh to the home region.
Route 53 may send one custom domain to the nearest healthy region."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from tests.infra.intrinsics import ACCOUNT, STACK_NAME, Deployment
from tests.infra.sam import FUNCTIONS, SECRET_SUFFIX, Stack, allows, table_resources_granted
from tests.infra.samconfig import deploy_environments

HOME, OTHER = "us-east-1", "eu-west-1"
TABLE_NAME = f"{STACK_NAME}-portfolio"
SECRET_NAME = f"{STACK_NAME}/cursor-signing-key"
REPLICA_STREAM = f"arn:aws:dynamodb:{OTHER}:{ACCOUNT}:table/{TABLE_NAME}/stream/2025-02-01T00:00:00.000"
ISSUER = f"https://cognito-idp.{HOME}.amazonaws.com/{HOME}_pool"
# The other region's stack, configured as samconfig.toml's second region is.
OTHER_REGION_PARAMETERS = {
    "HomeRegion": HOME,
    "TableStreamArn": REPLICA_STREAM,
    "JwtIssuer": ISSUER,
    "JwtAudience": "client-id",
}
DOMAIN = {"DomainName": "api.example.com", "HostedZoneId": "Z0123456789ABC"}
CERTIFICATE = f"arn:aws:acm:{OTHER}:{ACCOUNT}:certificate/1234"
CUSTOM_DOMAIN_TYPES = ("AWS::ApiGatewayV2::DomainName", "AWS::ApiGatewayV2::ApiMapping")
REFRESH_ONLY_ALARMS = {"RefreshRunsMissingAlarm", "PriceStalenessAlarm"}


@pytest.fixture(scope="module")
def home(stack: Stack) -> Stack:
    """The home region's stack as samconfig.toml deploys it: HomeRegion names it, with a replica region."""
    return stack.deployed(region=HOME, HomeRegion=HOME, ReplicaRegion=OTHER)


@pytest.fixture(scope="module")
def other(stack: Stack) -> Stack:
    return stack.deployed(region=OTHER, **OTHER_REGION_PARAMETERS)


def _schedule_state(stack: Stack) -> str:
    (rule,) = stack.of_type("AWS::Events::Rule").values()
    return stack.render(rule["State"])


def _variables(stack: Stack, function: str) -> dict[str, Any]:
    return stack.render(stack.properties(function)["Environment"]["Variables"])


# ---------------------------------------------------------------- the global table


def test_given_the_home_region_then_it_alone_creates_the_global_table(stack: Stack, home: Stack, other: Stack):
    table = stack.resources["PortfolioTable"]

    assert table["Type"] == "AWS::DynamoDB::GlobalTable"
    assert table["Condition"] == "IsHomeRegion"
    assert stack.exists("PortfolioTable")  # HomeRegion left empty: this region is the home
    assert home.exists("PortfolioTable")
    assert not other.exists("PortfolioTable")


def test_given_one_region_then_the_table_has_one_replica_here_protected_from_deletion_and_recoverable(stack: Stack):
    replicas = stack.render(stack.properties("PortfolioTable")["Replicas"])

    assert replicas == [
        {
            "Region": HOME,
            "DeletionProtectionEnabled": True,
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        }
    ]


def test_given_a_replica_region_then_the_table_is_replicated_there_with_the_same_protection(home: Stack):
    replicas = home.render(home.properties("PortfolioTable")["Replicas"])

    assert [replica["Region"] for replica in replicas] == [HOME, OTHER]
    for replica in replicas:
        assert replica["DeletionProtectionEnabled"] is True, replica["Region"]
        assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, replica["Region"]


def test_given_the_global_table_then_it_streams_both_images_and_expires_items(stack: Stack):
    properties = stack.properties("PortfolioTable")

    assert properties["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}


def test_given_any_region_then_every_function_names_the_table_the_home_region_created(home: Stack, other: Stack):
    # The same stack name in every region gives every replica, and every function, the same table name.
    assert home.render(home.properties("PortfolioTable")["TableName"]) == TABLE_NAME
    for region_stack in (home, other):
        named = {_variables(region_stack, function).get("TABLE_NAME") for function in FUNCTIONS} - {None}
        assert named == {TABLE_NAME}, region_stack.region
        assert region_stack.render(region_stack.template["Outputs"]["PortfolioTableName"]["Value"]) == TABLE_NAME


@pytest.mark.parametrize("function", FUNCTIONS)
def test_given_another_region_then_a_function_may_use_its_replica_and_not_the_home_regions(other: Stack, function):
    statements = other.role_statements(function)
    replica = f"arn:aws:dynamodb:{OTHER}:{ACCOUNT}:table/{TABLE_NAME}"
    granted = table_resources_granted(statements)

    assert all(resource == replica or resource.startswith(f"{replica}/") for resource in granted), granted
    home_table = replica.replace(f":{OTHER}:", f":{HOME}:")
    assert not allows(statements, "dynamodb:PutItem", home_table, leading_keys=["CONN#alice"])
    assert not allows(statements, "dynamodb:GetRecords", f"{home_table}/stream/2025-02-01T00:00:00.000")


# ---------------------------------------------------------------- outside the home region


def test_given_the_home_region_then_the_invalidator_reads_the_stream_of_the_table_it_created(home: Stack):
    mapping = home.event_source_mapping("PortfolioTable")

    assert home.render(mapping["EventSourceArn"]) == home.render({"Fn::GetAtt": ["PortfolioTable", "StreamArn"]})
    assert mapping["FunctionName"] == {"Ref": "CacheInvalidatorFunctionAliaslive"}


def test_given_another_region_then_the_invalidator_reads_its_replicas_stream_which_its_role_allows(other: Stack):
    mapping = other.event_source_mapping("TableStreamArn")
    statements = other.role_statements("CacheInvalidatorFunction")

    assert other.render(mapping["EventSourceArn"]) == REPLICA_STREAM
    assert mapping["FunctionName"] == {"Ref": "CacheInvalidatorFunctionAliaslive"}
    for action in ("dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:DescribeStream"):
        assert allows(statements, action, REPLICA_STREAM), action
        assert not allows(statements, action, REPLICA_STREAM.replace(TABLE_NAME, "another-table")), action


def test_given_the_home_region_then_the_refresh_schedule_is_enabled(stack: Stack, home: Stack):
    assert _schedule_state(stack) == "ENABLED"
    assert _schedule_state(home) == "ENABLED"


def test_given_another_region_then_the_refresh_schedule_is_disabled(other: Stack):
    # Two schedulers would sweep prices and queue every user twice.
    assert _schedule_state(other) == "DISABLED"


def test_given_another_region_then_the_alarms_on_refresh_runs_do_not_exist_there(home: Stack, other: Stack):
    # Where nothing runs the refresh, "no run for 30 minutes" would be in alarm forever; the replica's
    # lag is watched from the home region, which replicates.
    alarms = set(home.of_type("AWS::CloudWatch::Alarm"))

    assert all(home.exists(alarm) for alarm in alarms)
    assert {alarm for alarm in alarms if not other.exists(alarm)} == REFRESH_ONLY_ALARMS | {"ReplicationLatencyAlarm"}
    assert alarms >= REFRESH_ONLY_ALARMS


def test_given_the_refresh_moved_to_another_region_then_it_runs_there_alone_with_its_alarms(stack: Stack):
    moved_here = stack.deployed(region=OTHER, RefreshRegion=OTHER, **OTHER_REGION_PARAMETERS)
    moved_away = stack.deployed(region=HOME, HomeRegion=HOME, RefreshRegion=OTHER)

    assert (_schedule_state(moved_here), _schedule_state(moved_away)) == ("ENABLED", "DISABLED")
    assert all(moved_here.exists(alarm) for alarm in REFRESH_ONLY_ALARMS)
    assert not any(moved_away.exists(alarm) for alarm in REFRESH_ONLY_ALARMS)


# ---------------------------------------------------------------- rules


def test_given_another_region_without_its_replicas_stream_when_deploying_then_the_rule_says_to_set_it(
    stack: Stack,
):
    parameters = {**OTHER_REGION_PARAMETERS, "TableStreamArn": ""}

    (failure,) = Deployment(stack.template, region=OTHER, **parameters).failed_assertions(
        "ReplicaRegionsNeedTheirStream"
    )

    assert "TableStreamArn" in failure


def test_given_another_region_with_its_own_user_pool_when_deploying_then_the_rule_asks_for_the_home_issuer(
    stack: Stack,
):
    # A pool of its own would sign tokens the home region refuses: one user, two subs.
    parameters = {key: value for key, value in OTHER_REGION_PARAMETERS.items() if not key.startswith("Jwt")}

    (failure,) = Deployment(stack.template, region=OTHER, **parameters).failed_assertions(
        "ReplicaRegionsNeedTheirStream"
    )

    assert "JwtIssuer" in failure


def test_given_another_region_missing_both_when_deploying_then_both_are_reported(stack: Stack):
    failures = Deployment(stack.template, region=OTHER, HomeRegion=HOME).failed_assertions(
        "ReplicaRegionsNeedTheirStream"
    )

    assert len(failures) == 2


@pytest.mark.parametrize(
    ("region", "parameters"),
    [
        (HOME, {}),  # one region
        (HOME, {"HomeRegion": HOME, "ReplicaRegion": OTHER}),  # the home region names itself
        (OTHER, OTHER_REGION_PARAMETERS),
    ],
)
def test_given_a_region_with_what_it_needs_when_deploying_then_the_regions_rule_passes(stack, region, parameters):
    assert (
        Deployment(stack.template, region=region, **parameters).failed_assertions("ReplicaRegionsNeedTheirStream") == []
    )


@pytest.mark.parametrize(
    "parameters",
    [
        {"DomainName": "api.example.com"},
        {"DomainName": "api.example.com", "HostedZoneId": "Z0123456789ABC"},
        {"DomainName": "api.example.com", "CertificateArn": CERTIFICATE},
    ],
)
def test_given_a_domain_without_its_zone_or_certificate_when_deploying_then_the_rule_fails(stack, parameters):
    (failure,) = Deployment(stack.template, **parameters).failed_assertions("CustomDomainNeedsZoneAndCertificate")

    assert "HostedZoneId" in failure
    assert "CertificateArn" in failure


@pytest.mark.parametrize("parameters", [{}, {**DOMAIN, "CertificateArn": CERTIFICATE}])
def test_given_no_domain_or_a_complete_one_when_deploying_then_the_domain_rule_passes(stack, parameters):
    assert Deployment(stack.template, **parameters).failed_assertions("CustomDomainNeedsZoneAndCertificate") == []


# What samconfig.toml's second region holds until someone fills it in, and a value of the real form.
PLACEHOLDER_STREAM = "REPLACE-WITH-LatestStreamArn"
A_STREAM_LABEL = "2026-01-01T00:00:00.000"


def _filled_in(parameters: dict[str, str]) -> dict[str, str]:
    stream = parameters.get("TableStreamArn")
    if stream is None:
        return parameters
    return {**parameters, "TableStreamArn": stream.replace(PLACEHOLDER_STREAM, A_STREAM_LABEL)}


def test_given_the_second_regions_placeholder_stream_then_the_template_refuses_it_before_creating_anything(
    stack: Stack,
):
    # Deployed as it stands (by hand or by CI), the stack would fail half-built on the stream trigger.
    (replica,) = [
        environment for name, environment in deploy_environments().items() if "TableStreamArn" in environment.parameters
    ]
    pattern = stack.template["Parameters"]["TableStreamArn"]["AllowedPattern"]

    assert PLACEHOLDER_STREAM in replica.parameters["TableStreamArn"]
    assert not re.fullmatch(pattern, replica.parameters["TableStreamArn"])
    assert re.fullmatch(pattern, _filled_in(replica.parameters)["TableStreamArn"])


def test_given_samconfigs_prod_regions_then_they_are_one_home_and_its_replica_and_pass_every_rule(stack: Stack):
    prod = [
        replace(environment, parameters=_filled_in(environment.parameters))
        for name, environment in deploy_environments().items()
        if name.startswith("prod")
    ]
    (home,) = [environment for environment in prod if environment.region == environment.parameters.get("HomeRegion")]
    others = [environment for environment in prod if environment is not home]

    assert [environment.region for environment in others] == [home.parameters["ReplicaRegion"]]
    for environment in prod:
        assert environment.stack_name == home.stack_name, environment.name  # the table and secret are found by it
        assert environment.parameters["HomeRegion"] == home.region, environment.name
        deployment = Deployment(stack.template, region=environment.region, **environment.parameters)
        for rule in stack.template["Rules"]:
            assert deployment.failed_assertions(rule) == [], (environment.name, rule)
        for name, value in environment.parameters.items():
            pattern = stack.template["Parameters"][name].get("AllowedPattern")
            assert pattern is None or re.fullmatch(pattern, value), (environment.name, name)
    for environment in others:
        # The stream its invalidator's role may read: this region's replica of this stack's table
        stream = environment.parameters["TableStreamArn"]
        assert f":dynamodb:{environment.region}:" in stream, environment.name
        assert f":table/{environment.stack_name}-portfolio/stream/" in stream, environment.name


# ---------------------------------------------------------------- every reference resolves


def _references(value: Any) -> Iterator[str]:
    """The logical ids a value refers to (Ref, Fn::GetAtt, names in Fn::Sub)."""
    if isinstance(value, list):
        for item in value:
            yield from _references(item)
    elif isinstance(value, dict):
        if set(value) == {"Ref"}:
            yield value["Ref"]
        elif set(value) == {"Fn::GetAtt"}:
            yield value["Fn::GetAtt"][0]
        elif set(value) == {"Fn::Sub"}:
            text, variables = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
            for name in re.findall(r"\$\{([^!}][^}]*)\}", text):
                if name.split(".")[0] not in variables:
                    yield name.split(".")[0]
            yield from _references(variables)
        else:
            for item in value.values():
                yield from _references(item)


def _unresolved(deployed: Stack) -> set[tuple[str, str]]:
    """(where, what) for every reference this deployment's resources and outputs make to something it
    does not create: CloudFormation refuses such a stack before creating anything."""
    template = deployed.template
    known = set(template["Parameters"]) | {name for name in template["Resources"] if deployed.exists(name)}
    pseudo = {"AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::StackName", "AWS::URLSuffix", "AWS::NoValue"}
    pseudo |= {"AWS::StackId", "AWS::NotificationARNs"}
    found = set()
    for name, resource in template["Resources"].items():
        if not deployed.exists(name):
            continue
        chosen = deployed.deployment.choose(resource)
        depends_on = chosen.get("DependsOn", [])
        targets = [*_references(chosen), *(depends_on if isinstance(depends_on, list) else [depends_on])]
        found |= {(name, target) for target in targets}
    for name, output in template.get("Outputs", {}).items():
        if "Condition" not in output or deployed.deployment.condition(output["Condition"]):
            found |= {(name, target) for target in _references(deployed.deployment.choose(output))}
    return {(where, target) for where, target in found if target not in known | pseudo}


@pytest.mark.parametrize(
    ("region", "parameters"),
    [
        (HOME, {}),
        (HOME, {"HomeRegion": HOME, "ReplicaRegion": OTHER, **DOMAIN, "CertificateArn": CERTIFICATE}),
        (OTHER, {**OTHER_REGION_PARAMETERS, **DOMAIN, "CertificateArn": CERTIFICATE}),
        (OTHER, {**OTHER_REGION_PARAMETERS, "RefreshRegion": OTHER}),
    ],
)
def test_given_a_deployment_in_any_region_then_everything_it_refers_to_exists(stack, region, parameters):
    # E.g. another region's stack must not name the table or the secret only the home region creates.
    assert _unresolved(stack.deployed(region=region, **parameters)) == set()


def test_given_a_reference_to_what_a_region_does_not_create_then_the_check_finds_it(stack: Stack):
    template = {
        **stack.template,
        "Outputs": {"Leak": {"Value": {"Fn::GetAtt": ["PortfolioTable", "StreamArn"]}}},
    }

    assert _unresolved(Stack(template, region=OTHER, **OTHER_REGION_PARAMETERS)) == {("Leak", "PortfolioTable")}


# ---------------------------------------------------------------- the custom domain


def _custom_domain_resources(stack: Stack) -> set[str]:
    return {
        name
        for name, resource in stack.resources.items()
        if resource["Type"] in CUSTOM_DOMAIN_TYPES or resource["Type"].startswith("AWS::Route53::")
    }


def test_given_no_domain_then_no_domain_or_dns_resource_is_created(stack: Stack):
    resources = _custom_domain_resources(stack)

    assert resources == {"HttpApiDomainName", "HttpApiDomainMapping", "HttpApiHealthCheck", "HttpApiLatencyRecord"}
    assert {stack.resources[name]["Condition"] for name in resources} == {"HasCustomDomain"}
    assert not any(stack.exists(name) for name in resources)
    assert stack.template["Outputs"]["CustomDomainUrl"]["Condition"] == "HasCustomDomain"


def test_given_a_domain_then_this_regions_api_answers_it_over_tls_with_the_given_certificate(stack: Stack):
    deployed = stack.deployed(region=OTHER, **OTHER_REGION_PARAMETERS, **DOMAIN, CertificateArn=CERTIFICATE)
    domain = deployed.render(deployed.properties("HttpApiDomainName"))
    mapping = deployed.properties("HttpApiDomainMapping")

    assert all(deployed.exists(name) for name in _custom_domain_resources(stack))
    assert domain["DomainName"] == DOMAIN["DomainName"]
    assert domain["DomainNameConfigurations"] == [
        {"CertificateArn": CERTIFICATE, "EndpointType": "REGIONAL", "SecurityPolicy": "TLS_1_2"}
    ]
    assert (mapping["ApiId"], mapping["DomainName"], mapping["Stage"]) == (
        {"Ref": "HttpApi"},
        {"Ref": "HttpApiDomainName"},
        "$default",
    )


def test_given_a_domain_in_each_region_then_route_53_answers_with_the_nearest_healthy_one(stack: Stack):
    deployed = stack.deployed(region=OTHER, **OTHER_REGION_PARAMETERS, **DOMAIN, CertificateArn=CERTIFICATE)
    record = deployed.properties("HttpApiLatencyRecord")

    assert deployed.render(record["Name"]) == DOMAIN["DomainName"]
    assert deployed.render(record["HostedZoneId"]) == DOMAIN["HostedZoneId"]
    assert record["Type"] == "A"
    # A latency record per region, told apart by its region
    assert deployed.render(record["Region"]) == OTHER
    assert deployed.render(record["SetIdentifier"]) == OTHER
    assert record["HealthCheckId"] == {"Ref": "HttpApiHealthCheck"}
    assert record["AliasTarget"] == {
        "DNSName": {"Fn::GetAtt": ["HttpApiDomainName", "RegionalDomainName"]},
        "HostedZoneId": {"Fn::GetAtt": ["HttpApiDomainName", "RegionalHostedZoneId"]},
        "EvaluateTargetHealth": True,
    }


def test_given_the_health_check_then_it_asks_this_regions_api_for_its_public_health_route(stack: Stack):
    deployed = stack.deployed(region=OTHER, **OTHER_REGION_PARAMETERS, **DOMAIN, CertificateArn=CERTIFICATE)
    check = deployed.render(deployed.properties("HttpApiHealthCheck")["HealthCheckConfig"])
    routes = deployed.properties("HttpApi")["Body"]["paths"]

    assert check["Type"] == "HTTPS"
    assert check["FullyQualifiedDomainName"] == f"HttpApi.execute-api.{OTHER}.amazonaws.com"
    assert check["ResourcePath"] == "/health"
    # Route 53's checkers carry no token: the route must answer without one
    assert routes["/health"]["get"]["security"] == [{"NONE": []}]


# ---------------------------------------------------------------- the cursor signing key


def test_given_the_home_region_then_it_creates_the_key_under_the_stack_wide_name(stack: Stack, home: Stack):
    secret = stack.resources["CursorSigningKeySecret"]

    assert secret["Condition"] == "IsHomeRegion"
    assert home.exists("CursorSigningKeySecret")
    assert home.render(secret["Properties"]["Name"]) == SECRET_NAME
    assert "GenerateSecretString" in secret["Properties"]


def test_given_a_replica_region_then_the_key_is_replicated_there(stack: Stack, home: Stack):
    assert home.deployment.choose(home.properties("CursorSigningKeySecret"))["ReplicaRegions"] == [
        {"Region": {"Ref": "ReplicaRegion"}}
    ]
    assert home.render(home.properties("CursorSigningKeySecret")["ReplicaRegions"]) == [{"Region": OTHER}]
    assert "ReplicaRegions" not in stack.deployment.choose(stack.properties("CursorSigningKeySecret"))


def test_given_another_region_then_the_api_reads_the_replicated_key_by_name_and_may_read_only_it(other: Stack):
    statements = other.role_statements("ApiFunction")
    replica = f"arn:aws:secretsmanager:{OTHER}:{ACCOUNT}:secret:{SECRET_NAME}-{SECRET_SUFFIX}"

    assert not other.exists("CursorSigningKeySecret")
    assert _variables(other, "ApiFunction")["CURSOR_SIGNING_KEY_SECRET_ID"] == SECRET_NAME
    assert allows(statements, "secretsmanager:GetSecretValue", replica)
    for elsewhere in (
        replica.replace(STACK_NAME, "another-stack"),
        replica.replace(f":{OTHER}:", f":{HOME}:"),
        replica.replace(f":{ACCOUNT}:", ":210987654321:"),
        f"arn:aws:secretsmanager:{OTHER}:{ACCOUNT}:secret:{STACK_NAME}/redis-password-{SECRET_SUFFIX}",
    ):
        assert not allows(statements, "secretsmanager:GetSecretValue", elsewhere), elsewhere


def test_given_the_home_region_then_the_key_the_api_is_told_is_the_one_its_role_may_read(home: Stack):
    statements = home.role_statements("ApiFunction")

    assert home.deployment.choose(home.properties("ApiFunction")["Environment"]["Variables"])[
        "CURSOR_SIGNING_KEY_SECRET_ID"
    ] == {"Ref": "CursorSigningKeySecret"}
    assert allows(statements, "secretsmanager:GetSecretValue", home.arn("CursorSigningKeySecret"))


def test_given_a_replica_region_then_the_home_region_alarms_when_it_falls_a_minute_behind(home: Stack, stack: Stack):
    alarm = home.properties("ReplicationLatencyAlarm")
    dimensions = {dimension["Name"]: dimension["Value"] for dimension in alarm["Dimensions"]}

    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "AWS/DynamoDB",
        "ReplicationLatency",
        "Maximum",
    )
    assert dimensions["ReceivingRegion"] == {"Ref": "ReplicaRegion"}
    assert alarm["Threshold"] == 60000
    assert not stack.exists("ReplicationLatencyAlarm")  # one region: nothing to replicate
