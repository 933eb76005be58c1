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
from tests.infra.intrinsics import ACCOUNT, REGION, Deployment, pseudo_parameters

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
# What AWS appends to a table's ARN for its stream, and to a secret's name for its ARN.
STREAM_LABEL = "2025-01-15T10:00:00.000"
SECRET_SUFFIX = "Ab3dEf"


def load_sam_template() -> dict[str, Any]:
    """template.yaml as the SAM CLI reads it (the shared loader writes `!Condition X` as {"Condition": X})."""
    return load_template()


class _NoManagedPolicies:
    """The translator asks IAM for managed policy names only when a function lists one by name."""

    def load(self) -> dict[str, str]:
        return {}


def translate(
    sam_template: dict[str, Any] | None = None, *, layer_zip: str = "layer.zip", **parameters: str
) -> dict[str, Any]:
    """`layer_zip` stands for the layer's content: `sam package` names the zip after its hash.

    `parameters` are the deploy's parameter values: CloudFormation hands them to the SAM transform, which
    resolves some of them (a DeploymentPreference's Type) while translating; the others keep their Default.
    """
    sam = copy.deepcopy(sam_template or load_sam_template())
    for resource in sam["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            properties["CodeUri"] = "s3://artifacts/function.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            properties["ContentUri"] = f"s3://artifacts/{layer_zip}"
    return transform(sam, dict(parameters), _NoManagedPolicies())


def _when_parameters_are_set(policy: dict[str, Any]) -> dict[str, Any] | None:
    """A policy under `Fn::If` as deployed with its optional parameters given (the branch that grants)."""
    if set(policy) == {"Fn::If"}:
        granted = policy["Fn::If"][1]
        return None if granted == {"Ref": "AWS::NoValue"} else granted
    return policy


class Stack:
    """A translated template, read as a stack deployed in `region` with `parameters` (the others at their
    Default). A resource's physical name is the name its properties give it, else its logical name.

    `resources` lists every resource of the template; `exists` says which ones this deployment creates.
    Rendering chooses the branch of each Fn::If this deployment takes, and renders a Ref to a parameter
    given here as its value (any other parameter as its name, which tests use as a placeholder).
    """

    def __init__(self, template: dict[str, Any], *, region: str = REGION, **parameters: str) -> None:
        self.template = template
        self.resources: dict[str, dict[str, Any]] = template["Resources"]
        self.region = region
        self.deployment = Deployment(template, region=region, **parameters)
        self._pseudo = pseudo_parameters(region)
        self._given = {name: value for name, value in parameters.items() if value != ""}

    def deployed(self, *, region: str = REGION, **parameters: str) -> Stack:
        """The same template deployed in another region or with other parameters."""
        return Stack(self.template, region=region, **parameters)

    def exists(self, logical_name: str) -> bool:
        return self.deployment.exists(logical_name)

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: res["Properties"] for name, res in self.resources.items() if res["Type"] == resource_type}

    def properties(self, logical_name: str) -> dict[str, Any]:
        return self.resources[logical_name]["Properties"]

    def event_source_mapping(self, source: str) -> dict[str, Any]:
        """The event source mapping that reads the queue or table stream of this logical id (a resource's,
        or a parameter that names one), in this deployment."""
        (mapping,) = [
            mapping
            for mapping in self.of_type("AWS::Lambda::EventSourceMapping").values()
            for source_arn in [self.deployment.choose(mapping["EventSourceArn"])]
            if source_arn.get("Fn::GetAtt", [None])[0] == source or source_arn == {"Ref": source}
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
        """The resource's ARN in this stack's region (a global table's: this region's replica)."""
        resource_type = self.resources[logical_name]["Type"]
        if resource_type in ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"):
            return f"arn:aws:dynamodb:{self.region}:{ACCOUNT}:table/{self._name(logical_name, 'TableName')}"
        if resource_type == "AWS::SQS::Queue":
            return f"arn:aws:sqs:{self.region}:{ACCOUNT}:{logical_name}"
        if resource_type == "AWS::Events::EventBus":
            return f"arn:aws:events:{self.region}:{ACCOUNT}:event-bus/{logical_name}"
        if resource_type == "AWS::SecretsManager::Secret":
            name = self._name(logical_name, "Name")
            return f"arn:aws:secretsmanager:{self.region}:{ACCOUNT}:secret:{name}-{SECRET_SUFFIX}"
        raise ValueError(f"no ARN shape for {resource_type}")

    def _name(self, logical_name: str, name_property: str) -> str:
        name = self.properties(logical_name).get(name_property)
        return logical_name if name is None else str(self.render(name))

    def render(self, value: Any, variables: dict[str, Any] | None = None) -> Any:
        """Intrinsics -> the strings they stand for (ARNs, names); unknown ones stay as they are."""
        variables = variables or {}
        if isinstance(value, list):
            return [self.render(item, variables) for item in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            name = value["Ref"]
            return variables.get(name) or self._given.get(name) or self._pseudo.get(name, name)
        if set(value) == {"Fn::If"}:
            condition, when_true, when_false = value["Fn::If"]
            return self.render(when_true if self.deployment.condition(condition) else when_false, variables)
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
        if name in self._pseudo:
            return self._pseudo[name]
        if name in self._given:
            return self._given[name]
        if "." in name:
            return self._attribute(*name.split(".", 1))
        return name

    def _attribute(self, logical_name: str, attribute: str) -> str:
        if attribute in ("Arn", "StreamArn") and logical_name in self.resources:
            try:
                arn = self.arn(logical_name)
            except ValueError:
                pass
            else:
                return arn if attribute == "Arn" else f"{arn}/stream/{STREAM_LABEL}"
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


def table_resources_granted(statements: list[dict[str, Any]]) -> set[str]:
    """Every resource an Allow statement grants a DynamoDB action on, but dynamodb:ListStreams' "*"
    (that action takes no resource)."""
    return {
        resource
        for statement in statements
        if statement.get("Effect") == "Allow"
        for actions in [[action.lower() for action in _listed(statement["Action"])]]
        if any(action.startswith("dynamodb:") for action in actions) and actions != ["dynamodb:liststreams"]
        for resource in _listed(statement["Resource"])
    }


def actions_granted(statements: list[dict[str, Any]]) -> Iterator[str]:
    for statement in statements:
        if statement.get("Effect") == "Allow":
            yield from _listed(statement["Action"])
