"""Creates the template's DynamoDB tables (and queues) against any endpoint, so that tests and the
local stack use the very definitions that get deployed, not a second copy of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "template.yaml"

_TABLE_KEYS = (
    "AttributeDefinitions",
    "KeySchema",
    "LocalSecondaryIndexes",
    "GlobalSecondaryIndexes",
    "BillingMode",
)


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !Sub, !GetAtt, ...) as their long form."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CloudFormationLoader)  # noqa: S506 - SafeLoader subclass


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource.get("Properties", {})
        for name, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def create_tables(dynamodb_client: Any, table_names: dict[str, str], template: dict[str, Any] | None = None) -> None:
    """Create each AWS::DynamoDB::Table of the template under the physical name given for it."""
    template = template or load_template()
    for logical_name, properties in resources_of_type(template, "AWS::DynamoDB::Table").items():
        if logical_name not in table_names:
            continue
        arguments = {key: properties[key] for key in _TABLE_KEYS if key in properties}
        dynamodb_client.create_table(TableName=table_names[logical_name], **arguments)
        dynamodb_client.get_waiter("table_exists").wait(TableName=table_names[logical_name])
        ttl = properties.get("TimeToLiveSpecification")
        if ttl:
            dynamodb_client.update_time_to_live(
                TableName=table_names[logical_name],
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
