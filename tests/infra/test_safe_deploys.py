"""Safe deploys: every function's live alias moves to a new version through CodeDeploy, as the
DeploymentType parameter says (all at once in dev, a canary in prod), and goes back to the previous
version when one of the function's alarms goes off."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.infra.sam import FUNCTIONS, Stack, translate
from tests.infra.samconfig import deploy_environments

CANARY = "Canary10Percent5Minutes"
REPLICA_STREAM = "arn:aws:dynamodb:eu-west-1:123456789012:table/t/stream/2025-02-01T00:00:00.000"
# CodeDeploy's predefined Lambda configurations (CodeDeployDefault.Lambda<name>).
CODE_DEPLOY_LAMBDA_CONFIGS = {
    "AllAtOnce",
    "Canary10Percent5Minutes",
    "Canary10Percent10Minutes",
    "Canary10Percent15Minutes",
    "Canary10Percent30Minutes",
    "Linear10PercentEvery1Minute",
    "Linear10PercentEvery2Minutes",
    "Linear10PercentEvery3Minutes",
    "Linear10PercentEvery10Minutes",
}
# Beyond its own errors: the API rolls back on the 500s it answers for unhandled errors and on its
# duration, the updater on nearing its timeout.
EXTRA_ROLLBACK_ALARMS = {
    "ApiFunction": {"ApiUnhandledErrorsAlarm", "ApiFunctionDurationAlarm"},
    "PriceUpdaterFunction": {"PriceUpdaterDurationAlarm"},
}


@pytest.fixture(scope="module")
def canary_stack(sam_template: dict[str, Any]) -> Stack:
    """The stack as prod deploys it: CloudFormation hands the parameter values to the SAM transform."""
    return Stack(translate(sam_template, DeploymentType=CANARY), DeploymentType=CANARY)


def _group(stack: Stack, function: str) -> dict[str, Any]:
    alias = stack.resources[f"{function}Aliaslive"]
    group_name = alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]["DeploymentGroupName"]["Ref"]
    return stack.properties(group_name)


def _rollback_alarms(stack: Stack, function: str) -> set[str]:
    """The logical ids of the alarms a function's deployment group watches, named by Ref or by the
    alarm's own AlarmName."""
    by_name = {
        json.dumps(alarm["AlarmName"], sort_keys=True): name
        for name, alarm in stack.of_type("AWS::CloudWatch::Alarm").items()
        if "AlarmName" in alarm
    }
    alarms = set()
    for entry in _group(stack, function)["AlarmConfiguration"]["Alarms"]:
        reference = entry["Name"]
        alarms.add(reference["Ref"] if "Ref" in reference else by_name[json.dumps(reference, sort_keys=True)])
    return alarms


def _references(value: Any) -> set[str]:
    """Logical ids a value refers to: Ref, Fn::GetAtt and the ${...} of Fn::Sub."""
    if isinstance(value, dict):
        found = set()
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else inner.split(".", 1)[0])
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found |= {name.split(".", 1)[0] for name in re.findall(r"\$\{([^}!]+)\}", text)}
                found |= _references(inner[1]) if isinstance(inner, list) else set()
            else:
                found |= _references(inner)
        return found
    if isinstance(value, list):
        return set().union(*(_references(item) for item in value)) if value else set()
    return set()


def test_given_the_translated_template_then_no_resource_waits_on_itself(stack: Stack):
    # CloudFormation refuses a change set with a cycle, UpdatePolicy references included (a function's
    # alias waits on its deployment group, which waits on the rollback alarms); cfn-lint does not see
    # what SAM generates.
    edges = {
        name: (
            _references(resource.get("Properties", {}))
            | _references(resource.get("UpdatePolicy", {}))
            | set(
                resource.get("DependsOn", [])
                if isinstance(resource.get("DependsOn"), list)
                else [resource.get("DependsOn")]
                if resource.get("DependsOn")
                else []
            )
        )
        & set(stack.resources)
        for name, resource in stack.resources.items()
    }
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in done:
            return
        assert name not in visiting, " -> ".join([*path, name])
        visiting.add(name)
        for target in edges[name]:
            visit(target, [*path, name])
        visiting.discard(name)
        done.add(name)

    for name in edges:
        visit(name, [])


def _errors_alarm(stack: Stack, function: str) -> str:
    (name,) = [
        name
        for name, alarm in stack.of_type("AWS::CloudWatch::Alarm").items()
        if (alarm.get("Namespace"), alarm.get("MetricName")) == ("AWS/Lambda", "Errors")
        and alarm.get("Dimensions") == [{"Name": "FunctionName", "Value": {"Ref": function}}]
    ]
    return name


@pytest.mark.parametrize("function", FUNCTIONS)
def test_given_a_function_then_its_type_is_the_deployment_type_parameter_and_its_errors_alarm_rolls_back(
    sam_template: dict[str, Any], stack: Stack, function
):
    preference = sam_template["Resources"][function]["Properties"]["DeploymentPreference"]

    assert preference["Type"] == {"Ref": "DeploymentType"}
    assert {"Ref": _errors_alarm(stack, function)} in preference["Alarms"]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_given_a_new_version_then_codedeploy_moves_the_live_alias_and_rolls_back_on_an_alarm(stack: Stack, function):
    alias = stack.resources[f"{function}Aliaslive"]
    update = alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]
    group = _group(stack, function)

    assert update["ApplicationName"] == {"Ref": "ServerlessDeploymentApplication"}
    assert stack.resources[update["DeploymentGroupName"]["Ref"]]["Type"] == "AWS::CodeDeploy::DeploymentGroup"
    assert group["AlarmConfiguration"]["Enabled"] is True
    assert group["AutoRollbackConfiguration"]["Enabled"] is True
    assert {"DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"} <= set(group["AutoRollbackConfiguration"]["Events"])
    assert _errors_alarm(stack, function) in _rollback_alarms(stack, function)
    assert EXTRA_ROLLBACK_ALARMS.get(function, set()) <= _rollback_alarms(stack, function)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_given_the_rollback_alarms_then_they_exist_in_every_region(stack: Stack, function):
    # A deployment group naming an alarm a region does not create fails that region's deploy.
    other_region = stack.deployed(region="eu-west-1", HomeRegion="us-east-1", TableStreamArn=REPLICA_STREAM)

    for alarm in _rollback_alarms(stack, function):
        assert stack.resources[alarm]["Type"] == "AWS::CloudWatch::Alarm", alarm
        assert stack.exists(alarm), alarm
        assert other_region.exists(alarm), alarm


def test_given_the_deployment_type_parameter_then_it_defaults_to_all_at_once(stack: Stack, sam_template):
    parameter = sam_template["Parameters"]["DeploymentType"]

    assert parameter["Default"] == "AllAtOnce"
    assert set(parameter["AllowedValues"]) <= CODE_DEPLOY_LAMBDA_CONFIGS
    assert CANARY in parameter["AllowedValues"]
    for function in FUNCTIONS:
        assert stack.render(_group(stack, function)["DeploymentConfigName"]) == "CodeDeployDefault.LambdaAllAtOnce"


def test_given_a_canary_deployment_type_then_every_function_shifts_its_traffic_that_way(canary_stack: Stack):
    for function in FUNCTIONS:
        config = canary_stack.render(_group(canary_stack, function)["DeploymentConfigName"])
        assert config == f"CodeDeployDefault.Lambda{CANARY}", function


def test_given_codedeploy_then_only_its_own_role_carries_its_managed_policy(stack: Stack):
    roles = {_group(stack, function)["ServiceRoleArn"]["Fn::GetAtt"][0] for function in FUNCTIONS}
    (role,) = roles
    properties = stack.properties(role)

    assert properties["ManagedPolicyArns"] == ["arn:aws:iam::aws:policy/service-role/AWSCodeDeployRoleForLambda"]
    assert "Policies" not in properties
    (statement,) = properties["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": ["codedeploy.amazonaws.com"]}


def test_given_samconfig_then_every_prod_environment_deploys_through_a_gradual_shift_and_dev_at_once(sam_template):
    environments = deploy_environments()
    allowed = set(sam_template["Parameters"]["DeploymentType"]["AllowedValues"])
    prod = [environment for name, environment in environments.items() if name.startswith("prod")]

    assert prod, "samconfig.toml has no prod environment"
    for environment in prod:
        assert environment.parameters.get("DeploymentType") in allowed - {"AllAtOnce"}, environment.name
    assert environments["dev"].parameters.get("DeploymentType", "AllAtOnce") == "AllAtOnce"


def test_given_a_canary_step_of_five_minutes_then_the_api_has_rollback_alarms_that_can_fire_within_it(stack: Stack):
    # The API answers its own failures 500 without a Lambda error: the count it emits shows them.
    unhandled = stack.properties("ApiUnhandledErrorsAlarm")
    duration = stack.properties("ApiFunctionDurationAlarm")

    assert (unhandled["Namespace"], unhandled["MetricName"]) == ("CrossChainPortfolio", "ApiUnhandledErrors")
    assert (duration["Namespace"], duration["MetricName"], duration["ExtendedStatistic"]) == (
        "AWS/Lambda",
        "Duration",
        "p99",
    )
    for alarm in (unhandled, duration):
        assert alarm["Period"] * alarm["EvaluationPeriods"] <= 300
