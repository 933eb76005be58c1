"""Template rules: a deployment whose parameters cannot work is refused before anything is created."""

from __future__ import annotations

import pytest

from tests.infra.intrinsics import Deployment

ISSUER = "https://issuer.example.com/"


def test_given_the_template_as_cloudformation_receives_it_then_it_carries_the_issuer_rule(stack):
    rule = stack.template["Rules"]["IssuerNeedsAudience"]

    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "JwtIssuer"}, ""]}]}
    (assertion,) = rule["Assertions"]
    assert assertion["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "JwtAudience"}, ""]}]}


def test_given_an_issuer_without_an_audience_when_deploying_then_the_rule_fails_saying_what_to_set(stack):
    failures = Deployment(stack.template, JwtIssuer=ISSUER).failed_assertions("IssuerNeedsAudience")

    (description,) = failures
    assert "JwtAudience" in description
    assert "JwtIssuer" in description


@pytest.mark.parametrize(
    "parameters",
    [
        {},  # the created user pool: its client id is the audience
        {"JwtIssuer": ISSUER, "JwtAudience": "portfolio-api"},
        {"JwtAudience": "portfolio-api"},  # ignored without an issuer, and harmless
    ],
)
def test_given_a_deployment_that_can_authorize_when_deploying_then_the_issuer_rule_passes(stack, parameters):
    assert Deployment(stack.template, **parameters).failed_assertions("IssuerNeedsAudience") == []


def test_given_a_vpc_without_subnets_when_deploying_then_the_network_rule_fails(stack):
    failures = Deployment(stack.template, VpcId="vpc-0abc").failed_assertions("ExistingVpcNeedsSubnets")

    assert len(failures) == 1
    assert (
        Deployment(stack.template, VpcId="vpc-0abc", PrivateSubnetIds="subnet-0a,subnet-0b").failed_assertions(
            "ExistingVpcNeedsSubnets"
        )
        == []
    )
