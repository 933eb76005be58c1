"""User data outlives mistakes: the tables and the user pool survive a stack deletion, a replacement and a
delete call, and the tables can be restored to any second of the last 35 days."""

from __future__ import annotations

from tests.infra.sam import Stack

RETAIN = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable")


def _tables(stack: Stack) -> list[str]:
    return [name for name, resource in stack.resources.items() if resource["Type"] in TABLE_TYPES]


def _protected_copies(stack: Stack, table: str) -> list[dict]:
    """What carries deletion protection and point-in-time recovery: a table, or each replica of a global
    table, with and without the second region."""
    if stack.resources[table]["Type"] == "AWS::DynamoDB::Table":
        return [stack.properties(table)]
    return [
        replica
        for deployment in (stack, stack.deployed(ReplicaRegion="eu-west-1"))
        for replica in deployment.render(stack.properties(table)["Replicas"])
    ]


def _policies(stack: Stack, logical_name: str) -> dict[str, str | None]:
    resource = stack.resources[logical_name]
    return {key: resource.get(key) for key in RETAIN}


def test_given_the_template_then_the_portfolio_table_is_among_the_tables_checked(stack: Stack):
    assert "PortfolioTable" in _tables(stack)


def test_given_any_table_when_the_stack_is_deleted_or_it_is_replaced_or_deleted_by_hand_then_its_data_survives(
    stack: Stack,
):
    for table in _tables(stack):
        assert _policies(stack, table) == RETAIN, table
        for copy in _protected_copies(stack, table):
            assert copy["DeletionProtectionEnabled"] is True, table
            assert copy["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, table


def test_given_the_user_pool_when_the_stack_is_deleted_or_the_pool_replaced_then_the_pool_is_kept(stack: Stack):
    # Portfolio ids are the pool's subs: a new pool would give every user a new sub.
    assert _policies(stack, "UserPool") == RETAIN


def test_given_the_user_pool_when_anyone_asks_cognito_to_delete_it_then_deletion_protection_refuses(stack: Stack):
    assert stack.properties("UserPool")["DeletionProtection"] == "ACTIVE"
