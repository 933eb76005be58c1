"""Creates the template's DynamoDB tables (and queues, and event buses) against any endpoint, so that
tests and the local stack use the very definitions that get deployed, not a second copy of them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from graphlib import TopologicalSorter
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
    # Ref and Condition are the two short forms without "Fn::" in their long form.
    name = tag_suffix if tag_suffix in ("Ref", "Condition") else f"Fn::{tag_suffix}"
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


def table_resources(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The template's tables: AWS::DynamoDB::Table, and AWS::DynamoDB::GlobalTable (one replica here)."""
    return {
        **resources_of_type(template, "AWS::DynamoDB::Table"),
        **resources_of_type(template, "AWS::DynamoDB::GlobalTable"),
    }


def create_tables(
    dynamodb_client: Any,
    table_names: dict[str, str],
    template: dict[str, Any] | None = None,
    *,
    streams: bool = False,
) -> None:
    """Create each table of the template (AWS::DynamoDB::Table, or the local replica of an
    AWS::DynamoDB::GlobalTable) under the physical name given for it; with `streams`, with the stream
    the template gives it. Only where something reads the stream: moto keeps every record, and each
    write to a streamed table gets slower as they pile up."""
    template = template or load_template()
    for logical_name, properties in table_resources(template).items():
        if logical_name not in table_names:
            continue
        arguments = {key: properties[key] for key in _TABLE_KEYS if key in properties}
        if streams and "StreamSpecification" in properties:
            # CloudFormation enables a stream by naming its view type; the API wants it said.
            arguments["StreamSpecification"] = {"StreamEnabled": True, **properties["StreamSpecification"]}
        dynamodb_client.create_table(TableName=table_names[logical_name], **arguments)
        dynamodb_client.get_waiter("table_exists").wait(TableName=table_names[logical_name])
        ttl = properties.get("TimeToLiveSpecification")
        if ttl:
            dynamodb_client.update_time_to_live(
                TableName=table_names[logical_name],
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )


def create_event_buses(
    events_client: Any, bus_names: Mapping[str, str], template: dict[str, Any] | None = None
) -> dict[str, str]:
    """Create each AWS::Events::EventBus of the template named in `bus_names` (logical -> physical
    name); returns logical name -> bus name."""
    template = template or load_template()
    created = {}
    for logical_name in resources_of_type(template, "AWS::Events::EventBus"):
        if logical_name in bus_names:
            events_client.create_event_bus(Name=bus_names[logical_name])
            created[logical_name] = bus_names[logical_name]
    return created


# The AWS::SQS::Queue properties that are queue attributes in the SQS API, under the same names.
_QUEUE_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)


def create_queues(
    sqs_client: Any,
    queue_names: Mapping[str, str],
    template: dict[str, Any] | None = None,
    *,
    parameters: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Create each AWS::SQS::Queue of the template named in `queue_names` (logical -> physical name).

    A queue is created after the queues it refers to, so a redrive policy points at the dead-letter
    queue's real ARN. `Ref` to a template parameter takes `parameters[name]`, else its Default.
    Returns logical name -> queue URL.
    """
    template = template or load_template()
    all_queues = resources_of_type(template, "AWS::SQS::Queue")
    queues = {name: properties for name, properties in all_queues.items() if name in queue_names}
    dependencies = {name: _referenced_names(properties) & set(all_queues) for name, properties in queues.items()}
    for name, needed in dependencies.items():
        missing = sorted(needed - set(queues))
        if missing:
            raise ValueError(f"queue {name} refers to {missing}: name them in queue_names too")

    resolver = _IntrinsicResolver(template, parameters or {})
    urls: dict[str, str] = {}
    for logical_name in TopologicalSorter(dependencies).static_order():
        properties = queues[logical_name]
        attributes = {
            key: _attribute_text(resolver.resolve(properties[key])) for key in _QUEUE_ATTRIBUTES if key in properties
        }
        url = sqs_client.create_queue(QueueName=queue_names[logical_name], Attributes=attributes)["QueueUrl"]
        arn = sqs_client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        resolver.add_queue(logical_name, name=queue_names[logical_name], url=url, arn=arn)
        urls[logical_name] = url
    return urls


def _referenced_names(value: Any) -> set[str]:
    """Logical names a property refers to through Ref or Fn::GetAtt, at any depth."""
    if isinstance(value, list):
        return set().union(*(_referenced_names(item) for item in value))
    if not isinstance(value, dict):
        return set()
    if set(value) == {"Ref"}:
        return {value["Ref"]}
    if set(value) == {"Fn::GetAtt"}:
        return {value["Fn::GetAtt"][0]}
    return set().union(*(_referenced_names(item) for item in value.values()))


class _IntrinsicResolver:
    """Resolves the intrinsics a queue definition may hold: parameters and other queues' attributes."""

    def __init__(self, template: dict[str, Any], parameters: Mapping[str, Any]) -> None:
        self._parameters = {
            name: parameters.get(name, definition.get("Default"))
            for name, definition in template.get("Parameters", {}).items()
        }
        self._queues: dict[str, dict[str, str]] = {}

    def add_queue(self, logical_name: str, *, name: str, url: str, arn: str) -> None:
        self._queues[logical_name] = {"QueueName": name, "QueueUrl": url, "Arn": arn}

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Ref"}:
            return self._ref(value["Ref"])
        if set(value) == {"Fn::GetAtt"}:
            logical_name, attribute = value["Fn::GetAtt"]
            if logical_name not in self._queues:
                raise ValueError(f"cannot resolve {logical_name}.{attribute}: only queues are created here")
            return self._queues[logical_name][attribute]
        return {key: self.resolve(item) for key, item in value.items()}

    def _ref(self, name: str) -> Any:
        if name in self._queues:
            return self._queues[name]["QueueUrl"]
        if name not in self._parameters:
            raise ValueError(f"cannot resolve Ref {name}: only parameters and queues are known here")
        if self._parameters[name] is None:
            raise ValueError(f"parameter {name} has no value: pass it in `parameters`")
        return self._parameters[name]


def _attribute_text(value: Any) -> str:
    """SQS takes every attribute as a string; policies are JSON documents."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)
