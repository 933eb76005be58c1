"""SnapStart: every Python function runs from a snapshot of a published version, reached through its alias."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.sam import FUNCTIONS, Stack, translate

ALIAS = "live"
# SnapStart refuses provisioned concurrency, EFS and more ephemeral storage than this.
MAX_EPHEMERAL_STORAGE_MB = 512


def _alias(function: str) -> str:
    return f"{function}Alias{ALIAS}"


def _versions(template: dict[str, Any]) -> dict[str, str]:
    """Function -> the logical id of the version its alias points at."""
    return {
        properties["FunctionName"]["Ref"]: properties["FunctionVersion"]["Fn::GetAtt"][0]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Alias"
        for properties in [resource["Properties"]]
    }


@pytest.mark.parametrize("function", FUNCTIONS)
def test_given_a_python_function_then_snapstart_applies_to_its_published_versions(stack: Stack, function):
    properties = stack.properties(function)

    assert properties["Runtime"] in {"python3.12", "python3.13"}
    assert properties["SnapStart"] == {"ApplyOn": "PublishedVersions"}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_given_a_function_then_its_alias_points_at_the_published_version(stack: Stack, function):
    alias = stack.properties(_alias(function))
    version = alias["FunctionVersion"]["Fn::GetAtt"][0]

    assert alias["Name"] == ALIAS
    assert alias["FunctionName"] == {"Ref": function}
    assert stack.resources[version]["Type"] == "AWS::Lambda::Version"
    assert stack.properties(version)["FunctionName"] == {"Ref": function}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_given_a_new_version_then_the_one_it_replaces_is_deleted_with_its_snapshot(stack: Stack, function):
    version = stack.properties(_alias(function))["FunctionVersion"]["Fn::GetAtt"][0]

    assert stack.resources[version]["DeletionPolicy"] == "Delete"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_given_a_function_then_it_uses_nothing_snapstart_refuses(stack: Stack, function):
    properties = stack.properties(function)
    alias = stack.properties(_alias(function))

    assert "ProvisionedConcurrencyConfig" not in alias
    assert "FileSystemConfigs" not in properties
    assert properties.get("EphemeralStorage", {}).get("Size", MAX_EPHEMERAL_STORAGE_MB) <= MAX_EPHEMERAL_STORAGE_MB


# The price updater has none: its SQS poller invokes it with the function's own role.
@pytest.mark.parametrize("function", ["ApiFunction", "RefreshSchedulerFunction"])
def test_given_a_service_that_invokes_a_function_then_it_is_allowed_on_the_alias_only(stack: Stack, function):
    permissions = [
        permission
        for permission in stack.of_type("AWS::Lambda::Permission").values()
        if permission["FunctionName"]["Ref"].startswith(function)
    ]

    assert permissions
    assert all(permission["FunctionName"] == {"Ref": _alias(function)} for permission in permissions)


def test_given_the_event_sources_then_each_invokes_an_alias_never_the_unpublished_function(stack: Stack):
    mapping = stack.event_source_mapping("RefreshQueue")
    stream = stack.event_source_mapping("PortfolioTable")
    (rule,) = stack.of_type("AWS::Events::Rule").values()
    api = stack.properties("HttpApi")
    integrations = [
        operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
        for methods in api["Body"]["paths"].values()
        for operation in methods.values()
    ]

    assert mapping["FunctionName"] == {"Ref": _alias("PriceUpdaterFunction")}
    assert stream["FunctionName"] == {"Ref": _alias("CacheInvalidatorFunction")}
    assert [target["Arn"] for target in rule["Targets"]] == [{"Ref": _alias("RefreshSchedulerFunction")}]
    assert integrations
    assert all("${" + _alias("ApiFunction") + "}/invocations" in uri for uri in integrations)


def test_given_a_deploy_that_changes_only_the_shared_layer_then_every_function_publishes_a_new_version():
    before = _versions(translate(layer_zip="layer-before.zip"))
    after = _versions(translate(layer_zip="layer-after.zip"))

    assert set(before) == set(FUNCTIONS)
    assert all(before[function] != after[function] for function in FUNCTIONS)


def test_given_an_unchanged_deploy_then_no_function_publishes_a_version():
    assert _versions(translate(layer_zip="same.zip")) == _versions(translate(layer_zip="same.zip"))
