"""Durable cache invalidation's wiring: table stream -> cache invalidator (retries, DLQ, alarms)."""

from __future__ import annotations

import json

from tests.infra.intrinsics import ACCOUNT
from tests.infra.sam import STREAM_LABEL, Stack, actions_granted, allows

OTHER_STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/other/stream/2024-01-01T00:00:00.000"


def test_given_the_table_then_it_streams_both_images_of_every_change_as_global_tables_require(stack: Stack):
    # The invalidator reads the new image; replication between regions needs the old one too.
    assert stack.properties("PortfolioTable")["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}


def test_given_the_stream_then_the_invalidator_reads_portfolio_and_transaction_items_reporting_failures_per_record(
    stack: Stack,
):
    mapping = stack.event_source_mapping("PortfolioTable")

    assert mapping["FunctionName"] == {"Ref": "CacheInvalidatorFunctionAliaslive"}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BisectBatchOnFunctionError"] is True
    (pattern,) = [json.loads(entry["Pattern"]) for entry in mapping["FilterCriteria"]["Filters"]]
    assert pattern == {"dynamodb": {"Keys": {"sk": {"S": ["PROFILE", {"prefix": "TX#"}]}}}}


def test_given_records_the_invalidator_gives_up_on_then_they_reach_a_dead_letter_queue_that_alarms(stack: Stack):
    mapping = stack.event_source_mapping("PortfolioTable")
    destination = mapping["DestinationConfig"]["OnFailure"]["Destination"]

    assert destination == {"Fn::GetAtt": ["CacheInvalidationDeadLetterQueue", "Arn"]}
    assert mapping["MaximumRetryAttempts"] > 0
    watching = [
        alarm
        for alarm in stack.of_type("AWS::CloudWatch::Alarm").values()
        if alarm.get("Dimensions")
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["CacheInvalidationDeadLetterQueue", "QueueName"]}}]
    ]
    assert len(watching) == 1


def test_given_the_invalidator_falls_behind_then_an_alarm_watches_its_iterator_age(stack: Stack):
    (alarm,) = [
        alarm for alarm in stack.of_type("AWS::CloudWatch::Alarm").values() if alarm.get("MetricName") == "IteratorAge"
    ]

    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "CacheInvalidatorFunction"}}]


def test_given_the_invalidator_role_then_it_reads_this_tables_stream_and_touches_no_item(stack: Stack):
    statements = stack.role_statements("CacheInvalidatorFunction")
    stream = stack.render({"Fn::GetAtt": ["PortfolioTable", "StreamArn"]})

    table = stack.arn("PortfolioTable")
    elsewhere = (
        OTHER_STREAM,
        f"{table}-archive/stream/{STREAM_LABEL}",  # a table whose name starts with this one's
        stream.replace(f":{ACCOUNT}:", ":210987654321:"),
        stream.replace(":us-east-1:", ":eu-west-1:"),  # the other region's replica: its own stack reads it
    )

    for action in ("dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:DescribeStream"):
        assert allows(statements, action, stream), action
        for other in elsewhere:
            assert not allows(statements, action, other), (action, other)
    item_actions = [action for action in actions_granted(statements) if action.lower().endswith("item")]
    assert item_actions == []
