"""Least privilege: each role can do its job and, where it matters, provably nothing more."""

from __future__ import annotations

import pytest

from tests.infra.intrinsics import STACK_NAME
from tests.infra.sam import FUNCTIONS, Stack, actions_granted, allows, table_resources_granted

WRITES = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")
AWS_MANAGED = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
    "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
}


def _updater_statements(stack: Stack) -> list[dict]:
    return stack.role_statements("PriceUpdaterFunction")


def _other_tables(table: str) -> list[str]:
    """Tables a role of this stack has no business with, however close their ARN is to its own."""
    return [
        f"{table}-archive",
        table.replace(STACK_NAME, "another-stack"),
        table.replace(":us-east-1:", ":eu-west-1:"),  # the replica in another region: its own stack uses it
        table.replace(":123456789012:", ":210987654321:"),
    ]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_given_any_role_then_its_managed_policies_are_only_logs_tracing_and_vpc_networking(stack: Stack, function):
    # No event source's managed policy either (SAM's for SQS allows every queue): roles say what they use.
    assert set(stack.managed_policy_arns(function)) <= AWS_MANAGED


@pytest.mark.parametrize("function", FUNCTIONS)
def test_given_any_role_then_it_cannot_scan_a_table_or_use_wildcard_actions(stack: Stack, function):
    actions = [action.lower() for action in actions_granted(stack.role_statements(function))]

    assert "dynamodb:scan" not in actions
    assert not any(action.endswith(":*") or action == "*" for action in actions)


def test_given_the_api_role_then_it_has_no_sqs_permission_at_all(stack: Stack):
    actions = list(actions_granted(stack.role_statements("ApiFunction")))

    assert actions, "the API role should grant its table actions"
    assert [action for action in actions if action.lower().startswith("sqs:")] == []


def test_given_the_api_role_then_it_reads_and_writes_only_the_portfolio_table(stack: Stack):
    statements = stack.role_statements("ApiFunction")
    portfolio = stack.arn("PortfolioTable")

    assert allows(statements, "dynamodb:Query", f"{portfolio}/index/TransactionsByTime", leading_keys=["USER#a"])
    assert allows(statements, "dynamodb:GetItem", portfolio, leading_keys=["USER#a"])
    assert allows(statements, "dynamodb:PutItem", portfolio, leading_keys=["USER#a"])
    assert allows(statements, "dynamodb:DeleteItem", portfolio, leading_keys=["USER#a"])
    assert allows(statements, "dynamodb:UpdateItem", portfolio, leading_keys=["TOKENS#3"])  # holder counts
    assert allows(statements, "dynamodb:BatchWriteItem", portfolio, leading_keys=["PRICE#ethereum:0xabc"])
    assert not allows(statements, "dynamodb:PutItem", portfolio, leading_keys=["RUN#2025-01-15T10:00:00Z"])
    # Live updates: the writer's connections are read, and one found gone deleted; none is ever put
    assert allows(statements, "dynamodb:Query", portfolio, leading_keys=["CONN#a"])
    assert allows(statements, "dynamodb:DeleteItem", portfolio, leading_keys=["CONN#a"])
    assert not allows(statements, "dynamodb:PutItem", portfolio, leading_keys=["CONN#a"])
    assert not allows(statements, "dynamodb:Query", f"{portfolio}/index/UsersByShard", leading_keys=["7"])
    for other in _other_tables(portfolio):
        for action in ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"):
            assert not allows(statements, action, other, leading_keys=["USER#a"]), (action, other)
        assert not allows(statements, "dynamodb:Query", f"{other}/index/TransactionsByTime", leading_keys=["USER#a"])


@pytest.mark.parametrize("function", FUNCTIONS)
def test_given_any_role_then_every_table_grant_names_the_portfolio_table_its_indexes_or_its_stream(
    stack: Stack, function
):
    # Named in full, in this region and account: no wildcard reaches another table.
    table = stack.arn("PortfolioTable")
    granted = table_resources_granted(stack.role_statements(function))

    assert all(
        resource == table or resource.startswith((f"{table}/index/", f"{table}/stream/")) for resource in granted
    ), granted


def test_given_the_scheduler_role_then_it_writes_only_run_locks_and_swept_prices(stack: Stack):
    statements = stack.role_statements("RefreshSchedulerFunction")
    table = stack.arn("PortfolioTable")

    # Given a run lock item, then the scheduler may claim and release it
    for action in ("dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:GetItem"):
        assert allows(statements, action, table, leading_keys=["RUN#2025-01-15T10:00:00Z"])
    # Given the sweep, then it reads the holder counts and writes prices in batches
    assert allows(statements, "dynamodb:Query", table, leading_keys=["TOKENS#0"])
    assert allows(statements, "dynamodb:BatchWriteItem", table, leading_keys=["PRICE#ethereum:0x0"])
    # Given a user's item or a holder count, then no write is allowed
    for action in WRITES:
        assert not allows(statements, action, table, leading_keys=["USER#alice"])
        assert not allows(statements, action, table, leading_keys=["TOKENS#0"])
        assert not allows(statements, action, table, leading_keys=["RUN#x", "USER#alice"])


def test_given_the_scheduler_role_then_it_enumerates_users_only_through_the_users_index(stack: Stack):
    statements = stack.role_statements("RefreshSchedulerFunction")
    table = stack.arn("PortfolioTable")

    assert allows(statements, "dynamodb:Query", f"{table}/index/UsersByShard", leading_keys=["SHARD#07"])
    assert not allows(statements, "dynamodb:Query", table, leading_keys=["USER#alice"])
    assert not allows(statements, "dynamodb:Query", f"{table}/index/TransactionsByTime", leading_keys=["USER#a"])


def test_given_the_scheduler_role_then_it_sends_to_the_refresh_queue_and_nowhere_else(stack: Stack):
    statements = stack.role_statements("RefreshSchedulerFunction")

    assert allows(statements, "sqs:SendMessage", stack.arn("RefreshQueue"))
    assert not allows(statements, "sqs:SendMessage", stack.arn("RefreshDeadLetterQueue"))
    assert not allows(statements, "sqs:ReceiveMessage", stack.arn("RefreshQueue"))


def test_given_the_updater_role_then_it_consumes_the_queue_but_cannot_send_to_it(stack: Stack):
    statements = _updater_statements(stack)
    queue = stack.arn("RefreshQueue")

    assert allows(statements, "sqs:ReceiveMessage", queue)
    assert allows(statements, "sqs:DeleteMessage", queue)
    assert not allows(statements, "sqs:SendMessage", queue)


def test_given_the_updater_role_then_it_reads_portfolios_and_writes_users_only_what_wallet_sync_records(
    stack: Stack,
):
    statements = stack.role_statements("PriceUpdaterFunction")
    table = stack.arn("PortfolioTable")

    assert allows(statements, "dynamodb:BatchGetItem", table, leading_keys=["USER#a"])
    assert allows(statements, "dynamodb:BatchWriteItem", table, leading_keys=["PRICE#ethereum:0x0"])
    # Wallet sync: the user's item and new transactions, and the holder counts, never a deletion
    assert allows(statements, "dynamodb:PutItem", table, leading_keys=["USER#a"])
    assert allows(statements, "dynamodb:UpdateItem", table, leading_keys=["TOKENS#1"])
    assert not allows(statements, "dynamodb:DeleteItem", table, leading_keys=["USER#a"])
    assert not allows(statements, "dynamodb:BatchWriteItem", table, leading_keys=["USER#a"])
    # A WebSocket connection found gone (410) while pushing is deleted from the connections' own
    # partition; nothing else is ever deleted
    assert allows(statements, "dynamodb:DeleteItem", table, leading_keys=["CONN#a"])
    assert not allows(statements, "dynamodb:DeleteItem", table, leading_keys=["TOKENS#1"])
    assert not allows(statements, "dynamodb:DeleteItem", table, leading_keys=["PRICE#ethereum:0x0"])
    for action in WRITES:
        assert not allows(statements, action, table, leading_keys=["RUN#w"])


def test_given_the_node_url_secret_then_only_the_functions_that_sync_wallets_may_read_it(stack: Stack):
    # Rendered statements name a parameter by its logical name: the secret is the RpcUrlsSecretArn one.
    secret = "RpcUrlsSecretArn"

    assert allows(stack.role_statements("ApiFunction"), "secretsmanager:GetSecretValue", secret)
    assert allows(stack.role_statements("PriceUpdaterFunction"), "secretsmanager:GetSecretValue", secret)
    assert not allows(stack.role_statements("RefreshSchedulerFunction"), "secretsmanager:GetSecretValue", secret)
    assert not allows(stack.role_statements("ApiFunction"), "secretsmanager:GetSecretValue", "another-secret")
