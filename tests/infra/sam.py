"""The template as CloudFormation will see it: SAM's own translator expands the serverless resources.

Local CodeUri/ContentUri folders become S3 URIs first, as `sam package` would make them, because the
translator only accepts code that already sits in S3.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from collections.abc import Iterator, Sequence
from typing import Any

from samtranslator.translator.transform import transform

from local_stack.template_resources import load_template

FUNCTIONS = (
    "ApiFunction",
    "RefreshSchedulerFunction",
    "PriceUpdaterFunction",
    "CacheInvalidatorFunction",
    "WebSocketAuthorizerFunction",
    "WebSocketConnectionsFunction",
)
# The WebSocket authorizer reads neither the table nor Redis: it only verifies tokens.
REDIS_FUNCTIONS = tuple(function for function in FUNCTIONS if function != "WebSocketAuthorizerFunction")
# (method, path) of every API route; all but the public ones need a valid JWT.
ROUTES = {
    ("GET", "/health"),
    ("GET", "/portfolios/{userId}"),
    ("GET", "/portfolios/{userId}/assets"),
    ("GET", "/portfolios/{userId}/performance"),
    ("GET", "/portfolios/{userId}/transactions"),
    ("POST", "/portfolios/{userId}/transactions"),
    ("DELETE", "/portfolios/{userId}/transactions/{transactionId}"),
    ("PUT", "/portfolios/{userId}/settings"),
    ("POST", "/portfolios/{userId}/wallets"),
    ("GET", "/portfolios/{userId}/wallets"),
    ("DELETE", "/portfolios/{userId}/wallets/{walletId}"),
    ("POST", "/portfolios/{userId}/wallets/{walletId}/sync"),
    ("POST", "/portfolios/{userId}/alerts"),
    ("GET", "/portfolios/{userId}/alerts"),
    ("DELETE", "/portfolios/{userId}/alerts/{alertId}"),
}
PUBLIC_ROUTES = {("GET", "/health")}
ACCOUNT = "123456789012"
REGION = "us-east-1"
_PSEUDO = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::URLSuffix": "amazonaws.com"}


class _NoManagedPolicies:
    """The translator asks IAM for managed policy names only when a function lists one by name."""

    def load(self) -> dict[str, str]:
        return {}


def translate(sam_template: dict[str, Any] | None = None, *, layer_zip: str = "layer.zip") -> dict[str, Any]:
    """`layer_zip` stands for the layer's content: `sam package` names the zip after its hash."""
    sam = copy.deepcopy(sam_template or load_template())
    for resource in sam["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            properties["CodeUri"] = "s3://artifacts/function.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            properties["ContentUri"] = f"s3://artifacts/{layer_zip}"
    return transform(sam, {}, _NoManagedPolicies())


def _when_parameters_are_set(policy: dict[str, Any]) -> dict[str, Any] | None:
    """A policy under `Fn::If` as deployed with its optional parameters given (the branch that grants)."""
    if set(policy) == {"Fn::If"}:
        granted = policy["Fn::If"][1]
        return None if granted == {"Ref": "AWS::NoValue"} else granted
    return policy


class Stack:
    """A translated template, read as a stack whose physical names equal the logical names."""

    def __init__(self, template: dict[str, Any]) -> None:
        self.template = template
        self.resources: dict[str, dict[str, Any]] = template["Resources"]

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: res["Properties"] for name, res in self.resources.items() if res["Type"] == resource_type}

    def properties(self, logical_name: str) -> dict[str, Any]:
        return self.resources[logical_name]["Properties"]

    def event_source_mapping(self, source: str) -> dict[str, Any]:
        """The event source mapping that reads the queue or table stream of this logical id."""
        (mapping,) = [
            mapping
            for mapping in self.of_type("AWS::Lambda::EventSourceMapping").values()
            if mapping["EventSourceArn"].get("Fn::GetAtt", [None])[0] == source
        ]
        return mapping

    def role_statements(self, function: str) -> list[dict[str, Any]]:
        """Every inline statement of the function's execution role, resources rendered as ARNs."""
        role = self.properties(self._role_of(function))
        return [
            self.render(statement)
            for policy in map(_when_parameters_are_set, role.get("Policies", []))
            if policy is not None
            for statement in _listed(policy["PolicyDocument"]["Statement"])
        ]

    def managed_policy_arns(self, function: str) -> list[str]:
        return [self.render(arn) for arn in self.properties(self._role_of(function)).get("ManagedPolicyArns", [])]

    def arn(self, logical_name: str) -> str:
        resource_type = self.resources[logical_name]["Type"]
        if resource_type == "AWS::DynamoDB::Table":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{logical_name}"
        if resource_type == "AWS::SQS::Queue":
            return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{logical_name}"
        if resource_type == "AWS::Events::EventBus":
            return f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{logical_name}"
        raise ValueError(f"no ARN shape for {resource_type}")

    def render(self, value: Any, variables: dict[str, Any] | None = None) -> Any:
        """Intrinsics -> the strings they stand for (ARNs, names); unknown ones stay as they are."""
        variables = variables or {}
        if isinstance(value, list):
            return [self.render(item, variables) for item in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            return variables.get(value["Ref"]) or _PSEUDO.get(value["Ref"], value["Ref"])
        if set(value) == {"Fn::GetAtt"}:
            return self._attribute(*value["Fn::GetAtt"])
        if set(value) == {"Fn::Sub"}:
            text, extra = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
            known = {**variables, **{key: self.render(item, variables) for key, item in extra.items()}}
            return re.sub(r"\$\{([^}]+)\}", lambda match: self._substitute(match.group(1), known), text)
        return {key: self.render(item, variables) for key, item in value.items()}

    def _substitute(self, name: str, known: dict[str, Any]) -> str:
        if name in known:
            return str(known[name])
        if name in _PSEUDO:
            return _PSEUDO[name]
        if "." in name:
            return self._attribute(*name.split(".", 1))
        return name

    def _attribute(self, logical_name: str, attribute: str) -> str:
        if attribute == "Arn" and logical_name in self.resources:
            try:
                return self.arn(logical_name)
            except ValueError:
                pass
        if attribute == "QueueName":
            return logical_name
        return f"{logical_name}.{attribute}"

    def _role_of(self, function: str) -> str:
        return self.properties(function)["Role"]["Fn::GetAtt"][0]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allows(statements: list[dict[str, Any]], action: str, resource: str, *, leading_keys: Sequence[str] = ()) -> bool:
    """Whether these Allow statements grant `action` on `resource` for a request touching `leading_keys`.

    Enough of IAM for these policies: wildcards in actions and resources, and the one condition they
    use (ForAllValues:StringLike on dynamodb:LeadingKeys). Any other condition counts as not met.
    """
    return any(_statement_allows(statement, action, resource, list(leading_keys)) for statement in statements)


def _statement_allows(statement: dict[str, Any], action: str, resource: str, leading_keys: list[str]) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    if not any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in _listed(statement["Action"])):
        return False
    if not any(fnmatch.fnmatchcase(resource, pattern) for pattern in _listed(statement["Resource"])):
        return False
    conditions = statement.get("Condition", {})
    return all(_condition_met(operator, tests, leading_keys) for operator, tests in conditions.items())


def _condition_met(operator: str, tests: dict[str, Any], leading_keys: list[str]) -> bool:
    if operator != "ForAllValues:StringLike" or set(tests) != {"dynamodb:LeadingKeys"}:
        return False
    patterns = _listed(tests["dynamodb:LeadingKeys"])
    return all(any(fnmatch.fnmatchcase(key, pattern) for pattern in patterns) for key in leading_keys)


def actions_granted(statements: list[dict[str, Any]]) -> Iterator[str]:
    for statement in statements:
        if statement.get("Effect") == "Allow":
            yield from _listed(statement["Action"])
