"""SQS permissions as CloudFormation receives them (after SAM's translation): each queue action is granted
on the refresh queue alone, never on "*" and never through a managed policy."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from typing import Any

import pytest

from tests.infra.sam import FUNCTIONS, Stack, allows

IAM_TYPES = ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
# The AWS managed policies a function role may carry; none of them grants an SQS action.
MANAGED_WITHOUT_SQS = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
}
# The role SAM gives CodeDeploy (safe deploys) carries this one: it reads alarms, moves aliases,
# invokes hooks and publishes to SNS, and grants no SQS action.
CODE_DEPLOY_ROLE = "CodeDeployServiceRole"
CODE_DEPLOY_MANAGED = "arn:aws:iam::aws:policy/service-role/AWSCodeDeployRoleForLambda"
# The SQS statement of the managed policy SAM attaches for an SQS event (its published document), so a
# role that carries it counts as granting what it grants.
MANAGED_SQS_STATEMENTS = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            "Resource": "*",
        }
    ]
}
CONSUMER_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
# Queue actions no role here needs: granting any of them anywhere is a regression.
NEVER_NEEDED = (
    "sqs:ChangeMessageVisibility",
    "sqs:PurgeQueue",
    "sqs:DeleteQueue",
    "sqs:SetQueueAttributes",
    "sqs:CreateQueue",
    "sqs:AddPermission",
)


def _may_name_a_queue_action(pattern: str) -> bool:
    """Whether an action (or a wildcard such as "*" or "*:SendMessage") may stand for an SQS action."""
    known = (*CONSUMER_ACTIONS, *NEVER_NEEDED, "sqs:SendMessage")
    return pattern.startswith("sqs:") or any(fnmatch.fnmatchcase(action.lower(), pattern) for action in known)


def _branches(value: Any) -> Iterator[Any]:
    """Every value an Fn::If may produce (both branches), AWS::NoValue left out."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        for branch in value["Fn::If"][1:]:
            yield from _branches(branch)
    elif value != {"Ref": "AWS::NoValue"}:
        yield value


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _documents(properties: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if "PolicyDocument" in properties:  # AWS::IAM::Policy, AWS::IAM::ManagedPolicy
        yield properties["PolicyDocument"]
    for policy in properties.get("Policies", []):  # AWS::IAM::Role
        for granted in _branches(policy):
            yield granted["PolicyDocument"]


def _managed_statements(name: str, properties: dict[str, Any], stack: Stack) -> list[dict[str, Any]]:
    statements = []
    for arn in map(stack.render, properties.get("ManagedPolicyArns", [])):
        if name == CODE_DEPLOY_ROLE and arn == CODE_DEPLOY_MANAGED:
            continue
        assert arn in MANAGED_WITHOUT_SQS or arn in MANAGED_SQS_STATEMENTS, f"unknown managed policy {arn}"
        statements += MANAGED_SQS_STATEMENTS.get(arn, [])
    return statements


def _sqs_statements(stack: Stack) -> Iterator[tuple[str, dict[str, Any]]]:
    """(IAM resource, statement rendered) for every Allow statement that may grant any SQS action, the
    statements of attached managed policies included."""
    for name, resource in stack.resources.items():
        if resource["Type"] not in IAM_TYPES:
            continue
        documents = [
            *_documents(resource["Properties"]),
            {"Statement": _managed_statements(name, resource["Properties"], stack)},
        ]
        for document in documents:
            for raw in _listed(document["Statement"]):
                for statement in _branches(raw):
                    actions = [action.lower() for action in _listed(statement.get("Action", []))]
                    if statement.get("Effect") == "Allow" and any(map(_may_name_a_queue_action, actions)):
                        yield name, stack.render(statement)
                    # NotAction would grant everything it does not name, queue actions included.
                    assert "NotAction" not in statement, name


def test_given_the_translated_template_then_some_statements_grant_queue_actions(stack: Stack):
    # The scheduler sends, the updater consumes: the checks below look at real statements.
    assert {name for name, _ in _sqs_statements(stack)} >= {"RefreshSchedulerFunctionRole", "PriceUpdaterFunctionRole"}


def test_given_any_statement_granting_queue_actions_then_its_only_resource_is_the_refresh_queue(stack: Stack):
    # Never "*", never the dead-letter queue, never a queue of another stack. The one exception: the
    # cache invalidator's stream hands the batches it gave up on to its own dead-letter queue.
    refresh_queue = stack.arn("RefreshQueue")

    for name, statement in _sqs_statements(stack):
        assert "NotResource" not in statement, name
        if name == "CacheInvalidatorFunctionRole":
            assert _listed(statement["Action"]) == ["sqs:SendMessage"], statement
            assert _listed(statement["Resource"]) == [stack.arn("CacheInvalidationDeadLetterQueue")], statement
            continue
        assert _listed(statement["Resource"]) == [refresh_queue], f"{name}: {statement}"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_given_any_role_then_no_managed_policy_brings_queue_permissions(stack: Stack, function):
    # AWSLambdaSQSQueueExecutionRole (what SAM attaches for an SQS event) receives and deletes on "*".
    assert set(stack.managed_policy_arns(function)) <= MANAGED_WITHOUT_SQS


def test_given_the_updater_role_then_it_consumes_the_refresh_queue_and_nothing_else(stack: Stack):
    statements = stack.role_statements("PriceUpdaterFunction")
    refresh_queue = stack.arn("RefreshQueue")

    for action in CONSUMER_ACTIONS:
        assert allows(statements, action, refresh_queue), action
        assert not allows(statements, action, stack.arn("RefreshDeadLetterQueue")), action
        assert not allows(statements, action, "*"), action
        assert not allows(statements, action, "arn:aws:sqs:us-east-1:123456789012:another-queue"), action
    assert not allows(statements, "sqs:SendMessage", refresh_queue)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_given_any_role_then_it_can_never_purge_delete_or_reconfigure_a_queue(stack: Stack, function):
    statements = stack.role_statements(function)

    for queue in (stack.arn("RefreshQueue"), stack.arn("RefreshDeadLetterQueue")):
        for action in NEVER_NEEDED:
            assert not allows(statements, action, queue), (function, action)


def test_given_the_event_source_mapping_then_the_queue_it_polls_is_the_one_its_function_may_consume(stack: Stack):
    mapping = stack.event_source_mapping("RefreshQueue")
    function = stack.properties(mapping["FunctionName"]["Ref"])["FunctionName"]["Ref"]
    statements = stack.role_statements(function)

    assert stack.render(mapping["EventSourceArn"]) == stack.arn("RefreshQueue")
    for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
        assert allows(statements, action, stack.render(mapping["EventSourceArn"]))
