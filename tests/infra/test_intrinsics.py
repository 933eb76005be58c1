"""The condition evaluator the rule and region tests rely on: it must get CloudFormation's answers, and
refuse what it does not understand rather than guess."""

from __future__ import annotations

import pytest

from tests.infra.intrinsics import REGION, Deployment

HOME = {
    "Fn::Or": [
        {"Fn::Equals": [{"Ref": "HomeRegion"}, ""]},
        {"Fn::Equals": [{"Ref": "HomeRegion"}, {"Ref": "AWS::Region"}]},
    ]
}
TEMPLATE = {
    "Parameters": {
        "HomeRegion": {"Type": "String", "Default": ""},
        "Name": {"Type": "String", "Default": ""},
        "Size": {"Type": "Number", "Default": 3},
        "Unset": {"Type": "String"},
    },
    "Conditions": {
        "IsHome": HOME,
        "HasName": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Name"}, ""]}]},
        "NamedHome": {"Fn::And": [{"Condition": "IsHome"}, {"Condition": "HasName"}]},
        "SizeThree": {"Fn::Equals": [{"Ref": "Size"}, "3"]},
    },
    "Rules": {
        "AwayNeedsName": {
            "RuleCondition": {"Fn::Not": [{"Condition": "IsHome"}]},
            "Assertions": [
                {"Assert": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Name"}, ""]}]}, "AssertDescription": "Name it"}
            ],
        }
    },
    "Resources": {
        "Everywhere": {"Type": "AWS::SNS::Topic"},
        "HomeOnly": {"Type": "AWS::SNS::Topic", "Condition": "IsHome"},
    },
}


@pytest.mark.parametrize(
    ("region", "parameters", "is_home"),
    [
        (REGION, {}, True),  # no home region named: this one
        ("eu-west-1", {"HomeRegion": "eu-west-1"}, True),
        ("eu-west-1", {"HomeRegion": "us-east-1"}, False),
    ],
)
def test_given_a_region_and_parameters_then_ref_equals_and_or_follow_cloudformation(region, parameters, is_home):
    deployment = Deployment(TEMPLATE, region=region, **parameters)

    assert deployment.condition("IsHome") is is_home
    assert deployment.exists("HomeOnly") is is_home
    assert deployment.exists("Everywhere")


def test_given_conditions_of_conditions_then_and_and_not_combine_them():
    assert Deployment(TEMPLATE, Name="n").condition("NamedHome") is True
    assert Deployment(TEMPLATE).condition("NamedHome") is False
    assert Deployment(TEMPLATE, region="eu-west-1", HomeRegion="us-east-1", Name="n").condition("NamedHome") is False


def test_given_a_number_parameter_then_equals_compares_it_as_cloudformation_does_as_a_string():
    assert Deployment(TEMPLATE).condition("SizeThree") is True
    assert Deployment(TEMPLATE, Size="4").condition("SizeThree") is False


def test_given_a_rule_then_its_assertions_are_checked_only_when_its_condition_holds():
    away = {"region": "eu-west-1", "HomeRegion": "us-east-1"}

    assert Deployment(TEMPLATE).failed_assertions("AwayNeedsName") == []
    assert Deployment(TEMPLATE, **away).failed_assertions("AwayNeedsName") == ["Name it"]
    assert Deployment(TEMPLATE, **away, Name="n").failed_assertions("AwayNeedsName") == []


def test_given_fn_if_then_choose_keeps_the_branch_taken_and_drops_no_value():
    value = {
        "A": {"Fn::If": ["IsHome", {"Ref": "Everywhere"}, {"Ref": "Name"}]},
        "B": {"Fn::If": ["IsHome", {"Ref": "AWS::NoValue"}, ["x"]]},
        "C": [{"Fn::If": ["IsHome", {"Ref": "AWS::NoValue"}, "y"]}, "z"],
    }

    assert Deployment(TEMPLATE).choose(value) == {"A": {"Ref": "Everywhere"}, "C": ["z"]}
    assert Deployment(TEMPLATE, region="eu-west-1", HomeRegion="us-east-1").choose(value) == {
        "A": {"Ref": "Name"},
        "B": ["x"],
        "C": ["y", "z"],
    }


@pytest.mark.parametrize(
    "value",
    [
        {"Fn::Equals": [{"Fn::GetAtt": ["Everywhere", "TopicName"]}, ""]},  # not allowed in a condition
        {"Fn::Equals": [{"Ref": "Unset"}, ""]},  # a parameter with no value
        {"Fn::Equals": [{"Ref": "Everywhere"}, ""]},  # a resource
        {"Fn::Not": [{"Ref": "Name"}]},  # a string where a condition belongs
        {"Ref": "Name", "Fn::Not": []},  # not one intrinsic
    ],
)
def test_given_what_the_evaluator_does_not_understand_then_it_raises_rather_than_guess(value):
    with pytest.raises(ValueError):
        Deployment(TEMPLATE).evaluate(value)


def test_given_a_parameter_the_template_lacks_then_the_deployment_is_refused():
    with pytest.raises(ValueError, match="Nmae"):
        Deployment(TEMPLATE, Nmae="typo")
