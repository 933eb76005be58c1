"""The cache admits only the app's user, whose password lives in Secrets Manager, never in an environment."""

from __future__ import annotations

import pytest

from tests.infra.sam import REDIS_FUNCTIONS, Stack, allows


def _variables(stack: Stack, function: str) -> dict:
    return stack.properties(function)["Environment"]["Variables"]


def test_given_the_cache_then_a_user_group_guards_it_with_a_default_user_that_can_do_nothing(stack: Stack):
    assert stack.properties("Cache")["UserGroupId"] == {"Ref": "CacheUserGroup"}
    group = stack.properties("CacheUserGroup")
    assert group["UserIds"] == [{"Ref": "CacheDisabledDefaultUser"}, {"Ref": "CacheAppUser"}]
    default = stack.properties("CacheDisabledDefaultUser")
    assert default["UserName"] == "default"
    assert default["AccessString"].startswith("off")
    assert stack.properties("CacheAppUser")["AuthenticationMode"]["Type"] == "password"


@pytest.mark.parametrize("function", REDIS_FUNCTIONS)
def test_given_a_function_then_it_connects_as_the_app_user_with_the_password_read_from_the_secret(
    stack: Stack, function: str
):
    variables = _variables(stack, function)

    assert variables["REDIS_USERNAME"] == {"Ref": "CacheAppUser"}
    assert variables["REDIS_PASSWORD_SECRET_ARN"] == {"Ref": "CachePasswordSecret"}
    assert "REDIS_PASSWORD" not in variables
    statements = stack.role_statements(function)
    assert allows(statements, "secretsmanager:GetSecretValue", stack.render({"Ref": "CachePasswordSecret"}))
    assert not allows(statements, "secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:1:secret:other")
