"""Alarms watch what breaks silently: dead letters, function errors, missed runs, DeFiLlama failures."""

from __future__ import annotations

from typing import Any

import pytest
from portfolio.observability import METRICS_NAMESPACE, SERVICE_NAME

from tests.infra.sam import FUNCTIONS, Stack


def _alarms(stack: Stack) -> dict[str, dict[str, Any]]:
    return stack.of_type("AWS::CloudWatch::Alarm")


def test_given_a_dead_letter_then_an_alarm_fires_as_soon_as_one_message_is_visible(stack: Stack):
    dlq_alarms = [
        alarm
        for alarm in _alarms(stack).values()
        if alarm.get("Dimensions")
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["RefreshDeadLetterQueue", "QueueName"]}}]
    ]

    assert len(dlq_alarms) == 1
    (alarm,) = dlq_alarms
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_given_a_function_that_errors_then_an_alarm_watches_its_errors(stack: Stack, function):
    watching = [
        alarm
        for alarm in _alarms(stack).values()
        if alarm.get("Namespace") == "AWS/Lambda"
        and alarm.get("MetricName") == "Errors"
        and alarm.get("Dimensions") == [{"Name": "FunctionName", "Value": {"Ref": function}}]
    ]

    assert len(watching) == 1


def test_given_refresh_runs_stop_completing_then_an_alarm_fires_on_missing_data(stack: Stack):
    (alarm,) = [a for a in _alarms(stack).values() if a.get("MetricName") == "UsersQueued"]

    assert alarm["Namespace"] == METRICS_NAMESPACE
    assert alarm["Dimensions"] == [{"Name": "service", "Value": SERVICE_NAME}]
    assert alarm["TreatMissingData"] == "breaching"


def test_given_the_price_api_failure_rate_then_a_metric_math_alarm_divides_failures_by_calls(stack: Stack):
    (alarm,) = [
        a
        for a in _alarms(stack).values()
        if any(
            query.get("MetricStat", {}).get("Metric", {}).get("MetricName") == "PriceApiFailures"
            for query in a.get("Metrics", [])
        )
    ]
    metrics = {query["Id"]: query for query in alarm["Metrics"]}

    names = {
        query_id: query["MetricStat"]["Metric"]["MetricName"]
        for query_id, query in metrics.items()
        if "MetricStat" in query
    }
    assert sorted(names.values()) == ["PriceApiCalls", "PriceApiFailures"]
    for query in metrics.values():
        if "MetricStat" in query:
            assert query["MetricStat"]["Metric"]["Namespace"] == METRICS_NAMESPACE
            assert query["MetricStat"]["Metric"]["Dimensions"] == [{"Name": "service", "Value": SERVICE_NAME}]
    (expression,) = [query for query in metrics.values() if query.get("ReturnData")]
    by_name = {name: query_id for query_id, name in names.items()}
    assert f"{by_name['PriceApiFailures']}, 0) / {by_name['PriceApiCalls']}" in expression["Expression"]


def test_given_an_alarm_email_then_every_alarm_notifies_the_topic_and_otherwise_none_does(stack: Stack, sam_template):
    assert stack.resources["AlarmTopic"]["Condition"] == "HasAlarmEmail"
    assert sam_template["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    for name, alarm in _alarms(stack).items():
        assert alarm["AlarmActions"] == {
            "Fn::If": ["HasAlarmEmail", [{"Ref": "AlarmTopic"}], {"Ref": "AWS::NoValue"}]
        }, name
