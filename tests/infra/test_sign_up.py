"""Who may create an account in the created user pool: administrators only, unless the deployment opts in."""

from __future__ import annotations

from tests.infra.intrinsics import Deployment
from tests.infra.sam import Stack


def _admin_create_user_only(stack: Stack, deployment: Deployment) -> bool:
    config = stack.properties("UserPool")["AdminCreateUserConfig"]
    return deployment.evaluate(config["AllowAdminCreateUserOnly"])


def test_given_the_allow_self_sign_up_parameter_then_it_is_a_true_false_choice_defaulting_to_false(sam_template):
    parameter = sam_template["Parameters"]["AllowSelfSignUp"]

    assert parameter["Type"] == "String"
    assert sorted(parameter["AllowedValues"]) == ["false", "true"]
    assert parameter["Default"] == "false"


def test_given_a_default_deployment_when_someone_calls_sign_up_with_the_public_client_id_then_the_pool_refuses(
    stack: Stack,
):
    deployment = Deployment(stack.template)

    assert deployment.condition("CreateUserPool")
    assert _admin_create_user_only(stack, deployment) is True


def test_given_self_sign_up_set_to_false_then_only_administrators_create_users(stack: Stack):
    assert _admin_create_user_only(stack, Deployment(stack.template, AllowSelfSignUp="false")) is True


def test_given_self_sign_up_set_to_true_then_anyone_with_the_client_id_may_sign_up(stack: Stack):
    assert _admin_create_user_only(stack, Deployment(stack.template, AllowSelfSignUp="true")) is False


def test_given_the_app_client_then_it_stays_public_and_signs_in_with_srp_only(stack: Stack):
    # Self sign-up is governed by the pool, not by hiding the client: the client id is public by design.
    client = stack.properties("UserPoolClient")

    assert client["GenerateSecret"] is False
    assert set(client["ExplicitAuthFlows"]) == {"ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"}
