"""Enough of CloudFormation's condition functions to evaluate the template's conditions and rules.

A deployment is a region and a set of parameter values (the others take their Default). Rules and
conditions may only use Ref to a parameter or a pseudo parameter (AWS::Region...), Fn::Equals, Fn::Not,
Fn::And, Fn::Or, Fn::If and Condition; anything else raises, so a test never passes on an intrinsic it
did not understand.
"""

from __future__ import annotations

from typing import Any

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK_NAME = "cross-chain-portfolio-test"
_NO_VALUE = {"Ref": "AWS::NoValue"}


def pseudo_parameters(region: str = REGION) -> dict[str, str]:
    return {
        "AWS::Partition": "aws",
        "AWS::Region": region,
        "AWS::AccountId": ACCOUNT,
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": STACK_NAME,
    }


class Deployment:
    def __init__(self, template: dict[str, Any], *, region: str = REGION, **parameters: str) -> None:
        unknown = set(parameters) - set(template["Parameters"])
        if unknown:
            raise ValueError(f"not parameters of the template: {sorted(unknown)}")
        self._template = template
        self.region = region
        self._pseudo = pseudo_parameters(region)
        self._parameters = {
            name: parameters.get(name, definition.get("Default")) for name, definition in template["Parameters"].items()
        }

    def evaluate(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.evaluate(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            raise ValueError(f"not an intrinsic function: {value}")
        ((function, argument),) = value.items()
        if function == "Ref":
            if argument in self._pseudo:
                return self._pseudo[argument]
            if self._parameters.get(argument) is None:
                raise ValueError(f"Ref {argument}: not a parameter with a value")
            return self._parameters[argument]
        if function == "Fn::Equals":
            left, right = self.evaluate(argument)
            return str(left) == str(right)
        if function == "Fn::Not":
            (operand,) = argument
            return not self._boolean(operand)
        if function == "Fn::And":
            return all(self._boolean(operand) for operand in argument)
        if function == "Fn::Or":
            return any(self._boolean(operand) for operand in argument)
        if function == "Fn::If":
            condition, when_true, when_false = argument
            return self.evaluate(when_true if self.condition(condition) else when_false)
        if function == "Condition":
            return self.condition(argument)
        raise ValueError(f"{function} is not evaluated here")

    def condition(self, name: str) -> bool:
        return self._boolean(self._template["Conditions"][name])

    def exists(self, logical_name: str) -> bool:
        """Whether this deployment creates the resource (its Condition, if any, holds)."""
        condition = self._template["Resources"][logical_name].get("Condition")
        return condition is None or self.condition(condition)

    def choose(self, value: Any) -> Any:
        """The value with every Fn::If replaced by the branch this deployment takes (AWS::NoValue
        dropped from lists and objects); every other intrinsic is left as it is."""
        if isinstance(value, list):
            chosen = [self.choose(item) for item in value]
            return [item for item in chosen if item != _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Fn::If"}:
            condition, when_true, when_false = value["Fn::If"]
            return self.choose(when_true if self.condition(condition) else when_false)
        chosen_items = {key: self.choose(item) for key, item in value.items()}
        return {key: item for key, item in chosen_items.items() if item != _NO_VALUE}

    def failed_assertions(self, rule_name: str) -> list[str]:
        """The AssertDescription of each assertion of the rule this deployment breaks ([] when it passes)."""
        rule = self._template["Rules"][rule_name]
        if "RuleCondition" in rule and not self._boolean(rule["RuleCondition"]):
            return []
        return [
            assertion["AssertDescription"] for assertion in rule["Assertions"] if not self._boolean(assertion["Assert"])
        ]

    def _boolean(self, value: Any) -> bool:
        result = self.evaluate(value)
        if not isinstance(result, bool):
            raise ValueError(f"{value} is not a condition")
        return result
